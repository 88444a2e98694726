//! Resume analysis requests (students) and their results.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{AuthUser, RequireRole, roles};
use crate::error::{AppResult, ErrorBody};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::response::{Envelope, ok};
use crate::services::resume_analysis::{self, Analysis, AnalysisRequest};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_analysis))
        .routes(routes!(get_analysis))
}

/// Queues an AI review of the caller's resume (text or URL).
#[utoipa::path(
    post,
    path = "/api/resumes/analysis",
    tag = "resumes",
    security(("bearer" = [])),
    request_body = AnalysisRequest,
    responses(
        (status = 202, description = "Queued", body = Envelope<Analysis>),
        (status = 400, description = "Neither text nor URL, or invalid", body = ErrorBody),
        (status = 403, description = "Not a student", body = ErrorBody),
        (status = 503, description = "LiteLLM is not configured or the queue is down", body = ErrorBody)
    )
)]
pub async fn request_analysis(
    student: RequireRole<roles::Students>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AnalysisRequest>,
) -> AppResult<(StatusCode, axum::Json<Envelope<Analysis>>)> {
    let analysis = resume_analysis::request(&state, student.user().id(), body).await?;
    Ok((StatusCode::ACCEPTED, ok(analysis)))
}

/// Status and result of one analysis (owner only).
#[utoipa::path(
    get,
    path = "/api/resumes/analysis/{id}",
    tag = "resumes",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Analysis id")),
    responses(
        (status = 200, description = "The analysis", body = Envelope<Analysis>),
        (status = 403, description = "Someone else's analysis", body = ErrorBody),
        (status = 404, description = "Unknown id", body = ErrorBody)
    )
)]
pub async fn get_analysis(
    user: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<axum::Json<Envelope<Analysis>>> {
    Ok(ok(
        resume_analysis::get_owned(&state.db, id, user.id()).await?
    ))
}
