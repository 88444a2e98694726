//! `/api/meetings`: the caller's meetings; a meeting is visible to its
//! participants and admins only.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiPath, ApiQuery};
use super::response::{Envelope, ok};
use crate::auth::AuthUser;
use crate::error::{AppResult, ErrorBody};
use crate::services::meetings::{self, Meeting};
use crate::services::page::{Page, PageQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_my_meetings))
        .routes(routes!(get_meeting))
}

/// Meetings the caller takes part in, soonest first.
#[utoipa::path(
    get, path = "/api/meetings", tag = "meetings", params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of meetings", body = Envelope<Page<Meeting>>),
        (status = 401, description = "Not signed in", body = ErrorBody)
    )
)]
async fn list_my_meetings(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> AppResult<Json<Envelope<Page<Meeting>>>> {
    Ok(ok(meetings::list_for_user(
        &state.db,
        user.id(),
        query.resolve()?,
    )
    .await?))
}

/// One meeting (participants and admins).
#[utoipa::path(
    get, path = "/api/meetings/{id}", tag = "meetings", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The meeting", body = Envelope<Meeting>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a participant or admin", body = ErrorBody),
        (status = 404, description = "Unknown meeting", body = ErrorBody)
    )
)]
async fn get_meeting(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<Meeting>>> {
    Ok(ok(meetings::get(&state.db, id, &user).await?))
}
