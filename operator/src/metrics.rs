//! A few counters, rendered in the Prometheus text format at /metrics.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub reconciles: AtomicU64,
    pub reconcile_errors: AtomicU64,
    pub traffic_switches: AtomicU64,
    pub gate_failures: AtomicU64,
    pub rollouts_failed: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let rows = [
            (
                "mas_operator_reconciles_total",
                "Reconcile runs",
                &self.reconciles,
            ),
            (
                "mas_operator_reconcile_errors_total",
                "Reconcile runs that failed",
                &self.reconcile_errors,
            ),
            (
                "mas_operator_traffic_switches_total",
                "Stable Service selector switches",
                &self.traffic_switches,
            ),
            (
                "mas_operator_gate_failures_total",
                "Failed health-gate rounds",
                &self.gate_failures,
            ),
            (
                "mas_operator_rollouts_failed_total",
                "Rollouts that failed the gate or deadline",
                &self.rollouts_failed,
            ),
        ];
        let mut out = String::new();
        for (name, help, v) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::inc(&m.traffic_switches);
        let text = m.render();
        assert!(text.contains("# TYPE mas_operator_traffic_switches_total counter\nmas_operator_traffic_switches_total 1\n"));
        assert!(text.contains("mas_operator_reconciles_total 0\n"));
    }
}
