//! `/api/admin/users`: account management for admins and superadmins.
//! Only a superadmin may create or change admin and superadmin accounts.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::response::{Envelope, created, ok};
use crate::auth::{RequireRole, Role, roles::Admins};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::services::users::{self, NewUser, UserChanges, UserPage, UserView};
use crate::state::AppState;

type Admin = RequireRole<Admins>;

/// The caller's role as stored now, not as stamped into the access token: a
/// demoted or deactivated admin loses user management at once, not when the
/// token expires.
async fn current_admin(state: &AppState, admin: &Admin) -> AppResult<(Uuid, Role)> {
    let record = users::get(&state.db, admin.user().id())
        .await
        .map_err(|_| AppError::unauthorized("account not found or deactivated"))?;
    let role = record.role()?;
    if !record.is_active {
        return Err(AppError::unauthorized("account not found or deactivated"));
    }
    if !role.is_admin() {
        return Err(AppError::forbidden(
            "this action requires one of the roles: admin, superadmin",
        ));
    }
    Ok((record.id, role))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(deactivate_user))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page number, 1..=1000000 (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Only accounts with this role.
    #[param(inline)]
    pub role: Option<Role>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateUserRequest {
    #[schema(
        pattern = r"^[^\u0000]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^\u0000]*$",
        max_length = 100
    )]
    pub name: String,
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]+@[^@.\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]*\.[^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]*[^@.\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        max_length = 254
    )]
    pub email: String,
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    pub role: Role,
    /// Defaults to true: an admin vouches for the address.
    pub email_verified: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[schema(
        pattern = r"^[^\u0000]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^\u0000]*$",
        max_length = 100
    )]
    pub name: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

/// Lists accounts, newest first.
#[utoipa::path(
    get,
    path = "/api/admin/users",
    tag = "admin",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page of users", body = Envelope<UserPage>),
        (status = 400, description = "Bad page, limit or role", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody)
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    admin: Admin,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<Envelope<UserPage>>> {
    current_admin(&state, &admin).await?;
    let page = users::list(
        &state.db,
        q.page.unwrap_or(1),
        q.limit.unwrap_or(20),
        q.role,
    )
    .await?;
    Ok(ok(page))
}

/// One account.
#[utoipa::path(
    get,
    path = "/api/admin/users/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = Envelope<UserView>),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody)
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<UserView>>> {
    current_admin(&state, &admin).await?;
    Ok(ok(users::get(&state.db, id).await?.view()?))
}

/// Creates an account with any role (admin roles need a superadmin).
#[utoipa::path(
    post,
    path = "/api/admin/users",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "Created", body = Envelope<UserView>),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "Not allowed to grant this role", body = ErrorBody),
        (status = 409, description = "Email already registered", body = ErrorBody)
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> AppResult<impl IntoResponse> {
    let new = NewUser::validated(
        &req.name,
        &req.email,
        &req.password,
        req.role,
        req.email_verified.unwrap_or(true),
    )?;
    let (_, actor_role) = current_admin(&state, &admin).await?;
    let user = users::create(&state.db, actor_role, new).await?;
    Ok(created(user.view()?))
}

/// Changes name, role or active flag. Deactivating or changing the role ends
/// the account's sessions.
#[utoipa::path(
    patch,
    path = "/api/admin/users/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "Updated", body = Envelope<UserView>),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody)
    )
)]
pub async fn update_user(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> AppResult<Json<Envelope<UserView>>> {
    let (actor_id, actor_role) = current_admin(&state, &admin).await?;
    let changes = UserChanges {
        name: req.name,
        role: req.role,
        is_active: req.is_active,
    };
    let user = users::update(&state, actor_id, actor_role, id, changes).await?;
    Ok(ok(user.view()?))
}

/// Deactivates the account: it can no longer log in or refresh.
#[utoipa::path(
    post,
    path = "/api/admin/users/{id}/deactivate",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "Deactivated", body = Envelope<UserView>),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody)
    )
)]
pub async fn deactivate_user(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<UserView>>> {
    let (actor_id, actor_role) = current_admin(&state, &admin).await?;
    let user = users::deactivate(&state, actor_id, actor_role, id).await?;
    Ok(ok(user.view()?))
}
