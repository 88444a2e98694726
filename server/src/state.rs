//! The single shared state handed to every handler and worker.

use std::sync::Arc;
use std::time::Instant;

use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::error::AppError;
use crate::services::storage::Storage;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub jwt: JwtKeys,
    /// Cancelled when shutdown starts: health turns 503, long-lived connections drain.
    pub shutdown: CancellationToken,
    pub started_at: Instant,
    /// BullMQ producers (every role can enqueue; workers run per PROCESS_ROLE).
    pub queues: crate::queues::Queues,
    /// Drain mode of the long-lived connections (operator drain and SIGTERM).
    pub connections: crate::realtime::drain::Connections,
    /// Built on first use: loading AWS credentials is async and only needed by upload routes.
    pub storage: Arc<tokio::sync::OnceCell<Storage>>,
}

impl AppState {
    /// The object store, or 503 with the variable to set when uploads are not configured.
    pub async fn storage(&self) -> Result<&Storage, AppError> {
        let Some(s3) = &self.config.s3 else {
            return Err(AppError::Unavailable(
                "file storage is not configured: set S3_BUCKET (and AWS_REGION, S3_ENDPOINT for non-AWS endpoints)".into(),
            ));
        };
        Ok(self.storage.get_or_init(|| Storage::connect(s3)).await)
    }
}
