use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use mas_server::config::{Config, DatabaseConfig};

/// MAS backend: REST API, Socket.IO, terminal relay and queue workers.
///
/// Configuration comes from the environment (`mas-server config-reference`, docs/configuration.md).
#[derive(Parser)]
#[command(name = "mas-server", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default without a subcommand).
    Serve,
    /// Apply the database migrations (under the migration lock) and exit.
    Migrate,
    /// Exit 0 when this host's /api/health answers 200 with "success": true, else 1
    /// (for container HEALTHCHECK and exec probes; no curl needed).
    Healthcheck {
        /// Health URL to check instead of http://127.0.0.1:$PORT/api/health.
        #[arg(long)]
        url: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3)]
        timeout_seconds: u64,
    },
    /// Print the OpenAPI document (for the checked-in snapshot and client generation).
    Openapi,
    /// Print every environment variable the server reads, as Markdown (docs/configuration.md).
    ConfigReference,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            ExitCode::from(1)
        }
    }
}

/// glibc gives each thread that allocates its own arena (up to 8 per core), and each
/// keeps its freed memory: about 20 MiB of a mostly idle server's 40 MiB of heap. Two
/// arenas serve the runtime's worker threads as fast. Must run before any thread
/// starts; `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

async fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version: stdout, exit 0.
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            // Bad arguments: the reason and the usage on stderr, exit 2 (clap leaves
            // the usage out for a bad value).
            let text = err.render().to_string();
            eprint!("{text}");
            if !text.contains("Usage:") {
                eprintln!("\n{}", Cli::command().render_usage());
            }
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Migrate => migrate().await,
        Command::Healthcheck {
            url,
            timeout_seconds,
        } => healthcheck(url, Duration::from_secs(timeout_seconds)).await,
        Command::Openapi => openapi(),
        Command::ConfigReference => {
            print!("{}", mas_server::config::reference::markdown());
            ExitCode::SUCCESS
        }
    }
}

fn openapi() -> ExitCode {
    match serde_json::to_string_pretty(&mas_server::http::openapi::document()) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cannot render the OpenAPI document: {err}");
            ExitCode::from(1)
        }
    }
}

async fn serve() -> ExitCode {
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

async fn migrate() -> ExitCode {
    let database = match DatabaseConfig::from_env() {
        Ok(database) => database,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    let result = async {
        let db = mas_server::startup::connect(&database).await?;
        mas_server::startup::migrate(&db).await?;
        db.close().await;
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            println!(
                "database migrated ({} migrations)",
                mas_server::startup::MIGRATOR.iter().count()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("migration failed: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Exit 1 on any failure, config errors included: for a container HEALTHCHECK, 2 is reserved.
async fn healthcheck(url: Option<String>, timeout: Duration) -> ExitCode {
    let url = match url.map_or_else(
        || mas_server::config::local_health_url(&std::env::vars().collect()),
        Ok,
    ) {
        Ok(url) => url,
        Err(err) => {
            eprintln!("unhealthy: {err}");
            return ExitCode::from(1);
        }
    };
    match mas_server::http::health::probe(&url, timeout).await {
        Ok(summary) => {
            println!("healthy: {summary}");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("unhealthy: {url}: {reason}");
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
