//! The single shared state handed to every handler and worker.

use std::sync::Arc;
use std::time::Instant;

use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::error::AppError;
use crate::services::integrations::Integrations;
use crate::services::storage::Storage;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub jwt: JwtKeys,
    /// Account status cache, invalidated across replicas (see `auth::status`).
    pub accounts: Arc<crate::auth::status::AccountStatuses>,
    /// Cancelled when shutdown starts: health turns 503, long-lived connections drain.
    pub shutdown: CancellationToken,
    pub started_at: Instant,
    /// `/api/health`'s probe, shared by concurrent callers.
    pub readiness: Arc<crate::services::readiness::Readiness>,
    /// BullMQ producers (every role can enqueue; workers run per PROCESS_ROLE).
    pub queues: crate::queues::Queues,
    /// Drain mode of the long-lived connections (operator drain and SIGTERM).
    pub connections: crate::realtime::drain::Connections,
    /// Built on first use: loading AWS credentials is async and only needed by upload routes.
    pub storage: Arc<tokio::sync::OnceCell<Storage>>,
    /// Which third-party integrations are configured, and their HTTP clients.
    pub integrations: Arc<Integrations>,
    /// Prometheus metrics (`GET /metrics` on the internal listener).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Caches of the Google, Judge0, ... integrations (keys, tokens, language lists).
    pub external: Arc<crate::services::external_caches::ExternalCaches>,
}

impl AppState {
    /// The object store client. Each bucket is checked at use
    /// ([`Storage::bucket`]): an unset one answers 503 `INTEGRATION_DISABLED`.
    pub async fn storage(&self) -> Result<&Storage, AppError> {
        Ok(self
            .storage
            .get_or_init(|| Storage::connect(&self.config.storage, self.integrations.clone()))
            .await)
    }
}
