//! Readiness of PostgreSQL and Redis for `/api/health`. Concurrent callers share the
//! probe in flight (single-flight): a burst of health checks (a load balancer, kubelet
//! and the operator's gate at once) costs one database and one Redis round trip, and
//! every answer still comes from a probe that was running when the caller asked, never
//! from one that had finished before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use redis::aio::ConnectionManager;
use sqlx::PgPool;

/// A dependency that does not answer within this counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency's answer.
#[derive(Debug, Clone)]
pub struct Check {
    pub up: bool,
    pub latency: Duration,
    pub error: Option<String>,
}

/// Both dependencies' answers from one probe.
#[derive(Debug, Clone)]
pub struct Probe {
    pub database: Check,
    pub redis: Check,
}

impl Probe {
    pub fn healthy(&self) -> bool {
        self.database.up && self.redis.up
    }
}

type InFlight = Shared<BoxFuture<'static, Arc<Probe>>>;

/// The shared probe of one process.
#[derive(Default)]
pub struct Readiness {
    /// The probe in flight and its number; the probe empties the slot as it finishes.
    in_flight: Arc<Mutex<Option<(u64, InFlight)>>>,
    started: AtomicU64,
}

impl Readiness {
    /// Joins the probe in flight, or starts one.
    pub async fn probe(&self, db: &PgPool, redis: &ConnectionManager) -> Arc<Probe> {
        self.shared(|| run(db.clone(), redis.clone()).boxed()).await
    }

    async fn shared(&self, start: impl FnOnce() -> BoxFuture<'static, Arc<Probe>>) -> Arc<Probe> {
        let probe = {
            let mut slot = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some((_, probe)) => probe.clone(),
                None => {
                    let number = self.started.fetch_add(1, Ordering::Relaxed);
                    let check = start();
                    let in_flight = self.in_flight.clone();
                    // Cleared by the probe itself when it finishes, so a caller arriving
                    // after that starts a fresh one, never joins a finished one.
                    let probe = async move {
                        let outcome = check.await;
                        let mut slot = in_flight.lock().unwrap_or_else(|e| e.into_inner());
                        if slot.as_ref().is_some_and(|(n, _)| *n == number) {
                            *slot = None;
                        }
                        outcome
                    }
                    .boxed()
                    .shared();
                    *slot = Some((number, probe.clone()));
                    probe
                }
            }
        };
        probe.await
    }
}

async fn run(db: PgPool, mut redis: ConnectionManager) -> Arc<Probe> {
    let (database, redis) = tokio::join!(
        timed(async move { sqlx::query("select 1").execute(&db).await.map(|_| ()) }),
        timed(async move {
            redis::cmd("PING")
                .query_async::<String>(&mut redis)
                .await
                .map(|_| ())
        }),
    );
    Arc::new(Probe { database, redis })
}

async fn timed<F, E>(check: F) -> Check
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, check).await;
    let latency = started.elapsed();
    match outcome {
        Ok(Ok(())) => Check {
            up: true,
            latency,
            error: None,
        },
        Ok(Err(e)) => Check {
            up: false,
            latency,
            error: Some(e.to_string()),
        },
        Err(_) => Check {
            up: false,
            latency,
            error: Some("timed out".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn up() -> Check {
        Check {
            up: true,
            latency: Duration::ZERO,
            error: None,
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_probe_and_later_callers_start_a_new_one() {
        let readiness = Arc::new(Readiness::default());
        let started = Arc::new(AtomicUsize::new(0));
        let call = |readiness: Arc<Readiness>, started: Arc<AtomicUsize>| async move {
            readiness
                .shared(|| {
                    started.fetch_add(1, Ordering::SeqCst);
                    async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Arc::new(Probe {
                            database: up(),
                            redis: up(),
                        })
                    }
                    .boxed()
                })
                .await
        };
        let burst: Vec<_> = (0..20)
            .map(|_| tokio::spawn(call(readiness.clone(), started.clone())))
            .collect();
        for caller in burst {
            assert!(caller.await.unwrap().healthy());
        }
        assert_eq!(started.load(Ordering::SeqCst), 1, "one probe for the burst");
        // Finished probes are never reused: the next caller gets a fresh answer.
        call(readiness.clone(), started.clone()).await;
        assert_eq!(started.load(Ordering::SeqCst), 2);
    }
}
