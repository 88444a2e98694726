use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use mas_operator::{config::Config, controller, http, metrics::Metrics};

/// Kubernetes operator releasing MasBackend resources with health-gated blue/green rollouts.
#[derive(Parser)]
#[command(name = "mas-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the MasBackend CRD as YAML.
    Crd,
    /// Run the controller (kubeconfig from KUBECONFIG or in-cluster; settings from the
    /// environment, see operator/README.md).
    Run,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Crd => match mas_operator::crd::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mas-operator: cannot render CRD: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run => {
            let config = match Config::from_env() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("mas-operator: {e}");
                    return ExitCode::from(2);
                }
            };
            match run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mas-operator: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[tokio::main]
async fn run(config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    // kube (ring) and the AWS SDK (aws-lc-rs) both enable a rustls provider; pick one explicitly.
    if rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("rustls crypto provider already installed");
    }
    let metrics = Arc::new(Metrics::new());
    let client = controller::counted_client(kube::Config::infer().await?, metrics.clone())?;
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(config.http_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /healthz, /readyz and /metrics");
    let router = http::router(http::Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
    });
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    if config.control_key.is_none() {
        tracing::warn!(
            "MAS_OPERATOR_CONTROL_KEY is not set: connections move off an old color only when it is scaled down"
        );
    }
    let secrets = controller::SecretsCache::new(
        mas_operator::aws_secrets::client().await,
        config.secrets_refresh,
    );
    let stores = controller::Stores::start(&client, config.watch_namespace.as_deref());
    let ctx = Arc::new(controller::Context::new(
        client,
        config.instance.clone(),
        metrics,
        secrets,
        config.secrets_refresh,
        config.control_key.clone(),
        stores,
    ));
    controller::prepare(&ctx, config.watch_namespace.as_deref()).await?;
    ready.store(true, Ordering::Relaxed);
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown_signal().await;
            shutdown.cancel();
        }
    });
    let result = match config.leader_election {
        Some(lease) => {
            let identity = config
                .instance
                .clone()
                .unwrap_or_else(|| format!("mas-operator-{}", std::process::id()));
            controller::leader::run(ctx, config.watch_namespace, lease, identity, shutdown).await
        }
        None => controller::run(ctx, config.watch_namespace, shutdown.cancelled_owned()).await,
    };
    server.abort();
    result
}

/// SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
