use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminSession;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::response::{Envelope, ok};
use crate::services::queue_admin::{self, JobView, QueueSummary};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queues))
        .routes(routes!(list_jobs))
        .routes(routes!(retry_failed))
        .routes(routes!(retry_job))
        .routes(routes!(clean))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// waiting, active, delayed, prioritized, completed or failed (default failed).
    #[param(pattern = "^(waiting|active|delayed|prioritized|completed|failed)$")]
    pub state: Option<String>,
    /// At most this many, newest first (default 50, 1..=500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CleanQuery {
    /// completed or failed.
    #[param(pattern = "^(completed|failed)$")]
    pub state: String,
    /// Only jobs older than this many milliseconds (default 0 = all).
    pub grace_ms: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CleanResult {
    pub removed: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    pub ok: bool,
}

/// Job counts per queue.
#[utoipa::path(
    get, path = "/api/admin/queues", tag = "admin-queues", security(("bearer" = [])),
    responses(
        (status = 200, description = "Counts", body = Envelope<Vec<QueueSummary>>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody)
    )
)]
pub async fn list_queues(
    _admin: AdminSession,
    State(state): State<AppState>,
) -> AppResult<axum::Json<Envelope<Vec<QueueSummary>>>> {
    Ok(ok(queue_admin::summaries(&state.queues).await?))
}

/// Jobs of one queue in one state, newest first (failed jobs carry their reason).
#[utoipa::path(
    get, path = "/api/admin/queues/{queue}/jobs", tag = "admin-queues", security(("bearer" = [])),
    params(("queue" = String, Path, description = "e.g. emailQueue"), JobsQuery),
    responses(
        (status = 200, description = "Jobs", body = Envelope<Vec<JobView>>),
        (status = 400, description = "Unknown state or limit out of 1..=500", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Unknown queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody)
    )
)]
pub async fn list_jobs(
    _admin: AdminSession,
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
    ApiQuery(query): ApiQuery<JobsQuery>,
) -> AppResult<axum::Json<Envelope<Vec<JobView>>>> {
    let name = queue_admin::parse_queue(&queue)?;
    let job_state = queue_admin::parse_state(query.state.as_deref().unwrap_or("failed"))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::validation("limit must be between 1 and 500"));
    }
    let jobs = queue_admin::jobs(&state.queues, name, job_state, limit).await?;
    Ok(ok(jobs))
}

/// Moves every failed job of the queue back to waiting.
#[utoipa::path(
    post, path = "/api/admin/queues/{queue}/retry", tag = "admin-queues", security(("bearer" = [])),
    params(("queue" = String, Path, description = "e.g. emailQueue")),
    responses(
        (status = 200, description = "Retried", body = Envelope<Done>),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Unknown queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody)
    )
)]
pub async fn retry_failed(
    _admin: AdminSession,
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
) -> AppResult<axum::Json<Envelope<Done>>> {
    let name = queue_admin::parse_queue(&queue)?;
    queue_admin::retry_failed(&state.queues, name).await?;
    Ok(ok(Done { ok: true }))
}

/// Retries one failed job.
#[utoipa::path(
    post, path = "/api/admin/queues/{queue}/jobs/{job_id}/retry", tag = "admin-queues",
    security(("bearer" = [])),
    params(("queue" = String, Path, description = "e.g. emailQueue"), ("job_id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Retried", body = Envelope<Done>),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Unknown queue or job", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
        (status = 409, description = "Job is not failed", body = ErrorBody)
    )
)]
pub async fn retry_job(
    _admin: AdminSession,
    State(state): State<AppState>,
    ApiPath((queue, job_id)): ApiPath<(String, String)>,
) -> AppResult<axum::Json<Envelope<Done>>> {
    let name = queue_admin::parse_queue(&queue)?;
    queue_admin::retry_job(&state.queues, name, &job_id).await?;
    Ok(ok(Done { ok: true }))
}

/// Removes completed or failed jobs.
#[utoipa::path(
    post, path = "/api/admin/queues/{queue}/clean", tag = "admin-queues", security(("bearer" = [])),
    params(("queue" = String, Path, description = "e.g. emailQueue"), CleanQuery),
    responses(
        (status = 200, description = "Removed", body = Envelope<CleanResult>),
        (status = 400, description = "state is not completed or failed", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Unknown queue", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody)
    )
)]
pub async fn clean(
    _admin: AdminSession,
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
    ApiQuery(query): ApiQuery<CleanQuery>,
) -> AppResult<axum::Json<Envelope<CleanResult>>> {
    let name = queue_admin::parse_queue(&queue)?;
    let job_state = queue_admin::parse_state(&query.state)?;
    let removed =
        queue_admin::clean(&state.queues, name, job_state, query.grace_ms.unwrap_or(0)).await?;
    Ok(ok(CleanResult { removed }))
}
