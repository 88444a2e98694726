//! Continuous HTTP load through the ingress: a few workers sending GETs back to back on one
//! keep-alive pool, counting every outcome (a reset connection or a non-2xx is a failure),
//! recording latency and when each server version (`x-app-version`) answered first. Bounded
//! in requests and time; stops by itself.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub requests: u64,
    pub failures: Vec<(Duration, String)>,
    /// Version → offset from the start of its first answer.
    pub first_seen: BTreeMap<String, Duration>,
    /// Version of the last answer.
    pub last_version: Option<String>,
    /// (offset from start, latency) of every request.
    pub latencies: Vec<(Duration, Duration)>,
}

impl Stats {
    /// Latency quantile (0..=1) of the requests that started within `window`.
    pub fn quantile(&self, q: f64, window: std::ops::Range<Duration>) -> Option<Duration> {
        let mut v: Vec<Duration> = self
            .latencies
            .iter()
            .filter(|(at, _)| window.contains(at))
            .map(|(_, l)| *l)
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort();
        let idx = ((v.len() as f64 - 1.0) * q).round() as usize;
        Some(v[idx.min(v.len() - 1)])
    }
}

pub struct Load {
    pub started: Instant,
    stop: watch::Sender<bool>,
    stats: Arc<Mutex<Stats>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `workers` loops on `url` until `stop`, `max_requests` in all or `max_time`.
    pub fn start(url: String, workers: usize, max_requests: u64, max_time: Duration) -> Self {
        let started = Instant::now();
        let (stop, stopped) = watch::channel(false);
        let stats: Arc<Mutex<Stats>> = Arc::default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(workers)
            .build()
            .unwrap();
        let tasks = (0..workers)
            .map(|_| {
                let (client, url, stats, stopped) =
                    (client.clone(), url.clone(), stats.clone(), stopped.clone());
                tokio::spawn(async move {
                    loop {
                        if *stopped.borrow() || started.elapsed() > max_time {
                            return;
                        }
                        {
                            let mut s = stats.lock().unwrap();
                            if s.requests >= max_requests {
                                return;
                            }
                            s.requests += 1;
                        }
                        let t0 = Instant::now();
                        let at = t0 - started;
                        let result = client.get(&url).send().await;
                        let took = t0.elapsed();
                        let mut s = stats.lock().unwrap();
                        s.latencies.push((at, took));
                        match result {
                            Ok(r) if r.status().is_success() => {
                                let v = r
                                    .headers()
                                    .get("x-app-version")
                                    .and_then(|h| h.to_str().ok())
                                    .unwrap_or("?")
                                    .to_owned();
                                s.first_seen.entry(v.clone()).or_insert(at);
                                s.last_version = Some(v);
                            }
                            Ok(r) => s.failures.push((at, format!("HTTP {}", r.status()))),
                            Err(e) => s.failures.push((at, crate::error_chain(&e))),
                        }
                    }
                })
            })
            .collect();
        Self {
            started,
            stop,
            stats,
            tasks,
        }
    }

    pub fn snapshot(&self) -> Stats {
        self.stats.lock().unwrap().clone()
    }

    /// Offset from the start at which `version` first answered.
    pub fn first_seen(&self, version: &str) -> Option<Duration> {
        self.stats.lock().unwrap().first_seen.get(version).copied()
    }

    pub async fn stop(self) -> Stats {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.stats.lock().unwrap().clone()
    }
}
