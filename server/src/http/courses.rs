//! `/api/courses`: public reads, admin writes.

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
use crate::services::courses::{self, Course, CourseInput};
use crate::services::page::{Page, PageQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_courses, create_course))
        .routes(routes!(get_course, update_course, delete_course))
}

/// Lists courses by title.
#[utoipa::path(
    get, path = "/api/courses", tag = "courses", params(PageQuery),
    responses(
        (status = 200, description = "A page of courses", body = Envelope<Page<Course>>),
        (status = 400, description = "Bad pagination", body = ErrorBody)
    )
)]
async fn list_courses(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> AppResult<Json<Envelope<Page<Course>>>> {
    Ok(ok(courses::list(&state.db, query.resolve()?).await?))
}

/// One course.
#[utoipa::path(
    get, path = "/api/courses/{id}", tag = "courses", params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The course", body = Envelope<Course>),
        (status = 404, description = "Unknown id", body = ErrorBody)
    )
)]
async fn get_course(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<Course>>> {
    Ok(ok(courses::get(&state.db, id).await?))
}

/// Creates a course (admins).
#[utoipa::path(
    post, path = "/api/courses", tag = "courses", request_body = CourseInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Envelope<Course>),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "Slug already taken", body = ErrorBody)
    )
)]
async fn create_course(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiJson(input): ApiJson<CourseInput>,
) -> AppResult<(StatusCode, Json<Envelope<Course>>)> {
    Ok(created(courses::create(&state.db, input).await?))
}

/// Replaces a course's fields (admins).
#[utoipa::path(
    put, path = "/api/courses/{id}", tag = "courses", params(("id" = Uuid, Path)),
    request_body = CourseInput, security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Envelope<Course>),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Unknown id", body = ErrorBody),
        (status = 409, description = "Slug already taken", body = ErrorBody)
    )
)]
async fn update_course(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<CourseInput>,
) -> AppResult<Json<Envelope<Course>>> {
    Ok(ok(courses::update(&state.db, id, input).await?))
}

/// Deletes a course (admins); its batches are kept without a course.
#[utoipa::path(
    delete, path = "/api/courses/{id}", tag = "courses", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Unknown id", body = ErrorBody)
    )
)]
async fn delete_course(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    courses::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
