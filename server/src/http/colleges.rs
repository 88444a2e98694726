//! `/api/colleges`: public reads, admin writes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::response::{Envelope, created, ok};
use crate::auth::{RequireRole, roles};
use crate::error::{AppResult, ErrorBody};
use crate::services::colleges::{self, College, CollegeInput};
use crate::services::page::{Page, PageQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_colleges, create_college))
        .routes(routes!(get_college, update_college, delete_college))
}

/// Lists colleges by name.
#[utoipa::path(
    get, path = "/api/colleges", tag = "colleges", params(PageQuery),
    responses(
        (status = 200, description = "A page of colleges", body = Envelope<Page<College>>),
        (status = 400, description = "Bad pagination", body = ErrorBody)
    )
)]
async fn list_colleges(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> AppResult<Json<Envelope<Page<College>>>> {
    Ok(ok(colleges::list(&state.db, query.resolve()?).await?))
}

/// One college.
#[utoipa::path(
    get, path = "/api/colleges/{id}", tag = "colleges", params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The college", body = Envelope<College>),
        (status = 404, description = "Unknown id", body = ErrorBody)
    )
)]
async fn get_college(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<College>>> {
    Ok(ok(colleges::get(&state.db, id).await?))
}

/// Creates a college (admins).
#[utoipa::path(
    post, path = "/api/colleges", tag = "colleges", request_body = CollegeInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Envelope<College>),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "Name already taken", body = ErrorBody)
    )
)]
async fn create_college(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiJson(input): ApiJson<CollegeInput>,
) -> AppResult<(StatusCode, Json<Envelope<College>>)> {
    Ok(created(colleges::create(&state.db, input).await?))
}

/// Replaces a college's fields (admins).
#[utoipa::path(
    put, path = "/api/colleges/{id}", tag = "colleges", params(("id" = Uuid, Path)),
    request_body = CollegeInput, security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Envelope<College>),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Unknown id", body = ErrorBody),
        (status = 409, description = "Name already taken", body = ErrorBody)
    )
)]
async fn update_college(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<CollegeInput>,
) -> AppResult<Json<Envelope<College>>> {
    Ok(ok(colleges::update(&state.db, id, input).await?))
}

/// Deletes a college (admins); its users and batches are kept without a college.
#[utoipa::path(
    delete, path = "/api/colleges/{id}", tag = "colleges", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Unknown id", body = ErrorBody)
    )
)]
async fn delete_college(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    colleges::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
