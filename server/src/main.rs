use std::net::SocketAddr;
use std::process::ExitCode;

use mas_server::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    // `mas-server openapi` prints the API document (for the checked-in snapshot and
    // client generation) without needing any configuration.
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        return match serde_json::to_string_pretty(&mas_server::http::openapi::document()) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("cannot render the OpenAPI document: {err}");
                ExitCode::from(1)
            }
        };
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    mas_server::telemetry::init(config.log_json);

    let addr = SocketAddr::new(config.host, config.port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on {addr}: {err}");
            return ExitCode::from(1);
        }
    };
    match mas_server::run(listener, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "server stopped with an error");
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
