//! `/api/auth`: registration, verification, login, token refresh, logout,
//! current user and password reset. Logic lives in `services::auth`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ClientAddr, JsonOrForm};
use super::response::{Envelope, ok};
use crate::auth::AuthUser;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::services::auth::{self as service, LoginError, Session};
use crate::services::rate_limit::{self, LimitName};
use crate::services::users::UserView;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
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
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyEmailRequest {
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]+@[^@.\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]*\.[^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]*[^@.\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        max_length = 254
    )]
    pub email: String,
    /// The six-digit code from the verification email.
    #[schema(pattern = "^[0-9]{6}$", min_length = 6, max_length = 6)]
    pub otp: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailRequest {
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]+@[^@.\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]*\.[^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]*[^@.\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        max_length = 254
    )]
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]+@[^@.\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]*\.[^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]*[^@.\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        max_length = 254
    )]
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetPasswordRequest {
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]+@[^@.\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]*\.[^@\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000]*[^@.\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        max_length = 254
    )]
    pub email: String,
    /// The six-digit code from the reset email.
    #[schema(pattern = "^[0-9]{6}$", min_length = 6, max_length = 6)]
    pub otp: String,
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub new_password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: &'static str,
}

/// Registers a student account and emails a verification code. Answers 202 with
/// the same body whether or not the address already has an account (its owner is
/// emailed instead), so the route cannot be used to find out which addresses exist.
#[utoipa::path(
    post,
    path = "/api/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 202, description = "Registration accepted; a verification code (or, for a taken address, a notice to its owner) is emailed", body = Envelope<Message>),
        (status = 400, description = "Invalid name, email or password", body = ErrorBody),
        (status = 429, description = "Too many registrations from this client address (`RATE_LIMIT_REGISTER`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until the limit resets")))
    )
)]
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JsonOrForm(req): JsonOrForm<RegisterRequest>,
) -> AppResult<(StatusCode, Json<Envelope<Message>>)> {
    rate_limit::enforce(&state, LimitName::Register, None, &client).await?;
    service::register(&state, &req.name, &req.email, &req.password).await?;
    Ok((
        StatusCode::ACCEPTED,
        ok(Message {
            message: service::REGISTER_ACCEPTED,
        }),
    ))
}

/// Marks the email verified with the emailed code (expiring, single use, limited attempts).
#[utoipa::path(
    post,
    path = "/api/auth/verify-email",
    tag = "auth",
    request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "Email verified", body = Envelope<UserView>),
        (status = 400, description = "Invalid or expired code", body = ErrorBody),
        (status = 429, description = "Too many wrong codes, or too many attempts from this client address (`RATE_LIMIT_VERIFICATION`, with `Retry-After`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until the client limit resets (absent for the wrong-code limit)")))
    )
)]
pub async fn verify_email(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JsonOrForm(req): JsonOrForm<VerifyEmailRequest>,
) -> AppResult<Json<Envelope<UserView>>> {
    rate_limit::enforce(&state, LimitName::Verification, None, &client).await?;
    Ok(ok(
        service::verify_email(&state, &req.email, &req.otp).await?
    ))
}

/// Sends a fresh verification code. Answers the same for unknown accounts.
#[utoipa::path(
    post,
    path = "/api/auth/resend-verification",
    tag = "auth",
    request_body = EmailRequest,
    responses(
        (status = 200, description = "A code was sent if the account needs one", body = Envelope<Message>),
        (status = 400, description = "Invalid email", body = ErrorBody),
        (status = 429, description = "Too many requests from this client address (`RATE_LIMIT_RESEND`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until the limit resets")))
    )
)]
pub async fn resend_verification(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JsonOrForm(req): JsonOrForm<EmailRequest>,
) -> AppResult<Json<Envelope<Message>>> {
    rate_limit::enforce(&state, LimitName::Resend, None, &client).await?;
    service::resend_verification(&state, &req.email).await?;
    Ok(ok(Message {
        message: "if the account exists and is unverified, a new code has been sent",
    }))
}

/// Logs in with email and password. Repeated failures per email and client
/// address are answered with 429 and `Retry-After`.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Access and refresh tokens", body = Envelope<Session>),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 403, description = "Account deactivated", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until attempts are allowed again")))
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JsonOrForm(req): JsonOrForm<LoginRequest>,
) -> Result<Json<Envelope<Session>>, Response> {
    match service::login(&state, &req.email, &req.password, &client).await {
        Ok(session) => Ok(ok(session)),
        Err(LoginError::Other(err)) => Err(err.into_response()),
        Err(LoginError::RateLimited { retry_after_secs }) => Err(AppError::RateLimited {
            message: format!(
                "too many failed login attempts; try again in {retry_after_secs} seconds"
            ),
            retry_after_secs,
        }
        .into_response()),
    }
}

/// Exchanges a refresh token for a new pair. Each refresh token works once;
/// presenting a used one revokes the whole session.
#[utoipa::path(
    post,
    path = "/api/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New access and refresh tokens", body = Envelope<Session>),
        (status = 401, description = "Invalid, expired, revoked or reused token", body = ErrorBody)
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    JsonOrForm(req): JsonOrForm<RefreshRequest>,
) -> AppResult<Json<Envelope<Session>>> {
    Ok(ok(service::refresh(&state, &req.refresh_token).await?))
}

/// Revokes the session of the given refresh token.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 200, description = "Logged out", body = Envelope<Message>))
)]
pub async fn logout(
    State(state): State<AppState>,
    JsonOrForm(req): JsonOrForm<RefreshRequest>,
) -> AppResult<Json<Envelope<Message>>> {
    service::logout(&state, &req.refresh_token).await?;
    Ok(ok(Message {
        message: "logged out",
    }))
}

/// The authenticated account.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Current user", body = Envelope<UserView>),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody)
    )
)]
pub async fn me(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Json<Envelope<UserView>>> {
    Ok(ok(service::me(&state, user.id()).await?))
}

/// Emails a password reset code. Always 200, so it cannot reveal which emails exist.
#[utoipa::path(
    post,
    path = "/api/auth/forgot-password",
    tag = "auth",
    request_body = EmailRequest,
    responses(
        (status = 200, description = "A code was sent if the account exists", body = Envelope<Message>),
        (status = 400, description = "Invalid email", body = ErrorBody)
    )
)]
pub async fn forgot_password(
    State(state): State<AppState>,
    JsonOrForm(req): JsonOrForm<EmailRequest>,
) -> AppResult<Json<Envelope<Message>>> {
    service::forgot_password(&state, &req.email).await?;
    Ok(ok(Message {
        message: "if an account exists for this email, a reset code has been sent",
    }))
}

/// Sets a new password using the emailed code; ends all sessions.
#[utoipa::path(
    post,
    path = "/api/auth/reset-password",
    tag = "auth",
    request_body = ResetPasswordRequest,
    responses(
        (status = 200, description = "Password changed", body = Envelope<Message>),
        (status = 400, description = "Invalid code or password", body = ErrorBody),
        (status = 429, description = "Too many wrong codes", body = ErrorBody)
    )
)]
pub async fn reset_password(
    State(state): State<AppState>,
    JsonOrForm(req): JsonOrForm<ResetPasswordRequest>,
) -> AppResult<(StatusCode, Json<Envelope<Message>>)> {
    service::reset_password(&state, &req.email, &req.otp, &req.new_password).await?;
    Ok((
        StatusCode::OK,
        ok(Message {
            message: "password changed; log in again",
        }),
    ))
}
