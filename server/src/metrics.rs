//! Prometheus metrics of one server process, served as `GET /metrics` on the internal
//! listener (`INTERNAL_PORT`) only: the ingress never routes it, so it is not public.
//!
//! Counted as they happen: HTTP requests by route template and status, with a latency
//! histogram. Read at scrape time: Socket.IO connections and rooms, terminal relays, queue
//! jobs by queue and state (from Redis, so every replica reports the shared queues), and the
//! database pool.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route template (`/api/meetings/{id}`), never the raw path: bounded cardinality.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// What a scrape reads from the live process (filled by the `/metrics` handler).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub sockets: usize,
    pub rooms: usize,
    pub relays: usize,
    /// (queue, state, jobs)
    pub queue_jobs: Vec<(String, String, u64)>,
    pub pool_size: u32,
    pub pool_idle: usize,
    pub pool_max: u32,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    sockets: Gauge,
    rooms: Gauge,
    relays: Gauge,
    queue_jobs: Family<QueueLabels, Gauge>,
    pool: Family<PoolLabels, Gauge>,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mas_server");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let (sockets, rooms, relays) = (Gauge::default(), Gauge::default(), Gauge::default());
        let queue_jobs = Family::<QueueLabels, Gauge>::default();
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route template",
            latency.clone(),
        );
        registry.register(
            "socketio_connections",
            "Socket.IO connections on this replica",
            sockets.clone(),
        );
        registry.register(
            "socketio_rooms",
            "Socket.IO rooms with a member on this replica",
            rooms.clone(),
        );
        registry.register(
            "terminal_relays",
            "Terminal relay connections (browser and CLI ends) on this replica",
            relays.clone(),
        );
        registry.register(
            "queue_jobs",
            "Jobs per queue and state (shared by every replica)",
            queue_jobs.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state (idle, in_use, max)",
            pool.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            sockets,
            rooms,
            relays,
            queue_jobs,
            pool,
        }
    }
}

fn gauge_value(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl Metrics {
    pub fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// The Prometheus text exposition of everything, with the scrape-time values of `now`.
    pub fn render(&self, now: &Snapshot) -> String {
        self.sockets.set(gauge_value(now.sockets));
        self.rooms.set(gauge_value(now.rooms));
        self.relays.set(gauge_value(now.relays));
        self.queue_jobs.clear();
        for (queue, state, jobs) in &now.queue_jobs {
            self.queue_jobs
                .get_or_create(&QueueLabels {
                    queue: queue.clone(),
                    state: state.clone(),
                })
                .set(gauge_value(*jobs));
        }
        let in_use = u64::from(now.pool_size).saturating_sub(now.pool_idle as u64);
        for (state, value) in [
            ("idle", gauge_value(now.pool_idle)),
            ("in_use", gauge_value(in_use)),
            ("max", gauge_value(now.pool_max)),
        ] {
            self.pool.get_or_create(&PoolLabels { state }).set(value);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_template_and_scrape_values_are_set() {
        let m = Metrics::default();
        m.observe_request("GET", "/api/meetings/{id}", 200, Duration::from_millis(3));
        m.observe_request("GET", "/api/meetings/{id}", 200, Duration::from_millis(5));
        let text = m.render(&Snapshot {
            sockets: 4,
            queue_jobs: vec![("emailQueue".into(), "failed".into(), 2)],
            pool_size: 5,
            pool_idle: 3,
            pool_max: 20,
            ..Snapshot::default()
        });
        assert!(
            text.contains(
                r#"mas_server_http_requests_total{method="GET",route="/api/meetings/{id}",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains("mas_server_http_request_duration_seconds_count{method=\"GET\",route=\"/api/meetings/{id}\"} 2"));
        assert!(text.contains("mas_server_socketio_connections 4"));
        assert!(text.contains(r#"mas_server_queue_jobs{queue="emailQueue",state="failed"} 2"#));
        assert!(text.contains(r#"mas_server_db_pool_connections{state="in_use"} 2"#));
        assert!(text.ends_with("# EOF\n"));
    }
}
