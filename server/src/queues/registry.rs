use std::sync::Arc;

use bullmq::options::RedisConnectionOptions;
use bullmq::types::{BackoffStrategy, KeepJobs, RemoveOnFinish};
use bullmq::{JobOptions, Queue, QueueOptions};
use serde::Serialize;
use tokio::sync::OnceCell;

use super::QueueName;
use crate::config::QueueConfig;
use crate::error::AppError;

/// Completed jobs kept for the dashboard; failed jobs are kept longer (with their reason).
const KEEP_COMPLETED: usize = 1000;
const KEEP_FAILED: usize = 5000;

#[derive(Debug, thiserror::Error)]
#[error("queue {queue}: {source}")]
pub struct QueueError {
    pub queue: QueueName,
    #[source]
    pub source: bullmq::Error,
}

impl From<QueueError> for AppError {
    fn from(err: QueueError) -> Self {
        tracing::error!(error = %err, "queue unavailable");
        AppError::unavailable(format!("queue {} is unavailable", err.queue))
    }
}

/// Producer handles for every queue, connected on first use so building the
/// state stays synchronous and an API-only process without jobs never dials Redis.
#[derive(Clone)]
pub struct Queues {
    inner: Arc<Inner>,
}

struct Inner {
    connection: RedisConnectionOptions,
    config: QueueConfig,
    handles: [OnceCell<Queue>; 5],
}

impl Queues {
    pub fn new(redis_url: &str, config: QueueConfig) -> Self {
        Self::with_connection(RedisConnectionOptions::new().url(redis_url), config)
    }

    /// Like [`Queues::new`] with full connection options (TLS certificates).
    pub fn with_connection(connection: RedisConnectionOptions, config: QueueConfig) -> Self {
        Queues {
            inner: Arc::new(Inner {
                connection,
                config,
                handles: Default::default(),
            }),
        }
    }

    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    pub fn connection(&self) -> &RedisConnectionOptions {
        &self.inner.connection
    }

    /// Attempts, exponential backoff and retention every job gets.
    pub fn job_options(&self) -> JobOptions {
        let config = &self.inner.config;
        JobOptions {
            attempts: Some(config.attempts),
            backoff: Some(BackoffStrategy::Exponential(
                config.backoff.as_millis() as u64
            )),
            remove_on_complete: Some(RemoveOnFinish::Options(KeepJobs {
                age: None,
                count: Some(KEEP_COMPLETED),
                limit: None,
            })),
            remove_on_fail: Some(RemoveOnFinish::Options(KeepJobs {
                age: None,
                count: Some(KEEP_FAILED),
                limit: None,
            })),
            ..JobOptions::default()
        }
    }

    pub async fn get(&self, name: QueueName) -> Result<&Queue, QueueError> {
        self.inner.handles[name.index()]
            .get_or_try_init(|| async {
                let options = QueueOptions::new()
                    .connection(self.inner.connection.clone())
                    .prefix(self.inner.config.prefix.clone())
                    .default_job_options(self.job_options());
                Queue::with_options(name.as_str(), options).await
            })
            .await
            .map_err(|source| QueueError {
                queue: name,
                source,
            })
    }

    /// Adds a job with the default options. A `job_id` makes the add idempotent:
    /// BullMQ ignores a second add with an id that already exists.
    pub async fn add<T: Serialize>(
        &self,
        name: QueueName,
        job_name: &str,
        data: T,
        job_id: Option<String>,
    ) -> Result<String, QueueError> {
        let queue = self.get(name).await?;
        let mut options = self.job_options();
        options.job_id = job_id;
        let job = queue
            .add(job_name, data)
            .options(options)
            .await
            .map_err(|source| QueueError {
                queue: name,
                source,
            })?;
        Ok(job.id().to_string())
    }

    /// [`Queues::add`] for a job that runs no earlier than `delay` from now (scheduled
    /// voice calls).
    pub async fn add_delayed<T: Serialize>(
        &self,
        name: QueueName,
        job_name: &str,
        data: T,
        job_id: Option<String>,
        delay: std::time::Duration,
    ) -> Result<String, QueueError> {
        let queue = self.get(name).await?;
        let mut options = self.job_options();
        options.job_id = job_id;
        options.delay = Some(delay.as_millis() as u64);
        let job = queue
            .add(job_name, data)
            .options(options)
            .await
            .map_err(|source| QueueError {
                queue: name,
                source,
            })?;
        Ok(job.id().to_string())
    }

    /// Closes the producer connections that were opened.
    pub async fn close(&self) {
        for handle in &self.inner.handles {
            if let Some(queue) = handle.get() {
                queue.close().await;
            }
        }
    }
}
