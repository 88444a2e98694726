//! The single shared state handed to every handler and worker.

use std::sync::Arc;
use std::time::Instant;

use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::auth::JwtKeys;
use crate::config::Config;

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
}
