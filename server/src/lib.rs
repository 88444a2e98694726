//! MAS backend: REST API, Socket.IO, terminal relay and queue workers in one process.
//!
//! [`run`] is the whole server; `main.rs` only reads config, sets up logging and
//! wires OS signals, so tests start the real thing on port 0.

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod net;
pub mod queues;
pub mod realtime;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod validation;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

const DB_CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
use crate::state::AppState;

/// Connects, migrates (unless `MIGRATE_ON_START=false`), seeds and returns the shared state.
pub async fn bootstrap(config: Config, shutdown: CancellationToken) -> anyhow::Result<AppState> {
    let db = startup::connect_database(&config).await?;
    if config.migrate_on_start {
        startup::migrate(&db).await?;
    } else {
        startup::ensure_migrated(&db).await?;
        tracing::info!("MIGRATE_ON_START=false: migrations left to `mas-server migrate`");
    }
    startup::seed(&db, &config).await.context("seeding")?;
    let redis = startup::connect_redis(&config).await?;
    Ok(build_state(config, db, redis, shutdown))
}

/// Assembles the state from already connected (and migrated) dependencies.
pub fn build_state(
    config: Config,
    db: sqlx::PgPool,
    redis: redis::aio::ConnectionManager,
    shutdown: CancellationToken,
) -> AppState {
    AppState {
        queues: queues::Queues::with_connection(queue_connection(&config), config.queues.clone()),
        jwt: auth::JwtKeys::from_config(&config),
        accounts: Arc::new(auth::status::AccountStatuses::new(&config)),
        integrations: Arc::new(services::integrations::Integrations::new(&config)),
        external: Arc::default(),
        config: Arc::new(config),
        db,
        redis,
        shutdown,
        started_at: Instant::now(),
        readiness: Arc::default(),
        storage: Arc::default(),
        connections: Default::default(),
        metrics: Arc::default(),
    }
}

/// The queues' Redis connection: `REDIS_URL`, trusting `REDIS_CA_FILE` when set.
fn queue_connection(config: &Config) -> bullmq::options::RedisConnectionOptions {
    let connection = bullmq::options::RedisConnectionOptions::new().url(config.redis_url.expose());
    let Some(path) = &config.security.redis_ca_file else {
        return connection;
    };
    match std::fs::read(path) {
        Ok(pem) => connection.tls_certs(bullmq::options::TlsCerts {
            root_cert: Some(pem),
            ..Default::default()
        }),
        Err(err) => {
            // connect_redis read it a moment ago; the queues then fail their TLS handshake.
            tracing::error!(path = %path.display(), error = %err, "cannot read REDIS_CA_FILE");
            connection
        }
    }
}

/// Runs the server on `listener` until `shutdown` resolves, then shuts down in the
/// order of [`serve`].
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let state = bootstrap(config, token.clone()).await?;
    serve(listener, state, shutdown).await
}

/// Serves an already bootstrapped state (lets tests share one bootstrap), plus the
/// internal listener on `HOST:INTERNAL_PORT` when that is set.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let internal = match state.config.internal_port {
        Some(port) => {
            let addr = std::net::SocketAddr::new(state.config.host, port);
            let internal = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (INTERNAL_PORT)"))?;
            Some(internal)
        }
        None => None,
    };
    serve_with(listener, internal, state, shutdown).await
}

/// [`serve`] with the internal listener given (tests bind it on port 0).
///
/// Shutdown order, for the endpoint-propagation race: when `shutdown` resolves,
/// `/api/health` answers 503 and new Socket.IO sessions are refused at once, while
/// the listener keeps serving for `SHUTDOWN_DRAIN_SECONDS` (the ingress may still
/// send requests until it sees the endpoint gone); then realtime clients are moved,
/// then the listener stops accepting and in-flight requests get
/// `SHUTDOWN_GRACE_SECONDS` to finish.
pub async fn serve_with(
    listener: TcpListener,
    internal: Option<TcpListener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let token = state.shutdown.clone();
    let grace = state.config.shutdown_grace;
    let drain_window = state.config.shutdown_drain;
    let addr = listener.local_addr()?;
    tokio::spawn({
        let (token, connections) = (token.clone(), state.connections.clone());
        async move {
            shutdown.await;
            tracing::info!(?drain_window, "shutdown requested; health reports draining");
            connections.begin_drain();
            token.cancel();
        }
    });

    // Account changes from every replica: cache invalidation and open sessions. Runs
    // until the listener stops (requests keep coming during the drain window).
    let accounts_stop = CancellationToken::new();
    tokio::spawn(auth::status::listen(state.clone(), accounts_stop.clone()));
    let _stop_accounts = accounts_stop.drop_guard();

    // Workers stop taking jobs as soon as shutdown starts, in parallel with the HTTP drain.
    let workers = if state.config.role.runs_workers() {
        let set = queues::WorkerSet::start(&state).await?;
        let token = token.clone();
        Some(tokio::spawn(async move {
            token.cancelled().await;
            set.close(grace).await;
        }))
    } else {
        None
    };

    // Workers-only processes serve just the probes. API processes also carry the realtime
    // endpoints: Socket.IO clients are told to reconnect while HTTP still accepts requests
    // (long-polling clients need one more round-trip); then HTTP stops.
    let drained = CancellationToken::new();
    let realtime = if state.config.role.serves_api() {
        Some(realtime::Realtime::start(&state).await?)
    } else {
        None
    };
    tokio::spawn({
        let (realtime, token, drained) = (realtime.clone(), token.clone(), drained.clone());
        async move {
            token.cancelled().await;
            tokio::time::sleep(drain_window).await;
            if let Some(realtime) = realtime {
                realtime.shutdown().await;
            }
            tracing::info!("no longer accepting connections");
            drained.cancel();
        }
    });
    let app = match &realtime {
        Some(realtime) => http::router_with(state.clone(), realtime.routes()),
        None => http::probes_router(state.clone()),
    };

    let internal_server = internal.map(|internal| {
        let app = http::internal::router(state.clone(), realtime.clone());
        let stopped = drained.clone();
        if let Ok(addr) = internal.local_addr() {
            tracing::info!(%addr, "internal listener");
        }
        tokio::spawn(async move {
            axum::serve(internal, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await
        })
    });

    tracing::info!(%addr, "listening");
    // Per connection: the peer address (login rate limiting) and a handle that lets the
    // drain cut a websocket's connection.
    let server = axum::serve(
        net::CuttableListener::new(listener),
        net::WithConnection(app),
    )
    .with_graceful_shutdown({
        let drained = drained.clone();
        async move { drained.cancelled().await }
    });
    let deadline = async {
        drained.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result.context("HTTP server failed")?,
        () = deadline => tracing::warn!(?grace, "in-flight requests outlived the shutdown grace period"),
    }
    if let Some(internal_server) = internal_server {
        internal_server.abort();
    }
    if let Some(workers) = workers {
        token.cancel();
        if workers.await.is_err() {
            tracing::error!("queue worker shutdown task panicked");
        }
    }
    state.queues.close().await;
    // close() waits for every checked-out connection; a task still holding one
    // (a LISTEN connection, a stuck query) must not keep the process alive.
    if tokio::time::timeout(DB_CLOSE_TIMEOUT, state.db.close())
        .await
        .is_err()
    {
        tracing::warn!("database connections still in use at shutdown; exiting anyway");
    }
    tracing::info!("stopped");
    Ok(())
}
