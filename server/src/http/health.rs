//! Liveness and readiness. `/api/health` is load-bearing: the operator's blue/green
//! gate promotes a color only when it answers 200 with `"success": true`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::services::readiness;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct DependencyCheck {
    /// `up` or `down`.
    pub status: &'static str,
    #[serde(rename = "latencyMs")]
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    pub database: DependencyCheck,
    pub redis: DependencyCheck,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    pub success: bool,
    /// `ok`, `degraded` (a dependency is down) or `draining` (shutting down).
    pub status: &'static str,
    pub checks: Checks,
    /// `APP_VERSION`, or the server's own version when unset.
    pub version: String,
    #[serde(rename = "uptimeSeconds")]
    pub uptime_seconds: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    pub success: bool,
    pub status: &'static str,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(live))
}

impl From<&readiness::Check> for DependencyCheck {
    fn from(check: &readiness::Check) -> Self {
        DependencyCheck {
            status: if check.up { "up" } else { "down" },
            latency_ms: check.latency.as_millis() as u64,
            error: check.error.clone(),
        }
    }
}

/// Readiness: 200 when PostgreSQL and Redis answer, 503 otherwise or while draining.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = HealthReport),
        (status = 503, description = "A dependency is down or the server is draining", body = HealthReport)
    )
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthReport>) {
    let probe = state.readiness.probe(&state.db, &state.redis).await;
    // Only shutdown counts: the operator's connection drain (internal port) must leave
    // a drained color healthy, as the instant-rollback target.
    let draining = state.shutdown.is_cancelled();
    let healthy = probe.healthy();
    let success = healthy && !draining;
    let status = match (healthy, draining) {
        (_, true) => "draining",
        (true, false) => "ok",
        (false, false) => "degraded",
    };
    let code = if success {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(HealthReport {
            success,
            status,
            checks: Checks {
                database: (&probe.database).into(),
                redis: (&probe.redis).into(),
            },
            version: state.config.app_version.clone(),
            uptime_seconds: state.started_at.elapsed().as_secs(),
        }),
    )
}

/// Liveness: the process serves HTTP; no dependency is touched.
#[utoipa::path(
    get,
    path = "/api/health/live",
    tag = "health",
    responses((status = 200, description = "Alive", body = Liveness))
)]
pub async fn live() -> Json<Liveness> {
    Json(Liveness {
        success: true,
        status: "alive",
    })
}

/// What `mas-server healthcheck` runs: `Ok(summary)` when `url` answers 200 with
/// `"success": true`, otherwise the reason.
pub async fn probe(url: &str, timeout: Duration) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let res = client
        .get(url)
        .send()
        .await
        .map_err(|e| crate::error::with_sources(&e))?;
    let status = res.status();
    let body: serde_json::Value = res
        .json()
        .await
        .map_err(|e| format!("HTTP {status}, body is not JSON: {e}"))?;
    let state = body["status"].as_str().unwrap_or("unknown");
    if status == StatusCode::OK && body["success"] == true {
        let version = body["version"].as_str().unwrap_or("unknown");
        Ok(format!("{state}, version {version}"))
    } else {
        let down: Vec<String> = body["checks"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, check)| check["status"] != "up")
            .map(|(name, check)| format!("{name} {}", check["error"].as_str().unwrap_or("down")))
            .collect();
        let detail = if down.is_empty() {
            String::new()
        } else {
            format!(" ({})", down.join(", "))
        };
        Err(format!("HTTP {status}, status {state}{detail}"))
    }
}
