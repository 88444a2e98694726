//! Liveness and readiness. `/api/health` is load-bearing: the operator's blue/green
//! gate promotes a color only when it answers 200 with `"success": true`.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

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

async fn timed<F, E>(check: F) -> DependencyCheck
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, check).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(Ok(())) => DependencyCheck {
            status: "up",
            latency_ms,
            error: None,
        },
        Ok(Err(e)) => DependencyCheck {
            status: "down",
            latency_ms,
            error: Some(e.to_string()),
        },
        Err(_) => DependencyCheck {
            status: "down",
            latency_ms,
            error: Some("timed out".into()),
        },
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
    let db = state.db.clone();
    let mut redis = state.redis.clone();
    let (database, redis) = tokio::join!(
        timed(async move { sqlx::query("select 1").execute(&db).await.map(|_| ()) }),
        timed(async move {
            redis::cmd("PING")
                .query_async::<String>(&mut redis)
                .await
                .map(|_| ())
        }),
    );
    // Only shutdown counts: the operator's connection drain (internal port) must leave
    // a drained color healthy, as the instant-rollback target.
    let draining = state.shutdown.is_cancelled();
    let healthy = database.status == "up" && redis.status == "up";
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
            checks: Checks { database, redis },
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
