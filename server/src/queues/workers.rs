use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bullmq::worker::WorkerEvent;
use bullmq::{Job, Worker, WorkerOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{JobError, QueueName, Queues, jobs, relay, schedules};
use crate::config::QueueConfig;
use crate::state::AppState;

/// How long an idle worker blocks on Redis before re-checking; bounds how long
/// `close` waits for an idle fetcher.
const DRAIN_DELAY: Duration = Duration::from_secs(1);

/// One running BullMQ worker and the task that logs its events.
pub struct RunningWorker {
    pub queue: QueueName,
    queues: Queues,
    worker: Arc<Worker>,
    events: JoinHandle<()>,
    stop_events: CancellationToken,
}

impl RunningWorker {
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Stops fetching, lets running jobs finish within `grace`, then closes.
    pub async fn close(self, grace: Duration) {
        let (closed, ()) = tokio::join!(
            self.worker.close(grace.as_millis() as u64),
            wake_idle_fetcher(&self.queues, self.queue)
        );
        if let Err(err) = closed {
            tracing::warn!(queue = %self.queue, error = %err, "closing worker");
        }
        self.stop_events.cancel();
        let _ = self.events.await;
    }
}

/// An idle worker blocks on the queue's marker key for up to 5 s (longer when only
/// delayed jobs exist); a marker wakes it so `close` returns promptly. Markers are
/// only hints to fetch, so an extra one is harmless to other workers.
async fn wake_idle_fetcher(queues: &Queues, queue: QueueName) {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let Ok(handle) = queues.get(queue).await else {
        return;
    };
    let mut conn = handle.connection().connection();
    let woke: Result<(), redis::RedisError> = redis::cmd("ZADD")
        .arg(handle.keys().marker())
        .arg(0)
        .arg("0")
        .query_async(&mut conn)
        .await;
    if let Err(err) = woke {
        tracing::debug!(%queue, error = %err, "could not wake the idle worker");
    }
}

/// Starts a worker on `queue` with the shared connection, prefix and the given
/// concurrency; `process` runs each job. Failures are logged with their reason.
pub async fn spawn_worker<F, Fut>(
    queues: &Queues,
    queue: QueueName,
    concurrency: usize,
    process: F,
) -> Result<RunningWorker, bullmq::Error>
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<serde_json::Value, JobError>> + Send + 'static,
{
    let options = WorkerOptions::new()
        .connection(queues.connection().clone())
        .prefix(queues.config().prefix.clone())
        .concurrency(concurrency)
        .drain_delay(DRAIN_DELAY)
        .name(format!("mas-{}", std::process::id()));
    let process = Arc::new(process);
    let worker = Worker::with_options(
        queue.as_str(),
        move |job: Job, _cancel| {
            let process = process.clone();
            async move { process(job).await.map_err(bullmq::Error::from) }
        },
        options,
    )
    .await?;
    let worker = Arc::new(worker);
    let stop_events = CancellationToken::new();
    let events = tokio::spawn(log_events(queue, worker.clone(), stop_events.clone()));
    Ok(RunningWorker {
        queue,
        queues: queues.clone(),
        worker,
        events,
        stop_events,
    })
}

/// Drains the worker's event channel (it is unbounded) into the log.
async fn log_events(queue: QueueName, worker: Arc<Worker>, stop: CancellationToken) {
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = worker.next_event() => event,
        };
        match event {
            None => return,
            Some(WorkerEvent::Failed { job_id, error }) => {
                tracing::warn!(%queue, %job_id, reason = %error, "job attempt failed");
            }
            Some(WorkerEvent::Completed { job_id, .. }) => {
                tracing::debug!(%queue, %job_id, "job completed");
            }
            Some(WorkerEvent::Error(error)) => {
                tracing::error!(%queue, %error, "worker error");
            }
            Some(WorkerEvent::Stalled { job_id }) => {
                tracing::warn!(%queue, %job_id, "job stalled; it will be retried");
            }
            Some(_) => {}
        }
    }
}

fn concurrency(config: &QueueConfig, queue: QueueName) -> usize {
    match queue {
        QueueName::Email => config.email_concurrency,
        QueueName::Database => config.database_concurrency,
        QueueName::Cleanup => config.cleanup_concurrency,
        QueueName::Kpi => config.kpi_concurrency,
        QueueName::ResumeAnalysis => config.resume_concurrency,
    }
}

/// All workers of this process plus the email outbox relay.
pub struct WorkerSet {
    workers: Vec<RunningWorker>,
    relay: JoinHandle<()>,
    inbox_relay: JoinHandle<()>,
    stop_relay: CancellationToken,
}

impl WorkerSet {
    /// Ensures the repeatable schedules, then starts one worker per queue and the relay.
    pub async fn start(state: &AppState) -> anyhow::Result<WorkerSet> {
        schedules::ensure(&state.queues).await?;
        let config = state.queues.config().clone();
        let mailer = Arc::new(crate::services::mail::Mailer::from_config(
            state.config.smtp.as_ref(),
        ));
        let mut workers = Vec::with_capacity(QueueName::ALL.len());
        for queue in QueueName::ALL {
            let (s, mailer) = (state.clone(), mailer.clone());
            let worker = spawn_worker(
                &state.queues,
                queue,
                concurrency(&config, queue),
                move |job| {
                    let (s, mailer) = (s.clone(), mailer.clone());
                    async move { jobs::process(queue, &s, &mailer, &job).await }
                },
            )
            .await?;
            workers.push(worker);
        }

        let stop_relay = CancellationToken::new();
        let relay = tokio::spawn(relay::run(
            state.db.clone(),
            state.queues.clone(),
            config.outbox_poll,
            config.redrive_after,
            stop_relay.clone(),
        ));
        // Webhooks and WhatsApp sends whose job never reached Redis, same cadence.
        let inbox_relay = tokio::spawn(crate::services::webhooks::run_relay(
            state.db.clone(),
            state.queues.clone(),
            config.outbox_poll,
            config.redrive_after,
            stop_relay.clone(),
        ));
        tracing::info!(prefix = %config.prefix, "queue workers started");
        Ok(WorkerSet {
            workers,
            relay,
            inbox_relay,
            stop_relay,
        })
    }

    pub fn workers(&self) -> &[RunningWorker] {
        &self.workers
    }

    /// Stops taking jobs everywhere at once; running jobs get `grace` to finish.
    pub async fn close(self, grace: Duration) {
        self.stop_relay.cancel();
        futures::future::join_all(self.workers.into_iter().map(|w| w.close(grace))).await;
        let _ = self.relay.await;
        let _ = self.inbox_relay.await;
        tracing::info!("queue workers stopped");
    }
}
