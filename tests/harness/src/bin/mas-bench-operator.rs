//! The operator benchmark's measuring side (scripts/bench-operator starts the cluster, the
//! operator and a health endpoint on every pod IP, then runs this). It prints:
//! - image bump → stable Service selector switched, minus the gate's minimum time;
//! - rollback annotation → selector switched (a warm standby: one write);
//! - with `--scale N` MasBackends in one namespace: the operator's RSS, its idle CPU, a release
//!   of one of them (switch time) and the Kubernetes API requests that release cost.
//!
//! Switches are seen through a watch on the Service, not by polling.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "bench-operator")]
    namespace: String,
    /// Port of the health endpoint answering on every pod IP.
    #[arg(long)]
    pod_port: u16,
    /// PID of the operator process (RSS and CPU are read from /proc).
    #[arg(long)]
    operator_pid: u32,
    /// Address of the operator's /metrics.
    #[arg(long)]
    metrics: String,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// MasBackends for the scale part (0: skip).
    #[arg(long, default_value_t = 500)]
    scale: usize,
    /// Seconds of idle CPU measurement.
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
    /// Append the figures as JSON lines to this file (`BENCH_OUT`, for scripts/plot-benchmarks).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Build profile the operator runs (recorded in the JSON lines).
    #[arg(long, default_value = "release")]
    profile: String,
    /// A seconds-long smoke run (recorded in the JSON lines, so plots can tell).
    #[arg(long)]
    smoke: bool,
}

/// Appends one JSON line to `--out`, when given.
fn record(cli: &Cli, mut line: serde_json::Value) -> anyhow::Result<()> {
    let Some(path) = &cli.out else {
        return Ok(());
    };
    line["bench"] = "operator".into();
    line["profile"] = cli.profile.clone().into();
    line["smoke"] = cli.smoke.into();
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{line}")?;
    Ok(())
}

/// MasBackend counts at which the scale part samples the operator's RSS: about a quarter,
/// a half and all of `scale` (each once every MasBackend so far is released).
fn checkpoints(scale: usize) -> Vec<usize> {
    let mut c: Vec<usize> = [scale / 4, scale / 2, scale]
        .into_iter()
        .filter(|n| *n > 0)
        .collect();
    c.dedup();
    c
}

const COLOR_LABEL: &str = "platform.myanalyticsschool.com/color";
const SUCCESS_THRESHOLD: i64 = 2;
const PERIOD: i64 = 1;

fn spec(image: &str, port: u16) -> serde_json::Value {
    json!({
        "image": image, "replicas": 1, "port": port, "internalPort": port + 1,
        "health": {"successThreshold": SUCCESS_THRESHOLD, "failureThreshold": 2, "periodSeconds": PERIOD, "timeoutSeconds": 1},
        "scaleDownDelaySeconds": 600, "progressDeadlineSeconds": 120, "propagationSeconds": 0,
        "verification": {"durationSeconds": 0},
    })
}

async fn apply(
    mbs: &Api<DynamicObject>,
    name: &str,
    spec: serde_json::Value,
) -> anyhow::Result<()> {
    let body = json!({"apiVersion": "platform.myanalyticsschool.com/v1alpha1", "kind": "MasBackend", "metadata": {"name": name}, "spec": spec});
    mbs.patch(
        name,
        &PatchParams::apply("bench").force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// Waits until Service `name` selects `color`; returns when the watch saw it.
async fn selector_switched(
    svcs: &Api<Service>,
    name: &str,
    color: &str,
    within: Duration,
) -> anyhow::Result<Instant> {
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher::watcher(svcs.clone(), cfg).boxed();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        match next {
            Err(_) => anyhow::bail!("{name} did not switch to {color} within {within:?}"),
            Ok(None) => anyhow::bail!("watch ended"),
            Ok(Some(ev)) => {
                if let Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) = ev
                    && s.spec
                        .and_then(|s| s.selector)
                        .and_then(|s| s.get(COLOR_LABEL).cloned())
                        .as_deref()
                        == Some(color)
                {
                    return Ok(Instant::now());
                }
            }
        }
    }
}

async fn ready(mbs: &Api<DynamicObject>, name: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let mb = serde_json::to_value(mbs.get(name).await?)?;
        let gen_ = mb["metadata"]["generation"].as_i64();
        let ok = mb["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"] == "Ready"
                    && c["status"] == "True"
                    && c["observedGeneration"].as_i64() == gen_
            })
        });
        if ok {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name} not Ready within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn active_color(mb: &serde_json::Value) -> String {
    mb["status"]["activeColor"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn proc_stat(pid: u32) -> (u64, u64) {
    // (rss kB, utime+stime ticks)
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (rss, ticks)
}

async fn api_requests(metrics: &str) -> BTreeMap<String, f64> {
    let text = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .ok();
    let text = match text {
        Some(r) => r.text().await.unwrap_or_default(),
        None => String::new(),
    };
    text.lines()
        .filter(|l| l.starts_with("mas_operator_api_requests_total{"))
        .filter_map(|l| {
            let (labels, v) = l.rsplit_once(' ')?;
            Some((
                labels
                    .trim_start_matches("mas_operator_api_requests_total")
                    .to_owned(),
                v.parse().ok()?,
            ))
        })
        .collect()
}

fn diff(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> (f64, String) {
    let mut total = 0.0;
    let mut parts = Vec::new();
    for (k, v) in after {
        let d = v - before.get(k).copied().unwrap_or(0.0);
        if d > 0.0 {
            total += d;
            parts.push(format!("{k}={d}"));
        }
    }
    (total, parts.join(" "))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// One image bump on `name`: seconds beyond the gate minimum, and the API requests it cost.
async fn release(
    mbs: &Api<DynamicObject>,
    svcs: &Api<Service>,
    name: &str,
    image: &str,
    port: u16,
    metrics: &str,
) -> anyhow::Result<(f64, f64, String)> {
    let before = serde_json::to_value(mbs.get(name).await?)?;
    let target = if active_color(&before) == "blue" {
        "green"
    } else {
        "blue"
    };
    let requests_before = api_requests(metrics).await;
    let t0 = Instant::now();
    let watch = tokio::spawn({
        let svcs = svcs.clone();
        let name = name.to_owned();
        async move { selector_switched(&svcs, &name, target, Duration::from_secs(60)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await; // the watch is established
    let t0 = t0.max(Instant::now());
    apply(mbs, name, spec(image, port)).await?;
    let switched = watch.await??;
    ready(mbs, name, Duration::from_secs(30)).await?;
    let requests = diff(&requests_before, &api_requests(metrics).await);
    let gate_min = ((SUCCESS_THRESHOLD - 1) * PERIOD) as f64;
    Ok((
        (switched - t0).as_secs_f64() - gate_min,
        requests.0,
        requests.1,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let client: Client = mas_harness::cluster::client().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let n: Namespace = serde_json::from_value(json!({"metadata": {"name": cli.namespace}}))?;
    let _ = nss.create(&PostParams::default(), &n).await;
    let gvk = kube::api::ApiResource {
        group: "platform.myanalyticsschool.com".into(),
        version: "v1alpha1".into(),
        api_version: "platform.myanalyticsschool.com/v1alpha1".into(),
        kind: "MasBackend".into(),
        plural: "masbackends".into(),
    };
    let mbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), &cli.namespace, &gvk);
    let svcs: Api<Service> = Api::namespaced(client.clone(), &cli.namespace);
    let port = cli.pod_port;

    apply(&mbs, "api", spec("api:0", port)).await?;
    ready(&mbs, "api", Duration::from_secs(90)).await?;
    let mut bumps = Vec::new();
    let mut requests = Vec::new();
    let mut rollbacks = Vec::new();
    for round in 1..=cli.rounds {
        let (s, r, detail) = release(
            &mbs,
            &svcs,
            "api",
            &format!("api:{round}"),
            port,
            &cli.metrics,
        )
        .await?;
        eprintln!(
            "round {round}: image bump -> switched {s:.3}s beyond the gate minimum; {r} API requests ({detail})"
        );
        bumps.push(s);
        requests.push(r);
        // Rollback to the warm previous color: one write.
        let target = if active_color(&serde_json::to_value(mbs.get("api").await?)?) == "blue" {
            "green"
        } else {
            "blue"
        };
        let watch = tokio::spawn({
            let svcs = svcs.clone();
            async move { selector_switched(&svcs, "api", target, Duration::from_secs(30)).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t0 = Instant::now();
        let p = json!({"metadata": {"annotations": {"platform.myanalyticsschool.com/rollback": format!("bench-{round}")}}});
        mbs.patch("api", &PatchParams::default(), &Patch::Merge(&p))
            .await?;
        let switched = watch.await??;
        rollbacks.push((switched - t0).as_secs_f64());
        // Back to the spec's release (clears the rejection: a new image next round).
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (rss, _) = proc_stat(cli.operator_pid);
    println!(
        "FIGURE image bump -> switched beyond the gate minimum: mean {:.3}s over {} rounds ({:?}) (target <= 0.3s)",
        mean(&bumps),
        bumps.len(),
        bumps.iter().map(|b| format!("{b:.3}")).collect::<Vec<_>>()
    );
    println!(
        "FIGURE rollback annotation -> selector switched: mean {:.3}s ({:?}) (target <= 0.1s)",
        mean(&rollbacks),
        rollbacks
            .iter()
            .map(|b| format!("{b:.3}"))
            .collect::<Vec<_>>()
    );
    println!(
        "FIGURE API requests per release (one MasBackend): mean {:.0}",
        mean(&requests)
    );
    println!(
        "FIGURE operator RSS with 1 MasBackend: {:.1} MiB",
        rss as f64 / 1024.0
    );

    record(
        &cli,
        json!({"masBackends": 1, "rssMiB": rss as f64 / 1024.0,
               "bumpSeconds": mean(&bumps), "rollbackSeconds": mean(&rollbacks),
               "requestsPerRelease": mean(&requests)}),
    )?;

    if cli.scale > 0 {
        let started = Instant::now();
        let mut created = 0;
        for checkpoint in checkpoints(cli.scale) {
            for i in created..checkpoint {
                apply(&mbs, &format!("svc-{i:04}"), spec("svc:1", port)).await?;
            }
            for i in created..checkpoint {
                ready(&mbs, &format!("svc-{i:04}"), Duration::from_secs(600)).await?;
            }
            created = checkpoint;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (rss, _) = proc_stat(cli.operator_pid);
            println!(
                "FIGURE {} MasBackends released: operator RSS {:.1} MiB",
                checkpoint + 1,
                rss as f64 / 1024.0
            );
            if checkpoint < cli.scale {
                record(
                    &cli,
                    json!({"masBackends": checkpoint + 1, "rssMiB": rss as f64 / 1024.0}),
                )?;
            }
        }
        println!(
            "FIGURE {} MasBackends created and released in {:.1}s",
            cli.scale,
            started.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (rss, t0) = proc_stat(cli.operator_pid);
        let req0 = api_requests(&cli.metrics).await;
        tokio::time::sleep(Duration::from_secs(cli.idle_seconds)).await;
        let (rss_after, t1) = proc_stat(cli.operator_pid);
        let idle_requests = diff(&req0, &api_requests(&cli.metrics).await).0;
        let ticks = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(100.0);
        let cpu = (t1 - t0) as f64 / ticks / cli.idle_seconds as f64 * 100.0;
        println!(
            "FIGURE {} MasBackends: operator RSS {:.1} MiB (target <= 64 MiB), idle CPU {:.2}% of a core over {}s, {} API requests while idle",
            cli.scale + 1,
            rss.max(rss_after) as f64 / 1024.0,
            cpu,
            cli.idle_seconds,
            idle_requests
        );
        let (s, r, detail) = release(&mbs, &svcs, "svc-0000", "svc:2", port, &cli.metrics).await?;
        println!(
            "FIGURE with {} MasBackends, a release of one: switched {s:.3}s beyond the gate minimum (with one: {:.3}s); {r} API requests ({detail})",
            cli.scale + 1,
            mean(&bumps)
        );
        record(
            &cli,
            json!({"masBackends": cli.scale + 1, "rssMiB": rss.max(rss_after) as f64 / 1024.0,
                   "idleCpuPct": cpu, "idleRequests": idle_requests,
                   "bumpSeconds": s, "requestsPerRelease": r}),
        )?;
    }
    Ok(())
}
