//! `kubectl mas`: the MasBackend plugin. Convenience over what plain kubectl already does (it
//! writes the same annotations and patches), plus the two things plain kubectl cannot give: a CI
//! wait that fails on a failed release, and on-call's view of both colors and the history.
//!
//! Exit codes: 0 released (or request written), 1 the release failed (Degraded / ReleaseFailed)
//! or an API error, 2 usage, 3 timeout, 4 `status` without `--watch` while a release is in flight.

mod render;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use kube::api::{ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use mas_operator::crd::{
    ABORT_ANNOTATION, ConditionType, MasBackend, PROMOTE_ANNOTATION, RETRY_ANNOTATION,
    ROLLBACK_ANNOTATION, conditions,
};

#[derive(Parser)]
#[command(
    name = "kubectl-mas",
    version,
    about = "Release, watch and roll back MasBackends (kubectl mas ...)"
)]
struct Cli {
    /// Namespace (default: the kubeconfig context's).
    #[arg(short, long, global = true)]
    namespace: Option<String>,
    /// Path to the kubeconfig (default: KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<std::path::PathBuf>,
    /// Kubeconfig context.
    #[arg(long, global = true)]
    context: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Is the current spec released? With --watch, wait until it is (exit 0) or failed (exit 1).
    Status {
        name: String,
        #[arg(short, long)]
        watch: bool,
        /// Give up after this long, e.g. 15m, 90s (exit 3).
        #[arg(long, default_value = "15m", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Both colors, the release in flight, conditions and the history.
    Get { name: String },
    /// The release history.
    History { name: String },
    /// Switch a release that passed the gate under manual promotion.
    Promote { name: String },
    /// Drop the release in flight (or revert one being verified).
    Abort { name: String },
    /// Roll back to the previous good release, or to a revision.
    Rollback {
        name: String,
        #[arg(long)]
        to: Option<i64>,
    },
    /// Release the current spec again although it was rejected.
    Retry { name: String },
    /// Release an image (CI): sets spec.image.
    Set {
        #[command(subcommand)]
        what: SetWhat,
    },
    /// Freeze the state machine.
    Pause { name: String },
    /// Unfreeze it.
    Resume { name: String },
}

#[derive(Subcommand)]
enum SetWhat {
    Image { name: String, image: String },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(s.trim().len()),
    );
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 90s, 15m, 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?}: unit must be s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

async fn client(cli: &Cli) -> anyhow::Result<(Client, String)> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let options = KubeConfigOptions {
        context: cli.context.clone(),
        ..Default::default()
    };
    let config = match &cli.kubeconfig {
        Some(path) => {
            kube::Config::from_custom_kubeconfig(Kubeconfig::read_from(path)?, &options).await?
        }
        None => kube::Config::from_kubeconfig(&options)
            .await
            .or_else(|_| kube::Config::incluster())?,
    };
    let ns = cli
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    Ok((Client::try_from(config)?, ns))
}

/// What a MasBackend says about its current spec.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Released,
    Failed(String),
    InFlight(String),
}

pub fn verdict(mb: &MasBackend) -> Verdict {
    let Some(status) = &mb.status else {
        return Verdict::InFlight("no status yet".into());
    };
    // Only conditions observed at the current generation speak about the current spec.
    let current = |t: ConditionType| {
        conditions::condition(&status.conditions, t)
            .filter(|c| c.observed_generation == mb.metadata.generation)
    };
    let ready = current(ConditionType::Ready);
    if ready.is_some_and(|c| c.status == "True") {
        return Verdict::Released;
    }
    if let Some(c) =
        ready.filter(|c| c.reason == "ReleaseFailed" || c.reason == "SecretsUnavailable")
    {
        return Verdict::Failed(format!("{}: {}", c.reason, c.message));
    }
    match ready {
        Some(c) => Verdict::InFlight(format!("{}: {}", c.reason, c.message)),
        None => Verdict::InFlight("the operator has not seen this generation yet".into()),
    }
}

async fn recent_events(client: &Client, ns: &str, name: &str) -> Vec<String> {
    let api: Api<CoreEvent> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().fields(&format!(
        "involvedObject.name={name},involvedObject.kind=MasBackend"
    ));
    let mut events = api.list(&lp).await.map(|l| l.items).unwrap_or_default();
    events.sort_by_key(|e| {
        e.last_timestamp
            .clone()
            .or(e.first_timestamp.clone())
            .map(|t| t.0)
    });
    events
        .iter()
        .rev()
        .take(12)
        .rev()
        .map(|e| {
            format!(
                "{} {}: {}",
                e.type_.as_deref().unwrap_or(""),
                e.reason.as_deref().unwrap_or(""),
                e.message.as_deref().unwrap_or("").replace('\n', "\n    ")
            )
        })
        .collect()
}

async fn status(
    api: &Api<MasBackend>,
    client: &Client,
    ns: &str,
    name: &str,
    watch: bool,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let mb = api.get(name).await?;
        match verdict(&mb) {
            Verdict::Released => {
                println!("{}", render::summary(&mb));
                return Ok(ExitCode::SUCCESS);
            }
            Verdict::Failed(why) => {
                eprintln!("release failed: {why}\n");
                eprintln!("{}", render::tree(&mb));
                for e in recent_events(client, ns, name).await {
                    eprintln!("  {e}");
                }
                return Ok(ExitCode::from(1));
            }
            Verdict::InFlight(what) => {
                if !watch {
                    println!("{what}");
                    return Ok(ExitCode::from(4));
                }
                if what != last {
                    println!("{what}");
                    last = what;
                }
            }
        }
        if started.elapsed() >= timeout {
            eprintln!(
                "timed out after {}s waiting for the release",
                timeout.as_secs()
            );
            return Ok(ExitCode::from(3));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn annotate(
    api: &Api<MasBackend>,
    name: &str,
    key: &str,
    value: String,
) -> anyhow::Result<()> {
    let p = serde_json::json!({"metadata": {"annotations": {key: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&p))
        .await?;
    Ok(())
}

fn now_token() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_default()
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let (client, ns) = client(&cli).await?;
    let api: Api<MasBackend> = Api::namespaced(client.clone(), &ns);
    let done = |what: String| {
        println!("{what}");
        Ok(ExitCode::SUCCESS)
    };
    match &cli.command {
        Command::Status {
            name,
            watch,
            timeout,
        } => status(&api, &client, &ns, name, *watch, *timeout).await,
        Command::Get { name } => {
            println!("{}", render::tree(&api.get(name).await?));
            Ok(ExitCode::SUCCESS)
        }
        Command::History { name } => {
            println!("{}", render::history(&api.get(name).await?));
            Ok(ExitCode::SUCCESS)
        }
        Command::Promote { name } => {
            annotate(&api, name, PROMOTE_ANNOTATION, now_token()).await?;
            done(format!("masbackend/{name} promote requested"))
        }
        Command::Abort { name } => {
            annotate(&api, name, ABORT_ANNOTATION, now_token()).await?;
            done(format!("masbackend/{name} abort requested"))
        }
        Command::Retry { name } => {
            annotate(&api, name, RETRY_ANNOTATION, now_token()).await?;
            done(format!("masbackend/{name} retry requested"))
        }
        Command::Rollback { name, to } => {
            let value = match to {
                Some(rev) => rev.to_string(),
                None => now_token(),
            };
            annotate(&api, name, ROLLBACK_ANNOTATION, value).await?;
            let target = to.map_or("the previous good release".to_owned(), |r| {
                format!("revision {r}")
            });
            done(format!("masbackend/{name} rollback to {target} requested"))
        }
        Command::Set {
            what: SetWhat::Image { name, image },
        } => {
            let p = serde_json::json!({"spec": {"image": image}});
            api.patch(name, &PatchParams::default(), &Patch::Merge(&p))
                .await?;
            done(format!("masbackend/{name} image set to {image}"))
        }
        Command::Pause { name } | Command::Resume { name } => {
            let paused = matches!(cli.command, Command::Pause { .. });
            let p = serde_json::json!({"spec": {"paused": paused}});
            api.patch(name, &PatchParams::default(), &Patch::Merge(&p))
                .await?;
            done(format!(
                "masbackend/{name} {}",
                if paused { "paused" } else { "resumed" }
            ))
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kubectl-mas: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_refuse_garbage() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn the_verdict_only_trusts_conditions_of_the_current_generation() {
        let mut mb: MasBackend = serde_json::from_value(serde_json::json!({
            "apiVersion": "platform.myanalyticsschool.com/v1alpha1", "kind": "MasBackend",
            "metadata": {"name": "api", "generation": 2},
            "spec": {"image": "a:1"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Released", "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}
        }))
        .unwrap();
        assert!(
            matches!(verdict(&mb), Verdict::InFlight(_)),
            "stale Ready=True from generation 1"
        );
        mb.status.as_mut().unwrap().conditions[0].observed_generation = Some(2);
        assert_eq!(verdict(&mb), Verdict::Released);
        let c = &mut mb.status.as_mut().unwrap().conditions[0];
        c.status = "False".into();
        c.reason = "ReleaseFailed".into();
        assert!(matches!(verdict(&mb), Verdict::Failed(_)));
    }
}
