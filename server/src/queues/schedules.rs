//! Repeatable jobs. `upsert_job_scheduler` is keyed by scheduler id, so every
//! replica may call [`ensure`] at boot: the result is one scheduler per id and
//! one pending iteration, however many processes start.

use bullmq::job_scheduler::RepeatOptions;

use super::{QueueName, Queues};

pub const CLEANUP_SCHEDULER: &str = "cleanup-every-24h";
pub const KPI_SCHEDULER: &str = "kpi-every-15m";

pub async fn ensure(queues: &Queues) -> anyhow::Result<()> {
    let config = queues.config();
    upsert(
        queues,
        QueueName::Cleanup,
        CLEANUP_SCHEDULER,
        "cleanup",
        config.cleanup_every.as_millis() as u64,
    )
    .await?;
    upsert(
        queues,
        QueueName::Kpi,
        KPI_SCHEDULER,
        "compute-kpis",
        config.kpi_every.as_millis() as u64,
    )
    .await?;
    Ok(())
}

async fn upsert(
    queues: &Queues,
    queue: QueueName,
    id: &str,
    job_name: &str,
    every_ms: u64,
) -> anyhow::Result<()> {
    let handle = queues.get(queue).await?;
    let repeat = RepeatOptions {
        every: Some(every_ms.max(1000)),
        ..RepeatOptions::default()
    };
    handle
        .upsert_job_scheduler(
            id,
            repeat,
            Some(job_name),
            Some(serde_json::json!({})),
            Some(queues.job_options()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating job scheduler {id} on {queue}: {e}"))?;
    Ok(())
}
