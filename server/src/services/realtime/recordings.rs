//! Recording state of a meeting: at most one recording in progress (database
//! constraint), started and stopped by the host.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::AppError;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub id: Uuid,
    pub meeting_id: Uuid,
    pub started_by: Uuid,
    pub started_at: DateTime<Utc>,
    pub stopped_by: Option<Uuid>,
    pub stopped_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, meeting_id, started_by, started_at, stopped_by, stopped_at";

pub async fn start(db: &PgPool, meeting_id: Uuid, by: Uuid) -> Result<Recording, AppError> {
    let result = sqlx::query_as::<_, Recording>(sqlx::AssertSqlSafe(format!(
        "insert into meeting_recordings (id, meeting_id, started_by) values ($1, $2, $3) returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(meeting_id)
    .bind(by)
    .fetch_one(db)
    .await;
    match result {
        Ok(recording) => Ok(recording),
        Err(sqlx::Error::Database(e))
            if e.constraint() == Some("meeting_recordings_one_active") =>
        {
            Err(AppError::conflict("a recording is already in progress"))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn stop(db: &PgPool, meeting_id: Uuid, by: Uuid) -> Result<Recording, AppError> {
    sqlx::query_as::<_, Recording>(sqlx::AssertSqlSafe(format!(
        "update meeting_recordings set stopped_at = now(), stopped_by = $2 \
         where meeting_id = $1 and stopped_at is null returning {COLUMNS}"
    )))
    .bind(meeting_id)
    .bind(by)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| AppError::conflict("no recording is in progress"))
}
