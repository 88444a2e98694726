//! Cold start: connect, migrate, seed. Safe to run from several replicas at once
//! (sqlx takes a Postgres advisory lock around migrations; seeds are upserts).
//! With `MIGRATE_ON_START=false` a separate `mas-server migrate` applies the
//! migrations and the server only checks that they are there.

mod seed;

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;

use crate::config::{Config, DatabaseConfig};

pub use seed::seed;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

pub async fn connect_database(config: &Config) -> anyhow::Result<PgPool> {
    connect(&config.database()).await
}

pub async fn connect(database: &DatabaseConfig) -> anyhow::Result<PgPool> {
    install_crypto_provider();
    let pool = PgPoolOptions::new()
        .max_connections(database.max_connections)
        // Kept open, so a burst right after start (a new color taking traffic) does not
        // wait on opening connections, which is slow on a busy database host.
        .min_connections(database.min_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(pg_options(database)?)
        .await
        .context("connecting to PostgreSQL (DATABASE_URL)")?;
    // Open them before the server reports ready, not lazily under the first requests.
    let warm: Vec<_> =
        futures::future::join_all((0..database.min_connections).map(|_| pool.acquire())).await;
    drop(warm);
    Ok(pool)
}

/// `DATABASE_URL` (with its own `sslmode`/`sslrootcert`), plus `DATABASE_CA_FILE`.
pub fn pg_options(database: &DatabaseConfig) -> anyhow::Result<PgConnectOptions> {
    let mut options =
        PgConnectOptions::from_str(database.url.expose()).context("parsing DATABASE_URL")?;
    if let Some(ca) = &database.ca_file {
        anyhow::ensure!(
            ca.is_file(),
            "DATABASE_CA_FILE {} is not a readable file",
            ca.display()
        );
        options = options.ssl_root_cert(ca);
    }
    Ok(options)
}

/// rustls is built with two crypto backends in this dependency tree (aws-lc-rs and
/// ring), so it cannot pick one by itself: Redis TLS would panic without this.
pub fn install_crypto_provider() {
    // Err only means one is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub async fn migrate(db: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(db)
        .await
        .context("running database migrations")
}

/// Fails unless every migration this build knows is applied (a database ahead of it,
/// migrated by a newer release, is fine): a server that skipped migrating at boot
/// must not run against an older schema.
pub async fn ensure_migrated(db: &PgPool) -> anyhow::Result<()> {
    let applied: Vec<i64> =
        match sqlx::query_scalar("select version from _sqlx_migrations where success")
            .fetch_all(db)
            .await
        {
            Ok(applied) => applied,
            // undefined_table: never migrated.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
            Err(e) => return Err(e).context("reading the applied migrations"),
        };
    let missing: Vec<String> = MIGRATOR
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| format!("{:04}_{}", m.version, m.description.replace(' ', "_")))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "the database lacks migrations {}; MIGRATE_ON_START=false, so run `mas-server migrate` first",
            missing.join(", ")
        )
    }
}

/// A client for `REDIS_URL` (as RESP3 when `resp3`, for push-based pub/sub) that
/// trusts `REDIS_CA_FILE` for `rediss://` when it is set.
pub fn redis_client(config: &Config, resp3: bool) -> anyhow::Result<redis::Client> {
    let url = config.redis_url.expose();
    let url = if resp3 {
        with_resp3(url)
    } else {
        url.to_string()
    };
    install_crypto_provider();
    match &config.security.redis_ca_file {
        None => redis::Client::open(url).context("parsing REDIS_URL"),
        Some(path) => {
            let root_cert = std::fs::read(path)
                .with_context(|| format!("reading REDIS_CA_FILE {}", path.display()))?;
            redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            )
            .context("REDIS_URL with REDIS_CA_FILE")
        }
    }
}

/// `url` asking for RESP3 (push messages), once.
pub fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

pub async fn connect_redis(config: &Config) -> anyhow::Result<ConnectionManager> {
    let client = redis_client(config, false)?;
    // Bounded timeouts so a dead Redis turns into a 503, not a hung request.
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2);
    ConnectionManager::new_with_config(client, manager_config)
        .await
        .context("connecting to Redis (REDIS_URL)")
}
