//! Operator's own HTTP endpoint: /healthz (liveness: the controller loop is not hung),
//! /readyz (the watch caches are filled and the controller runs), /metrics (Prometheus text).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::{
    Router, extract::State, http::StatusCode, http::header, response::IntoResponse, routing::get,
};

use crate::metrics::Metrics;

/// A reconcile running longer than this means the controller is hung.
const STUCK_AFTER: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// Set once the controller runs (caches filled, CRD installed); leadership is not required:
    /// a standby replica is ready to take over.
    pub ready: Arc<AtomicBool>,
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render))
        .with_state(health)
}

async fn healthz(State(h): State<Health>) -> impl IntoResponse {
    match h.metrics.stuck(STUCK_AFTER) {
        None => (StatusCode::OK, "ok".to_owned()),
        Some(d) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("a reconcile has been running for {}s", d.as_secs()),
        ),
    }
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

async fn render(State(h): State<Health>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.render(),
    )
}
