use std::process::ExitCode;
use std::sync::Arc;

use mas_operator::{config::Config, controller, http, metrics::Metrics};

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("crd") => match mas_operator::crd::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mas-operator: cannot render CRD: {e}");
                ExitCode::FAILURE
            }
        },
        Some("run") => match run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mas-operator: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!(
                "usage: mas-operator crd   print the MasBackend CRD as YAML\n       mas-operator run   run the controller (kubeconfig from KUBECONFIG or in-cluster)"
            );
            ExitCode::from(2)
        }
    }
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
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
    let config = Config::from_env()?;
    let client = kube::Client::try_default().await?;
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind(config.http_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /healthz and /metrics");
    let router = http::router(metrics.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let secrets = mas_operator::aws_secrets::client().await;
    let ctx = Arc::new(controller::Context::new(
        client,
        config.instance,
        metrics,
        secrets,
        config.secrets_refresh,
    ));
    let result = controller::run(ctx, config.watch_namespace).await;
    server.abort();
    result
}
