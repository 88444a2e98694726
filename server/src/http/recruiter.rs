//! `/api/recruiter/*`: what mr-hire needs — profiles and completed resume analyses of
//! students who consented (`PUT /api/profile/recruiter-consent`), and nothing else —
//! for recruiters signed in here, and for mr-hire-backend calling service to service.
//!
//! Service auth is a static bearer token (`MR_HIRE_SERVICE_TOKEN`, plus
//! `MR_HIRE_SERVICE_TOKEN_PREVIOUS` while rotating), compared in constant time. Chosen
//! over request HMACs because the calls are read-only GETs between two backends of ours
//! over TLS: an HMAC's extra protection (integrity of a body, replay windows) buys
//! nothing for a bodiless GET whose answer is the only thing of value, while it costs
//! clock sync and canonicalisation on both sides. The token is ≥ 32 characters,
//! never logged, and rotation needs no downtime (both tokens are accepted).
//!
//! Also here: the caller's own contact settings (`/api/profile/*`).

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::response::{Envelope, ok};
use crate::auth::{AuthUser, RequireRole, Role, authenticate, bearer_token, roles};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::services::page::{Page, PageQuery};
use crate::services::recruiter::{self, Contact, StudentProfile};
use crate::services::webhooks::signature::secrets_equal;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_students))
        .routes(routes!(get_student))
        .routes(routes!(get_contact))
        .routes(routes!(set_phone))
        .routes(routes!(set_consent))
}

/// Who is reading: mr-hire-backend (service token) or a recruiter/admin account.
#[derive(Debug)]
pub enum RecruiterAccess {
    Service,
    User(AuthUser),
}

impl FromRequestParts<AppState> for RecruiterAccess {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        // Every configured token is compared, so timing says nothing about which.
        let service = state
            .config
            .commerce
            .mr_hire_tokens
            .iter()
            .fold(false, |hit, t| secrets_equal(token, t.expose()) | hit);
        if service {
            return Ok(RecruiterAccess::Service);
        }
        let user = AuthUser(authenticate(state, token).await?);
        if matches!(user.role(), Role::Recruiter) || user.role().is_admin() {
            Ok(RecruiterAccess::User(user))
        } else {
            Err(AppError::forbidden(
                "this action requires one of the roles: recruiter, admin, superadmin",
            ))
        }
    }
}

/// Consenting students, with their completed resume analyses.
#[utoipa::path(
    get, path = "/api/recruiter/students", tag = "recruiter", params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of consenting students", body = Envelope<Page<StudentProfile>>),
        (status = 400, description = "Bad pagination", body = ErrorBody),
        (status = 401, description = "No valid service token or access token", body = ErrorBody),
        (status = 403, description = "Not a recruiter or admin", body = ErrorBody)
    )
)]
async fn list_students(
    State(state): State<AppState>,
    _caller: RecruiterAccess,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> AppResult<Json<Envelope<Page<StudentProfile>>>> {
    Ok(ok(recruiter::list(&state.db, query.resolve()?).await?))
}

/// One consenting student (anyone else: 404).
#[utoipa::path(
    get, path = "/api/recruiter/students/{id}", tag = "recruiter", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile", body = Envelope<StudentProfile>),
        (status = 401, description = "No valid service token or access token", body = ErrorBody),
        (status = 403, description = "Not a recruiter or admin", body = ErrorBody),
        (status = 404, description = "No consenting student with this id", body = ErrorBody)
    )
)]
async fn get_student(
    State(state): State<AppState>,
    _caller: RecruiterAccess,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<StudentProfile>>> {
    Ok(ok(recruiter::get(&state.db, id).await?))
}

/// The caller's phone and recruiter consent.
#[utoipa::path(
    get, path = "/api/profile/contact", tag = "profile", security(("bearer" = [])),
    responses(
        (status = 200, description = "Contact settings", body = Envelope<Contact>),
        (status = 401, description = "Not signed in", body = ErrorBody)
    )
)]
async fn get_contact(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Json<Envelope<Contact>>> {
    Ok(ok(sqlx::query_as::<_, Contact>(
        "select phone, recruiter_consent, recruiter_consent_at from users where id = $1",
    )
    .bind(user.id())
    .fetch_one(&state.db)
    .await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneInput {
    /// E.164 (`+` and 8 to 15 digits), or `null` or `""` to remove it.
    #[schema(pattern = r"^(\+[1-9][0-9]{7,14})?$")]
    pub phone: Option<String>,
}

/// Sets the caller's phone (WhatsApp notifications; the number Exotel rings first
/// when a sales user calls a lead).
#[utoipa::path(
    put, path = "/api/profile/phone", tag = "profile", request_body = PhoneInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Saved", body = Envelope<Contact>),
        (status = 400, description = "Not an E.164 number", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody)
    )
)]
async fn set_phone(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<PhoneInput>,
) -> AppResult<Json<Envelope<Contact>>> {
    Ok(ok(recruiter::set_phone(
        &state.db,
        user.id(),
        body.phone.as_deref(),
    )
    .await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    /// `true` lets recruiters (and mr-hire) read your profile and resume analyses.
    pub consent: bool,
}

/// Gives or withdraws the recruiter consent (students).
#[utoipa::path(
    put, path = "/api/profile/recruiter-consent", tag = "profile", request_body = ConsentInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Saved", body = Envelope<Contact>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a student", body = ErrorBody)
    )
)]
async fn set_consent(
    State(state): State<AppState>,
    student: RequireRole<roles::Students>,
    ApiJson(body): ApiJson<ConsentInput>,
) -> AppResult<Json<Envelope<Contact>>> {
    Ok(ok(recruiter::set_consent(
        &state.db,
        student.user().id(),
        body.consent,
    )
    .await?))
}
