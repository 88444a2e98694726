//! The internal listener (`INTERNAL_PORT`): what the operator calls on each pod, not
//! routed by the ingress and not part of the public API document.
//!
//! * `POST /internal/connections/drain` `{"reconnectWithinSeconds": 1..=600}` (default
//!   10) → 202 `{sockets, relays}`, then moves them (see [`Realtime::drain`]).
//! * `POST /internal/connections/resume` → 200: accept new connections again.
//!
//! Both need `Authorization: Bearer <CONTROL_TOKEN>`; without `CONTROL_TOKEN` they 404.
//! * `GET /metrics`: Prometheus text (see [`crate::metrics`]); no token, as scrapers expect:
//!   this listener is reachable inside the cluster only.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower_http::trace::TraceLayer;

use crate::error::{AppError, AppResult};
use crate::http::response::{Envelope, ok};
use crate::metrics::Snapshot;
use crate::realtime::{DrainCounts, Realtime};
use crate::services::queue_admin;
use crate::state::AppState;

const MAX_RECONNECT_WITHIN: u64 = 600;
const DEFAULT_RECONNECT_WITHIN: u64 = 10;

#[derive(Clone)]
struct Control {
    app: AppState,
    /// None in a workers-only process: nothing to move.
    realtime: Option<Realtime>,
}

pub fn router(app: AppState, realtime: Option<Realtime>) -> Router {
    let version = super::app_version_header(&app.config);
    Router::new()
        .route("/internal/connections/drain", post(drain))
        .route("/internal/connections/resume", post(resume))
        .route("/metrics", get(metrics))
        .fallback(super::middleware::not_found)
        .with_state(Control { app, realtime })
        // Requests are logged without headers: the bearer token never reaches the log.
        .layer(TraceLayer::new_for_http().make_span_with(super::middleware::request_span))
        .layer(version)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DrainRequest {
    reconnect_within_seconds: Option<u64>,
}

#[derive(Debug, Serialize)]
struct ResumeReport {
    draining: bool,
}

/// SHA-256 first, so the comparison takes the same time whatever the lengths.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn authorize(control: &Control, headers: &HeaderMap) -> AppResult<()> {
    let Some(expected) = &control.app.config.control_token else {
        return Err(AppError::not_found(
            "control endpoints are disabled: CONTROL_TOKEN is not set",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| AppError::unauthorized("missing bearer token (Authorization: Bearer)"))?;
    if same_secret(given, expected.expose()) {
        Ok(())
    } else {
        Err(AppError::unauthorized("invalid control token"))
    }
}

fn reconnect_within(body: &[u8]) -> AppResult<Duration> {
    let req: DrainRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DrainRequest::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| AppError::validation(format!("invalid drain request: {e}")))?
    };
    let seconds = req
        .reconnect_within_seconds
        .unwrap_or(DEFAULT_RECONNECT_WITHIN);
    if !(1..=MAX_RECONNECT_WITHIN).contains(&seconds) {
        return Err(AppError::validation(format!(
            "reconnectWithinSeconds must be between 1 and {MAX_RECONNECT_WITHIN}"
        )));
    }
    Ok(Duration::from_secs(seconds))
}

async fn drain(
    State(control): State<Control>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<(StatusCode, axum::Json<Envelope<DrainCounts>>)> {
    authorize(&control, &headers)?;
    let window = reconnect_within(&body)?;
    let counts = match &control.realtime {
        None => DrainCounts {
            sockets: 0,
            relays: 0,
        },
        // Shutting down: SIGTERM's own drain moves everything already.
        Some(realtime) if control.app.shutdown.is_cancelled() => realtime.counts(),
        Some(realtime) => realtime.drain(window).0,
    };
    Ok((StatusCode::ACCEPTED, ok(counts)))
}

async fn resume(
    State(control): State<Control>,
    headers: HeaderMap,
) -> AppResult<axum::Json<Envelope<ResumeReport>>> {
    authorize(&control, &headers)?;
    if control.app.shutdown.is_cancelled() {
        return Err(AppError::conflict("server is shutting down"));
    }
    control.app.connections.resume();
    tracing::info!("connection drain ended: accepting new connections");
    Ok(ok(ResumeReport { draining: false }))
}

async fn metrics(State(control): State<Control>) -> impl IntoResponse {
    let app = &control.app;
    let mut now = Snapshot {
        pool_size: app.db.size(),
        pool_idle: app.db.num_idle(),
        pool_max: app.db.options().get_max_connections(),
        ..Snapshot::default()
    };
    if let Some(realtime) = &control.realtime {
        let counts = realtime.counts();
        now.sockets = counts.sockets;
        now.relays = counts.relays;
        now.rooms = realtime.local_rooms();
    }
    // Queue counts come from Redis; a Redis outage leaves them out rather than failing the scrape.
    match queue_admin::summaries(&app.queues).await {
        Ok(queues) => {
            for q in queues {
                for (state, jobs) in q.counts {
                    now.queue_jobs.push((q.name.clone(), state, jobs));
                }
            }
        }
        Err(err) => tracing::warn!(error = %err, "metrics: queue counts unavailable"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(&now),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_content() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn reconnect_window_is_bounded() {
        assert_eq!(reconnect_within(b"").unwrap(), Duration::from_secs(10));
        assert_eq!(reconnect_within(b"{}").unwrap(), Duration::from_secs(10));
        assert_eq!(
            reconnect_within(br#"{"reconnectWithinSeconds": 600}"#).unwrap(),
            Duration::from_secs(600)
        );
        for bad in [
            &br#"{"reconnectWithinSeconds": 0}"#[..],
            br#"{"reconnectWithinSeconds": 601}"#,
            br#"{"reconnectWithinSeconds": -1}"#,
            br#"{"reconnect": 5}"#,
            b"nope",
        ] {
            assert!(reconnect_within(bad).is_err(), "{bad:?}");
        }
    }
}
