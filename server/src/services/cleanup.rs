//! Daily housekeeping: expire past open mentor slots, drop expired one-time codes
//! and refresh tokens that can never be used again.

use serde::Serialize;
use sqlx::PgPool;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    pub expired_slots: u64,
    pub deleted_otps: u64,
    pub deleted_refresh_tokens: u64,
    pub deleted_kpi_snapshots: u64,
    /// Unconfirmed uploads past their window, deleted with their objects (set by the
    /// cleanup job, which has the object store).
    pub expired_uploads: u64,
}

pub async fn delete_expired_otps(db: &PgPool) -> sqlx::Result<u64> {
    let done = sqlx::query("delete from email_otps where expires_at < now()")
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

pub async fn delete_dead_refresh_tokens(db: &PgPool) -> sqlx::Result<u64> {
    let done = sqlx::query(
        // Revoked tokens stay until they expire: presenting a rotated token must still be
        // recognised as reuse (and revoke its family) rather than look unknown.
        "delete from refresh_tokens where expires_at < now()",
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// KPI snapshots are written every 15 minutes; a quarter of history is plenty.
pub async fn prune_kpi_snapshots(db: &PgPool) -> sqlx::Result<u64> {
    let done =
        sqlx::query("delete from kpi_snapshots where computed_at < now() - interval '90 days'")
            .execute(db)
            .await?;
    Ok(done.rows_affected())
}

pub async fn run(db: &PgPool) -> sqlx::Result<CleanupReport> {
    Ok(CleanupReport {
        expired_slots: super::slots::expire_past_slots(db).await?,
        deleted_otps: delete_expired_otps(db).await?,
        deleted_refresh_tokens: delete_dead_refresh_tokens(db).await?,
        deleted_kpi_snapshots: prune_kpi_snapshots(db).await?,
        expired_uploads: 0,
    })
}
