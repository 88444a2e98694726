//! Prometheus metrics (prometheus-client, text format at /metrics), in the style of Argo
//! Rollouts: per-object state gauges, release outcome counters and duration histograms, and
//! the controller's own health (reconcile latency, errors, leadership, loop liveness).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::{
    Color, MasBackendSpec, MasBackendStatus, Release, conditions, conditions::ConditionType,
};
use crate::rollout::DeploymentFacts;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Object {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Info {
    namespace: String,
    name: String,
    strategy: String,
    phase: String,
    active_color: String,
    revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ColorLabels {
    namespace: String,
    name: String,
    color: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReleaseLabels {
    namespace: String,
    name: String,
    trigger: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    namespace: String,
    name: String,
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: String,
    resource: String,
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    // 0.1 s … ~27 min
    exponential_buckets(0.1, 2.0, 15)
}

pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    reconcile_duration: Histogram,
    reconcile_errors: Family<ErrorLabels, Counter>,
    info: Family<Info, Gauge>,
    replicas_desired: Family<Object, Gauge>,
    replicas_available: Family<ColorLabels, Gauge>,
    ready: Family<Object, Gauge>,
    degraded: Family<Object, Gauge>,
    releases: Family<ReleaseLabels, Counter>,
    switch_duration: Family<TriggerLabels, Histogram>,
    gate_duration: Family<Object, Histogram>,
    gate_failures: Family<Object, Counter>,
    traffic_switches: Family<Object, Counter>,
    secrets_calls: Family<ResultLabels, Counter>,
    leader: Gauge,
    api_requests: Family<RequestLabels, Counter>,
    /// Last info labels per object, to drop a label set when its phase or color changes.
    last_info: Mutex<HashMap<(String, String), Info>>,
    started: Instant,
    /// Milliseconds since `started` of the last reconcile that finished / of the controller
    /// loop's last progress.
    last_reconcile_ms: AtomicI64,
    in_flight_since_ms: AtomicI64,
    in_flight: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mas");
        let reconciles = Counter::default();
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let info = Family::<Info, Gauge>::default();
        let replicas_desired = Family::<Object, Gauge>::default();
        let replicas_available = Family::<ColorLabels, Gauge>::default();
        let ready = Family::<Object, Gauge>::default();
        let degraded = Family::<Object, Gauge>::default();
        let releases = Family::<ReleaseLabels, Counter>::default();
        let switch_duration = Family::<TriggerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(seconds_buckets())
        });
        let gate_duration =
            Family::<Object, Histogram>::new_with_constructor(|| Histogram::new(seconds_buckets()));
        let gate_failures = Family::<Object, Counter>::default();
        let traffic_switches = Family::<Object, Counter>::default();
        let secrets_calls = Family::<ResultLabels, Counter>::default();
        let leader = Gauge::default();
        let api_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "operator_api_requests",
            "Requests this operator sent to the Kubernetes API, by verb and resource",
            api_requests.clone(),
        );
        registry.register("operator_reconciles", "Reconcile runs", reconciles.clone());
        registry.register(
            "operator_reconcile_duration_seconds",
            "Duration of one reconcile (observe, step, build, apply, status)",
            reconcile_duration.clone(),
        );
        registry.register(
            "operator_reconcile_errors",
            "Failed reconciles by step",
            reconcile_errors.clone(),
        );
        registry.register(
            "masbackend_info",
            "One series per MasBackend with its strategy, phase, live color and revision",
            info.clone(),
        );
        registry.register(
            "masbackend_replicas_desired",
            "spec.replicas",
            replicas_desired.clone(),
        );
        registry.register(
            "masbackend_replicas_available",
            "Ready pods per color",
            replicas_available.clone(),
        );
        registry.register(
            "masbackend_ready",
            "1 when the current spec is released (condition Ready)",
            ready.clone(),
        );
        registry.register(
            "masbackend_degraded",
            "1 while condition Degraded is True",
            degraded.clone(),
        );
        registry.register(
            "release",
            "Release attempts by trigger and outcome",
            releases.clone(),
        );
        registry.register(
            "release_switch_duration_seconds",
            "From a release's start (spec change or request) to the traffic switch",
            switch_duration.clone(),
        );
        registry.register(
            "release_gate_duration_seconds",
            "From all standby replicas ready to the health gate passing",
            gate_duration.clone(),
        );
        registry.register(
            "gate_failures",
            "Failed health-gate and verification rounds",
            gate_failures.clone(),
        );
        registry.register(
            "traffic_switches",
            "Stable Service selector switches",
            traffic_switches.clone(),
        );
        registry.register(
            "secrets_manager_calls",
            "AWS Secrets Manager reads by result",
            secrets_calls.clone(),
        );
        registry.register(
            "operator_leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_duration,
            reconcile_errors,
            info,
            replicas_desired,
            replicas_available,
            ready,
            degraded,
            releases,
            switch_duration,
            gate_duration,
            gate_failures,
            traffic_switches,
            secrets_calls,
            leader,
            api_requests,
            last_info: Mutex::default(),
            started: Instant::now(),
            last_reconcile_ms: AtomicI64::new(0),
            in_flight_since_ms: AtomicI64::new(0),
            in_flight: AtomicU64::new(0),
        }
    }

    fn obj(ns: &str, name: &str) -> Object {
        Object {
            namespace: ns.to_owned(),
            name: name.to_owned(),
        }
    }

    fn ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    pub fn reconcile_started(&self) {
        if self.in_flight.fetch_add(1, Ordering::Relaxed) == 0 {
            self.in_flight_since_ms.store(self.ms(), Ordering::Relaxed);
        }
    }

    pub fn reconciled(&self, took: Duration) {
        self.reconciles.inc();
        self.reconcile_duration.observe(took.as_secs_f64());
        self.reconcile_ended();
    }

    fn reconcile_ended(&self) {
        self.last_reconcile_ms.store(self.ms(), Ordering::Relaxed);
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    pub fn reconcile_error(&self, step: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                error: step.to_owned(),
            })
            .inc();
        self.reconcile_ended();
    }

    /// The controller loop produced a result (it is alive).
    pub fn loop_progress(&self) {
        self.last_reconcile_ms.store(self.ms(), Ordering::Relaxed);
    }

    /// Liveness: a reconcile that has run for longer than `stuck` means a hung controller.
    pub fn stuck(&self, stuck: Duration) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let since = self.in_flight_since_ms.load(Ordering::Relaxed);
        let running = Duration::from_millis(u64::try_from(self.ms() - since).unwrap_or(0));
        (running > stuck).then_some(running)
    }

    /// One request to the Kubernetes API (`/apis/apps/v1/namespaces/x/deployments/y` →
    /// `PATCH deployments`; watches are `WATCH`).
    pub fn api_request(&self, method: &str, path: &str, query: Option<&str>) {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        // The resource is the segment after the namespace, or after the group/version.
        let resource = match parts.iter().position(|p| *p == "namespaces") {
            Some(i) if parts.len() > i + 2 => parts[i + 2],
            Some(_) => "namespaces",
            None if parts.first() == Some(&"api") => parts.get(2).copied().unwrap_or(""),
            None => parts.get(3).copied().unwrap_or(""),
        };
        let verb = if query.is_some_and(|q| q.contains("watch=true")) {
            "WATCH"
        } else {
            method
        };
        self.api_requests
            .get_or_create(&RequestLabels {
                verb: verb.to_owned(),
                resource: resource.to_owned(),
            })
            .inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    pub fn secrets_call(&self, ok: bool) {
        let result = if ok { "success" } else { "error" };
        self.secrets_calls
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    pub fn gate_failure(&self, ns: &str, name: &str) {
        self.gate_failures.get_or_create(&Self::obj(ns, name)).inc();
    }

    pub fn traffic_switch(&self, ns: &str, name: &str) {
        self.traffic_switches
            .get_or_create(&Self::obj(ns, name))
            .inc();
    }

    pub fn release_recorded(&self, ns: &str, name: &str, r: &Release) {
        let trigger = format!("{:?}", r.trigger);
        self.releases
            .get_or_create(&ReleaseLabels {
                namespace: ns.to_owned(),
                name: name.to_owned(),
                trigger: trigger.clone(),
                outcome: format!("{:?}", r.outcome),
            })
            .inc();
        if let Some(s) = r.switch_seconds {
            self.switch_duration
                .get_or_create(&TriggerLabels {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                    trigger,
                })
                .observe(s);
        }
        if let Some(g) = r.gate_seconds {
            self.gate_duration
                .get_or_create(&Self::obj(ns, name))
                .observe(g);
        }
    }

    /// Per-object gauges after a reconcile.
    pub fn observe_backend(
        &self,
        ns: &str,
        name: &str,
        spec: &MasBackendSpec,
        status: &MasBackendStatus,
        blue: Option<&DeploymentFacts>,
        green: Option<&DeploymentFacts>,
    ) {
        let o = Self::obj(ns, name);
        let info = Info {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            strategy: format!("{:?}", spec.strategy),
            phase: format!("{:?}", status.phase),
            active_color: status.active_color.map_or(String::new(), |c| c.to_string()),
            revision: status
                .active_revision
                .map_or(String::new(), |r| r.to_string()),
        };
        if let Ok(mut last) = self.last_info.lock()
            && let Some(old) = last.insert((ns.to_owned(), name.to_owned()), info.clone())
            && old != info
        {
            self.info.remove(&old);
        }
        self.info.get_or_create(&info).set(1);
        self.replicas_desired
            .get_or_create(&o)
            .set(i64::from(spec.replicas));
        for (color, facts) in [(Color::Blue, blue), (Color::Green, green)] {
            self.replicas_available
                .get_or_create(&ColorLabels {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                    color: color.to_string(),
                })
                .set(i64::from(facts.map_or(0, |f| f.ready_replicas)));
        }
        self.ready
            .get_or_create(&o)
            .set(i64::from(conditions::is_true(
                &status.conditions,
                ConditionType::Ready,
            )));
        self.degraded
            .get_or_create(&o)
            .set(i64::from(conditions::is_true(
                &status.conditions,
                ConditionType::Degraded,
            )));
    }

    /// Drops the series of a deleted MasBackend.
    pub fn forget(&self, ns: &str, name: &str) {
        let o = Self::obj(ns, name);
        if let Ok(mut last) = self.last_info.lock()
            && let Some(old) = last.remove(&(ns.to_owned(), name.to_owned()))
        {
            self.info.remove(&old);
        }
        self.replicas_desired.remove(&o);
        self.ready.remove(&o);
        self.degraded.remove(&o);
        for color in Color::ALL {
            self.replicas_available.remove(&ColorLabels {
                namespace: ns.to_owned(),
                name: name.to_owned(),
                color: color.to_string(),
            });
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_series_and_drops_old_label_sets() {
        let m = Metrics::new();
        m.traffic_switch("prod", "api");
        m.reconcile_error("apply");
        let spec: MasBackendSpec =
            serde_json::from_value(serde_json::json!({"image": "a:1"})).unwrap();
        let mut status = MasBackendStatus::default();
        m.observe_backend("prod", "api", &spec, &status, None, None);
        status.phase = crate::crd::Phase::Stable;
        m.observe_backend("prod", "api", &spec, &status, None, None);
        let text = m.render();
        assert!(
            text.contains("mas_traffic_switches_total{namespace=\"prod\",name=\"api\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mas_operator_reconcile_errors_total{error=\"apply\"} 1"),
            "{text}"
        );
        assert!(text.contains("phase=\"Stable\""), "{text}");
        assert!(
            !text.contains("phase=\"Pending\""),
            "old info series dropped: {text}"
        );
        m.forget("prod", "api");
        assert!(!m.render().contains("phase=\"Stable\""));
    }

    /// The Grafana dashboard in the chart plots only metrics this operator exports.
    #[test]
    fn the_dashboard_queries_exported_metrics() {
        let dashboard = include_str!("../../charts/mas-operator/dashboards/mas-operator.json");
        // Families render only once they have a series: give each one.
        let m = Metrics::new();
        let spec: MasBackendSpec =
            serde_json::from_value(serde_json::json!({"image": "a:1"})).unwrap();
        m.observe_backend("ns", "api", &spec, &MasBackendStatus::default(), None, None);
        let release: Release = serde_json::from_value(serde_json::json!({
            "revision": 1, "image": "a:1", "templateHash": "h", "color": "blue", "trigger": "Initial",
            "outcome": "Promoted", "startedAt": "2026-01-01T00:00:00Z", "at": "2026-01-01T00:00:05Z",
            "gateSeconds": 2.0, "switchSeconds": 5.0
        }))
        .unwrap();
        m.release_recorded("ns", "api", &release);
        m.gate_failure("ns", "api");
        m.traffic_switch("ns", "api");
        m.reconcile_error("apply");
        m.secrets_call(true);
        let text = m.render();
        let re = regex_lite::Regex::new(r"mas_[a-z_]+").unwrap();
        let mut seen = 0;
        for m in re.find_iter(dashboard) {
            let name = m.as_str();
            let base = ["_bucket", "_total", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "dashboard uses {name}, not exported:\n{text}"
            );
            seen += 1;
        }
        assert!(seen >= 8, "the dashboard queries the release metrics");
    }

    #[test]
    fn api_requests_are_counted_by_verb_and_resource() {
        let m = Metrics::new();
        m.api_request(
            "PATCH",
            "/apis/apps/v1/namespaces/prod/deployments/api-blue",
            Some("fieldManager=x"),
        );
        m.api_request(
            "GET",
            "/apis/platform.myanalyticsschool.com/v1alpha1/namespaces/prod/masbackends/api",
            None,
        );
        m.api_request(
            "GET",
            "/api/v1/namespaces/prod/pods",
            Some("watch=true&labelSelector=a"),
        );
        m.api_request("GET", "/api/v1/pods", Some("watch=true"));
        let text = m.render();
        for line in [
            "mas_operator_api_requests_total{verb=\"PATCH\",resource=\"deployments\"} 1",
            "mas_operator_api_requests_total{verb=\"GET\",resource=\"masbackends\"} 1",
            "mas_operator_api_requests_total{verb=\"WATCH\",resource=\"pods\"} 2",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }

    #[test]
    fn a_long_reconcile_is_reported_as_stuck() {
        let m = Metrics::new();
        assert_eq!(m.stuck(Duration::ZERO), None);
        m.reconcile_started();
        std::thread::sleep(Duration::from_millis(5));
        assert!(m.stuck(Duration::ZERO).is_some());
        m.reconciled(Duration::from_millis(5));
        assert_eq!(m.stuck(Duration::ZERO), None);
    }
}
