//! Processors: decode the job, call the service, map failures to retry/permanent.

pub mod cleanup;
pub mod database;
pub mod email;
pub mod kpi;
pub mod resume;

use bullmq::Job;
use serde_json::Value;

use super::{JobError, QueueName};
use crate::services::mail::Mailer;
use crate::state::AppState;

/// Runs `job` with the processor of the queue it came from.
pub async fn process(
    queue: QueueName,
    state: &AppState,
    mailer: &Mailer,
    job: &Job,
) -> Result<Value, JobError> {
    match queue {
        QueueName::Email => email::process(state, mailer, job).await,
        QueueName::Database => database::process(state, job).await,
        QueueName::Cleanup => cleanup::process(state).await,
        QueueName::Kpi => kpi::process(state).await,
        QueueName::ResumeAnalysis => resume::process(state, job).await,
    }
}
