//! No-op job throughput through our worker layer (`queues::spawn_worker`), for
//! `scripts/bench-queues`. Not a test.
//!
//! env: REDIS_URL, BENCH_PREFIX, BENCH_JOBS (default 5000), BENCH_CONCURRENCY (default 10),
//! BENCH_TIMEOUT_SECS (default 300: fails instead of hanging when jobs are lost).
//! Prints one JSON line: {"impl":"rust","jobs":N,"concurrency":C,"seconds":S,"jobsPerSec":R,
//! "redisCpuMsAdd":A,"redisCpuMsWork":W} — Redis's own CPU (`INFO cpu`, user + sys) while adding
//! and while working the jobs off.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bullmq::BulkJob;
use mas_server::config::QueueConfig;
use mas_server::queues::{QueueName, Queues, spawn_worker};
use tokio::sync::Notify;

fn env_or(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => Ok(v.parse()?),
        Err(_) => Ok(default),
    }
}

/// Redis server CPU seconds so far (`used_cpu_user + used_cpu_sys` of `INFO cpu`).
async fn redis_cpu(redis: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(redis).await?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k, "used_cpu_user" | "used_cpu_sys").then(|| v.trim().parse::<f64>().ok())?
        })
        .sum())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let redis = std::env::var("REDIS_URL")?;
    let prefix = std::env::var("BENCH_PREFIX")?;
    let jobs = env_or("BENCH_JOBS", 5000)?;
    let concurrency = env_or("BENCH_CONCURRENCY", 10)?;
    let timeout = Duration::from_secs(env_or("BENCH_TIMEOUT_SECS", 300)? as u64);
    let mut probe = redis::Client::open(redis.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let config = QueueConfig {
        prefix,
        email_concurrency: concurrency,
        database_concurrency: 1,
        cleanup_concurrency: 1,
        kpi_concurrency: 1,
        resume_concurrency: 1,
        attempts: 1,
        backoff: Duration::from_millis(1000),
        outbox_poll: Duration::from_secs(1),
        redrive_after: Duration::from_secs(600),
        cleanup_every: Duration::from_secs(86_400),
        kpi_every: Duration::from_secs(900),
    };
    let queues = Queues::new(&redis, config);
    let queue = queues.get(QueueName::Email).await?;
    let cpu0 = redis_cpu(&mut probe).await?;
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(1000) {
        let batch = chunk
            .iter()
            .map(|i| {
                BulkJob::with_options("noop", serde_json::json!({ "i": i }), queues.job_options())
            })
            .collect();
        queue.add_bulk(batch).await?;
    }

    let cpu1 = redis_cpu(&mut probe).await?;

    let done = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(Notify::new());
    let started = Instant::now();
    let worker = spawn_worker(&queues, QueueName::Email, concurrency, {
        let (done, finished) = (done.clone(), finished.clone());
        move |_job| {
            let (done, finished) = (done.clone(), finished.clone());
            async move {
                if done.fetch_add(1, Ordering::SeqCst) + 1 == jobs {
                    finished.notify_one();
                }
                Ok(serde_json::Value::Null)
            }
        }
    })
    .await?;
    if tokio::time::timeout(timeout, finished.notified())
        .await
        .is_err()
    {
        anyhow::bail!(
            "only {} of {jobs} jobs completed within {timeout:?}",
            done.load(Ordering::SeqCst)
        );
    }
    // Completion is recorded just after the processor returns; wait for the last ones.
    while queue.get_active_count().await? > 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu2 = redis_cpu(&mut probe).await?;
    worker.close(Duration::from_secs(5)).await;
    queues.close().await;
    println!(
        "{}",
        serde_json::json!({"impl": "rust", "jobs": jobs, "concurrency": concurrency,
                           "seconds": seconds, "jobsPerSec": jobs as f64 / seconds,
                           "redisCpuMsAdd": (cpu1 - cpu0) * 1000.0,
                           "redisCpuMsWork": (cpu2 - cpu1) * 1000.0})
    );
    Ok(())
}
