//! Read and operate the queues for the admin dashboard (counts, recent and failed
//! jobs, retry, clean) on top of bullmq's getters.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};
use crate::queues::{QueueName, Queues};

/// States a job list or a clean can target (BullMQ's names).
pub const STATES: [&str; 6] = [
    "waiting",
    "active",
    "delayed",
    "prioritized",
    "completed",
    "failed",
];

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueSummary {
    pub name: String,
    pub counts: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: String,
    pub name: String,
    pub data: Value,
    pub attempts_made: u32,
    pub max_attempts: Option<u32>,
    /// Unix ms.
    pub timestamp: u64,
    pub processed_on: Option<u64>,
    pub finished_on: Option<u64>,
    pub failed_reason: Option<String>,
    pub return_value: Option<String>,
}

fn bull_error(queue: QueueName, err: bullmq::Error) -> AppError {
    tracing::error!(%queue, error = %err, "queue operation failed");
    AppError::unavailable(format!("queue {queue} is unavailable"))
}

pub fn parse_queue(name: &str) -> AppResult<QueueName> {
    name.parse().map_err(|_| {
        AppError::not_found(format!(
            "unknown queue {name:?}; known: {}",
            QueueName::ALL.map(|q| q.as_str()).join(", ")
        ))
    })
}

pub fn parse_state(state: &str) -> AppResult<&'static str> {
    STATES
        .into_iter()
        .find(|s| *s == state)
        .ok_or_else(|| AppError::validation(format!("state must be one of {}", STATES.join(", "))))
}

pub async fn summary(queues: &Queues, name: QueueName) -> AppResult<QueueSummary> {
    let queue = queues.get(name).await?;
    let c = queue
        .get_job_counts()
        .await
        .map_err(|e| bull_error(name, e))?;
    let counts = BTreeMap::from([
        ("waiting".to_string(), c.waiting + c.paused),
        ("active".to_string(), c.active),
        ("delayed".to_string(), c.delayed),
        ("prioritized".to_string(), c.prioritized),
        ("completed".to_string(), c.completed),
        ("failed".to_string(), c.failed),
    ]);
    Ok(QueueSummary {
        name: name.as_str().to_string(),
        counts,
    })
}

pub async fn summaries(queues: &Queues) -> AppResult<Vec<QueueSummary>> {
    let mut out = Vec::with_capacity(QueueName::ALL.len());
    for name in QueueName::ALL {
        out.push(summary(queues, name).await?);
    }
    Ok(out)
}

/// Newest first.
pub async fn jobs(
    queues: &Queues,
    name: QueueName,
    state: &'static str,
    limit: usize,
) -> AppResult<Vec<JobView>> {
    let queue = queues.get(name).await?;
    let end = limit.clamp(1, 500) as i64 - 1;
    let jobs = queue
        .get_jobs(&[state], 0, end, false)
        .await
        .map_err(|e| bull_error(name, e))?;
    Ok(jobs
        .into_iter()
        .map(|j| JobView {
            id: j.id().to_string(),
            name: j.name().to_string(),
            data: j.data().clone(),
            attempts_made: j.attempts_made(),
            max_attempts: j.opts().attempts,
            timestamp: j.timestamp(),
            processed_on: j.processed_on(),
            finished_on: j.finished_on(),
            failed_reason: Some(j.failed_reason().to_string()).filter(|s| !s.is_empty()),
            return_value: Some(j.returnvalue().to_string()).filter(|s| !s.is_empty()),
        })
        .collect())
}

/// Moves every failed job back to waiting.
pub async fn retry_failed(queues: &Queues, name: QueueName) -> AppResult<()> {
    let queue = queues.get(name).await?;
    queue
        .retry_jobs("failed", 1000, None)
        .await
        .map_err(|e| bull_error(name, e))
}

/// Retries one failed job.
pub async fn retry_job(queues: &Queues, name: QueueName, job_id: &str) -> AppResult<()> {
    let queue = queues.get(name).await?;
    let mut job = queue
        .get_job(job_id)
        .await
        .map_err(|e| bull_error(name, e))?
        .ok_or_else(|| AppError::not_found(format!("job {job_id} not found in {name}")))?;
    job.retry("failed", None).await.map_err(|e| match e {
        bullmq::Error::Script { .. } | bullmq::Error::JobNotInState(..) => {
            AppError::conflict(format!("job {job_id} is not failed"))
        }
        other => bull_error(name, other),
    })
}

/// Removes jobs in `state` (completed or failed) older than `grace_ms`; returns how many.
pub async fn clean(
    queues: &Queues,
    name: QueueName,
    state: &'static str,
    grace_ms: u64,
) -> AppResult<usize> {
    if !matches!(state, "completed" | "failed") {
        return Err(AppError::validation(
            "only completed or failed jobs can be cleaned",
        ));
    }
    let queue = queues.get(name).await?;
    let removed = queue
        .clean(grace_ms, 0, state)
        .await
        .map_err(|e| bull_error(name, e))?;
    Ok(removed.len())
}
