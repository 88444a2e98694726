//! `/api/code`: students run programs on Judge0 within size, CPU, memory and rate
//! limits. Logic lives in `services::code_runs`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ClientAddr};
use super::response::{Envelope, ok};
use crate::auth::{AuthUser, RequireRole, roles};
use crate::error::{AppResult, ErrorBody};
use crate::services::code_runs::{self, CodeRun, Language, NewRun};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_languages))
        .routes(routes!(create_run))
        .routes(routes!(get_run))
}

/// Languages Judge0 can run (cached for `JUDGE0_LANGUAGES_TTL_SECONDS`).
#[utoipa::path(
    get,
    path = "/api/code/languages",
    tag = "code",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Judge0 language ids and names", body = Envelope<Vec<Language>>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 502, description = "Judge0 answered badly", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED (JUDGE0_URL unset) or Judge0's circuit is open", body = ErrorBody),
        (status = 504, description = "Judge0 did not answer in time", body = ErrorBody)
    )
)]
pub async fn list_languages(
    State(state): State<AppState>,
    _user: AuthUser,
) -> AppResult<Json<Envelope<Vec<Language>>>> {
    Ok(ok(code_runs::languages(&state).await?))
}

/// Runs a program (students). Limits: source ≤ `CODE_RUN_MAX_SOURCE_BYTES`, stdin ≤
/// `CODE_RUN_MAX_STDIN_BYTES`, `CODE_RUN_CPU_SECONDS` of CPU, `CODE_RUN_MEMORY_KB` of
/// memory, `RATE_LIMIT_CODE_RUN` runs per user and client address (`CODE_RUN_PER_MINUTE`
/// per user and minute by default). With `JUDGE0_WAIT` the result
/// comes back at once (201); otherwise poll `GET /api/code/runs/{id}` (202).
#[utoipa::path(
    post,
    path = "/api/code/runs",
    tag = "code",
    security(("bearer" = [])),
    request_body = NewRun,
    responses(
        (status = 201, description = "Finished: the result", body = Envelope<CodeRun>),
        (status = 202, description = "Accepted, still running: poll it", body = Envelope<CodeRun>),
        (status = 400, description = "Empty or oversized source or stdin, unknown language", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a student", body = ErrorBody),
        (status = 429, description = "Run limit reached (`RATE_LIMIT_CODE_RUN`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until runs are allowed again"))),
        (status = 502, description = "Judge0 answered badly", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED or Judge0's circuit is open", body = ErrorBody),
        (status = 504, description = "Judge0 did not answer in time", body = ErrorBody)
    )
)]
pub async fn create_run(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    student: RequireRole<roles::Students>,
    ApiJson(new): ApiJson<NewRun>,
) -> AppResult<Response> {
    let run = code_runs::create(&state, student.user().id(), &client, &new).await?;
    let status = if run.status == "processing" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    Ok((status, ok(run)).into_response())
}

/// A run (its student or an admin); an unfinished run is refreshed from Judge0.
#[utoipa::path(
    get,
    path = "/api/code/runs/{id}",
    tag = "code",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run", body = Envelope<CodeRun>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not the run's student or an admin", body = ErrorBody),
        (status = 404, description = "Unknown run", body = ErrorBody),
        (status = 502, description = "Judge0 answered badly", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED or Judge0's circuit is open", body = ErrorBody),
        (status = 504, description = "Judge0 did not answer in time", body = ErrorBody)
    )
)]
pub async fn get_run(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<CodeRun>>> {
    Ok(ok(code_runs::get(&state, id, &user).await?))
}
