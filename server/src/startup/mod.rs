//! Cold start: connect, migrate, seed. Safe to run from several replicas at once
//! (sqlx takes a Postgres advisory lock around migrations; seeds are upserts).
//! With `MIGRATE_ON_START=false` a separate `mas-server migrate` applies the
//! migrations and the server only checks that they are there.

mod seed;

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::config::{Config, DatabaseConfig};

pub use seed::seed;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

pub async fn connect_database(config: &Config) -> anyhow::Result<PgPool> {
    connect(&config.database()).await
}

pub async fn connect(database: &DatabaseConfig) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(database.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(database.url.expose())
        .await
        .context("connecting to PostgreSQL (DATABASE_URL)")
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

pub async fn connect_redis(config: &Config) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(config.redis_url.expose()).context("parsing REDIS_URL")?;
    // Bounded timeouts so a dead Redis turns into a 503, not a hung request.
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2);
    ConnectionManager::new_with_config(client, manager_config)
        .await
        .context("connecting to Redis (REDIS_URL)")
}
