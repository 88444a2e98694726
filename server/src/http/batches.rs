//! `/api/batches`: public reads, admin writes.

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
use crate::services::batches::{self, Batch, BatchInput};
use crate::services::page::{Page, PageQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_batches, create_batch))
        .routes(routes!(get_batch, update_batch, delete_batch))
}

/// Lists batches by name.
#[utoipa::path(
    get, path = "/api/batches", tag = "batches", params(PageQuery),
    responses(
        (status = 200, description = "A page of batches", body = Envelope<Page<Batch>>),
        (status = 400, description = "Bad pagination", body = ErrorBody)
    )
)]
async fn list_batches(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> AppResult<Json<Envelope<Page<Batch>>>> {
    Ok(ok(batches::list(&state.db, query.resolve()?).await?))
}

/// One batch.
#[utoipa::path(
    get, path = "/api/batches/{id}", tag = "batches", params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The batch", body = Envelope<Batch>),
        (status = 404, description = "Unknown id", body = ErrorBody)
    )
)]
async fn get_batch(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<Batch>>> {
    Ok(ok(batches::get(&state.db, id).await?))
}

/// Creates a batch (admins).
#[utoipa::path(
    post, path = "/api/batches", tag = "batches", request_body = BatchInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Envelope<Batch>),
        (status = 400, description = "Invalid input or unknown course/college", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "Name already taken", body = ErrorBody)
    )
)]
async fn create_batch(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiJson(input): ApiJson<BatchInput>,
) -> AppResult<(StatusCode, Json<Envelope<Batch>>)> {
    Ok(created(batches::create(&state.db, input).await?))
}

/// Replaces a batch's fields (admins).
#[utoipa::path(
    put, path = "/api/batches/{id}", tag = "batches", params(("id" = Uuid, Path)),
    request_body = BatchInput, security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Envelope<Batch>),
        (status = 400, description = "Invalid input or unknown course/college", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Unknown id", body = ErrorBody),
        (status = 409, description = "Name already taken", body = ErrorBody)
    )
)]
async fn update_batch(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<BatchInput>,
) -> AppResult<Json<Envelope<Batch>>> {
    Ok(ok(batches::update(&state.db, id, input).await?))
}

/// Deletes a batch (admins); its users are kept without a batch.
#[utoipa::path(
    delete, path = "/api/batches/{id}", tag = "batches", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Unknown id", body = ErrorBody)
    )
)]
async fn delete_batch(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    batches::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
