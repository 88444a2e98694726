//! MAS backend: REST API, Socket.IO, terminal relay and queue workers in one process.
//!
//! [`run`] is the whole server; `main.rs` only reads config, sets up logging and
//! wires OS signals, so tests start the real thing on port 0.

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
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

/// Connects, migrates, seeds and returns the shared state.
pub async fn bootstrap(config: Config, shutdown: CancellationToken) -> anyhow::Result<AppState> {
    let db = startup::connect_database(&config).await?;
    startup::migrate(&db).await?;
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
        queues: queues::Queues::new(config.redis_url.expose(), config.queues.clone()),
        jwt: auth::JwtKeys::new(config.jwt_secret.expose().as_bytes()),
        integrations: Arc::new(services::integrations::Integrations::new(&config)),
        config: Arc::new(config),
        db,
        redis,
        shutdown,
        started_at: Instant::now(),
        storage: Arc::default(),
    }
}

/// Runs the server on `listener` until `shutdown` resolves, then stops accepting,
/// lets in-flight requests finish within `SHUTDOWN_GRACE_SECONDS` and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let state = bootstrap(config, token.clone()).await?;
    serve(listener, state, shutdown).await
}

/// Serves an already bootstrapped state (lets tests share one bootstrap).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let token = state.shutdown.clone();
    let grace = state.config.shutdown_grace;
    let addr = listener.local_addr()?;
    tokio::spawn({
        let token = token.clone();
        async move {
            shutdown.await;
            tracing::info!("shutdown requested; draining");
            token.cancel();
        }
    });

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
    let app = if state.config.role.serves_api() {
        let realtime = realtime::Realtime::start(&state).await?;
        tokio::spawn({
            let (realtime, token, drained) = (realtime.clone(), token.clone(), drained.clone());
            async move {
                token.cancelled().await;
                realtime.drain().await;
                drained.cancel();
            }
        });
        http::router_with(state.clone(), realtime.routes())
    } else {
        tokio::spawn({
            let (token, drained) = (token.clone(), drained.clone());
            async move {
                token.cancelled().await;
                drained.cancel();
            }
        });
        http::probes_router(state.clone())
    };
    tracing::info!(%addr, "listening");
    // Connect info gives handlers the peer address (login rate limiting).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown({
        let drained = drained.clone();
        async move { drained.cancelled().await }
    });
    let deadline = async {
        token.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result.context("HTTP server failed")?,
        () = deadline => tracing::warn!(?grace, "in-flight requests outlived the shutdown grace period"),
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
