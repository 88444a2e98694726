//! Account lifecycle: registration, email verification, login, refresh-token
//! rotation, logout and password reset. The refresh-token rows themselves are
//! [`super::sessions`]; the account records are [`super::users`].

use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::otp::{self, OtpPurpose};
use super::outbox::{self, EmailMessage, templates};
use super::rate_limit::FailureLimiter;
use super::users::{self, NewUser, UserRecord, UserView};
use super::{password, secrets, sessions};
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Access + refresh token pair handed out by login and refresh.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub access_token: String,
    /// Opaque, single use: each refresh returns a new one.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
    /// Unverified accounts may log in; clients use this to prompt verification.
    pub email_verified: bool,
    pub user: UserView,
}

/// Refusing a login because of too many failures.
#[derive(Debug)]
pub enum LoginError {
    RateLimited { retry_after_secs: u64 },
    Other(AppError),
}

impl From<AppError> for LoginError {
    fn from(err: AppError) -> Self {
        LoginError::Other(err)
    }
}

impl From<sqlx::Error> for LoginError {
    fn from(err: sqlx::Error) -> Self {
        LoginError::Other(err.into())
    }
}

/// Codes mailed per account and purpose within [`MAIL_WINDOW`].
pub const MAIL_MAX_PER_WINDOW: u32 = 5;
pub const MAIL_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

/// `true` when another `purpose` mail may be sent to `email` (and counts it).
async fn mail_allowed(state: &AppState, purpose: &str, email: &str) -> AppResult<bool> {
    let limiter = FailureLimiter::mail(purpose, email, MAIL_MAX_PER_WINDOW, MAIL_WINDOW);
    let mut redis = state.redis.clone();
    if limiter.blocked(&mut redis).await?.is_some() {
        tracing::warn!(purpose, "mail limit reached; mail not sent");
        return Ok(false);
    }
    limiter.record_failure(&mut redis).await?;
    Ok(true)
}

/// Codes are keyed with the signing secret; during a rotation the previous one
/// still checks the codes it keyed.
fn otp_key(state: &AppState) -> &[u8] {
    state.config.jwt_secret.expose().as_bytes()
}

fn otp_keys(state: &AppState) -> Vec<&[u8]> {
    std::iter::once(otp_key(state))
        .chain(
            state
                .config
                .security
                .jwt_previous
                .as_ref()
                .map(|(_, secret)| secret.expose().as_bytes()),
        )
        .collect()
}

/// Issues a fresh `purpose` code for `user` and enqueues the email carrying it, on `conn`
/// (the caller's transaction, so the code and its email commit together).
async fn issue_and_mail_code(
    conn: &mut PgConnection,
    state: &AppState,
    user: &UserRecord,
    purpose: OtpPurpose,
) -> AppResult<()> {
    let code = otp::issue(conn, otp_key(state), user.id, purpose).await?;
    let template = match purpose {
        OtpPurpose::VerifyEmail => templates::VERIFY_EMAIL,
        OtpPurpose::ResetPassword => templates::PASSWORD_RESET,
    };
    let message = EmailMessage::new(
        &user.email,
        template,
        json!({
            "name": user.name,
            "otp": code,
            "expiresInMinutes": purpose.ttl().as_secs() / 60,
        }),
    );
    outbox::enqueue_email(conn, &message).await?;
    Ok(())
}

/// Mails a `purpose` code to the account behind `email` when it exists, is
/// `eligible` and is under the mail cap; silent otherwise (no account enumeration).
async fn mail_code_to_account(
    state: &AppState,
    email: &str,
    purpose: OtpPurpose,
    eligible: impl FnOnce(&UserRecord) -> bool,
) -> AppResult<()> {
    let email = users::normalize_email(email)?;
    let mut tx = state.db.begin().await?;
    let Some(user) = users::find_by_email(&mut tx, &email).await? else {
        return Ok(());
    };
    if !eligible(&user) || !mail_allowed(state, purpose.as_str(), &email).await? {
        return Ok(());
    }
    issue_and_mail_code(&mut tx, state, &user, purpose).await?;
    tx.commit().await?;
    Ok(())
}

/// What registering answers, whatever happened: an address that already has an
/// account must not be told apart from a new one (account enumeration).
pub const REGISTER_ACCEPTED: &str =
    "check your inbox: we sent a verification code to finish the registration";

/// Creates a student account, its verification code and the email carrying it, in
/// one transaction. For an address that already has an account nothing is created:
/// its owner is told by email that someone tried to register, and the caller gets
/// the same answer after the same work (the password is hashed either way, one
/// outbox row is written either way).
pub async fn register(state: &AppState, name: &str, email: &str, password: &str) -> AppResult<()> {
    let new = NewUser::validated(name, email, password, Role::Student, false)?;
    let mut tx = state.db.begin().await?;
    // `insert` hashes the password before it learns whether the address is taken.
    match users::insert(&mut tx, &new).await {
        Ok(user) => {
            // Counted like the notice below, so both paths make the same Redis round trips.
            let _ = mail_allowed(state, REGISTRATION_MAIL, &new.email).await?;
            issue_and_mail_code(&mut tx, state, &user, OtpPurpose::VerifyEmail).await?;
        }
        Err(AppError::Conflict(_)) => {
            let existing = users::find_by_email(&mut tx, &new.email).await?;
            if let Some(user) = existing
                && mail_allowed(state, REGISTRATION_MAIL, &new.email).await?
            {
                let notice = EmailMessage::new(
                    &user.email,
                    templates::REGISTRATION_ATTEMPT,
                    json!({ "name": user.name }),
                );
                outbox::enqueue_email(&mut tx, &notice).await?;
            }
        }
        Err(other) => return Err(other),
    }
    tx.commit().await?;
    Ok(())
}

/// Mail cap bucket of registration mails (codes and notices) per address.
const REGISTRATION_MAIL: &str = "register";

pub async fn verify_email(state: &AppState, email: &str, code: &str) -> AppResult<UserView> {
    let email = users::normalize_email(email)?;
    let mut conn = state.db.acquire().await?;
    let user = users::find_by_email(&mut conn, &email)
        .await?
        .ok_or_else(otp::invalid_code)?;
    drop(conn);
    let mut tx = otp::consume(
        &state.db,
        &otp_keys(state),
        user.id,
        OtpPurpose::VerifyEmail,
        code,
    )
    .await?;
    let user: UserRecord = sqlx::query_as(
        "update users set email_verified = true where id = $1 \
         returning id, email, password_hash, name, role, email_verified, is_active, created_at, updated_at",
    )
    .bind(user.id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    user.view()
}

/// Issues a new verification code (e.g. the first one expired). Silent for
/// unknown or already verified accounts.
pub async fn resend_verification(state: &AppState, email: &str) -> AppResult<()> {
    mail_code_to_account(state, email, OtpPurpose::VerifyEmail, |user| {
        !user.email_verified && user.is_active
    })
    .await
}

/// Password login, limited per email and client address.
pub async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    client: &str,
) -> Result<Session, LoginError> {
    let email = users::normalize_email(email)?;
    let limiter = FailureLimiter::login(
        &email,
        client,
        state.config.login_max_attempts,
        state.config.login_window,
    );
    let mut redis = state.redis.clone();
    if let Some(retry_after_secs) = limiter.blocked(&mut redis).await? {
        return Err(LoginError::RateLimited { retry_after_secs });
    }

    let mut conn = state.db.acquire().await?;
    let user = users::find_by_email(&mut conn, &email).await?;
    drop(conn);
    let verified = match &user {
        Some(user) => password::verify(password, &user.password_hash).await?,
        None => {
            // Same cost as a real check, so response time does not reveal
            // whether the account exists.
            let _ = password::verify(password, dummy_hash().await?).await?;
            false
        }
    };
    let user = match user {
        Some(user) if verified => user,
        _ => {
            limiter.record_failure(&mut redis).await?;
            return Err(AppError::unauthorized("invalid email or password").into());
        }
    };
    limiter.reset(&mut redis).await?;
    if !user.is_active {
        return Err(AppError::forbidden("this account has been deactivated").into());
    }
    Ok(start_session(state, &user).await?)
}

/// A new session (a fresh refresh-token family) for an authenticated, active
/// account: what password login and external sign-in (Google) both hand out.
pub async fn start_session(state: &AppState, user: &UserRecord) -> AppResult<Session> {
    let mut tx = state.db.begin().await?;
    let refresh = sessions::issue(
        &mut tx,
        user.id,
        Uuid::new_v4(),
        state.config.refresh_token_ttl,
    )
    .await?;
    tx.commit().await?;
    session(state, user, refresh)
}

/// A real argon2id hash (of a random string) to verify against for unknown
/// emails, computed once.
async fn dummy_hash() -> AppResult<&'static str> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async {
            let throwaway = secrets::random_token();
            password::hash(&throwaway).await
        })
        .await
        .map(String::as_str)
}

fn session(state: &AppState, user: &UserRecord, refresh_token: String) -> AppResult<Session> {
    let ttl = state.config.access_token_ttl;
    Ok(Session {
        access_token: state.jwt.issue(user.id, user.role()?, &user.email, ttl)?,
        refresh_token,
        token_type: "Bearer",
        expires_in: ttl.as_secs(),
        email_verified: user.email_verified,
        user: user.view()?,
    })
}

fn invalid_refresh() -> AppError {
    AppError::unauthorized("refresh token is invalid or expired")
}

/// Rotates a refresh token. Presenting an already rotated token is treated as
/// theft: the whole family (every descendant) is revoked.
pub async fn refresh(state: &AppState, token: &str) -> AppResult<Session> {
    let mut tx = state.db.begin().await?;
    let stored = sessions::find_for_update(&mut tx, token).await?;
    let stored = stored.ok_or_else(invalid_refresh)?;
    if stored.replaced_at.is_some() {
        sessions::revoke_family(&mut tx, stored.family_id).await?;
        tx.commit().await?;
        tracing::warn!(user_id = %stored.user_id, "refresh token reuse detected; session revoked");
        return Err(AppError::unauthorized(
            "refresh token was already used; the session has been revoked",
        ));
    }
    if stored.revoked_at.is_some() || stored.expires_at <= Utc::now() {
        return Err(invalid_refresh());
    }
    let user = users::find_by_id(&mut tx, stored.user_id).await?;
    let user = match user {
        Some(user) if user.is_active => user,
        _ => {
            sessions::revoke_family(&mut tx, stored.family_id).await?;
            tx.commit().await?;
            return Err(AppError::unauthorized("this account has been deactivated"));
        }
    };
    sessions::mark_replaced(&mut tx, stored.id).await?;
    let next = sessions::issue(
        &mut tx,
        user.id,
        stored.family_id,
        state.config.refresh_token_ttl,
    )
    .await?;
    tx.commit().await?;
    session(state, &user, next)
}

/// Ends the session the refresh token belongs to. Idempotent: an unknown or
/// already revoked token is not an error (the client is logged out either way).
pub async fn logout(state: &AppState, token: &str) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    if let Some(family) = sessions::family_of(&mut tx, token).await? {
        sessions::revoke_family(&mut tx, family).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The current account; 401 when it no longer exists or was deactivated, so a
/// still-valid access token of a removed user gets nothing.
pub async fn me(state: &AppState, user_id: Uuid) -> AppResult<UserView> {
    let mut conn = state.db.acquire().await?;
    match users::find_by_id(&mut conn, user_id).await? {
        Some(user) if user.is_active => user.view(),
        _ => Err(AppError::unauthorized("account not found or deactivated")),
    }
}

/// Enqueues a reset code when the account exists and is active; the caller
/// answers the same either way (no account enumeration).
pub async fn forgot_password(state: &AppState, email: &str) -> AppResult<()> {
    mail_code_to_account(state, email, OtpPurpose::ResetPassword, |user| {
        user.is_active
    })
    .await
}

/// Sets a new password with a reset code and ends every session of the account.
/// Receiving the code also proves the email address, so it counts as verified.
pub async fn reset_password(
    state: &AppState,
    email: &str,
    code: &str,
    new_password: &str,
) -> AppResult<()> {
    let email = users::normalize_email(email)?;
    users::check_password(new_password)?;
    let mut conn = state.db.acquire().await?;
    let user = users::find_by_email(&mut conn, &email)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(otp::invalid_code)?;
    drop(conn);
    let hash = password::hash(new_password).await?;
    let mut tx = otp::consume(
        &state.db,
        &otp_keys(state),
        user.id,
        OtpPurpose::ResetPassword,
        code,
    )
    .await?;
    sqlx::query("update users set password_hash = $2, email_verified = true where id = $1")
        .bind(user.id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    sessions::revoke_all(&mut tx, user.id).await?;
    tx.commit().await?;
    Ok(())
}
