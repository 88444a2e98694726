//! Email one-time codes: six digits, stored as keyed hashes, expiring, limited
//! attempts, single use. Issuing a new code voids the previous ones.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::secrets;
use crate::error::{AppError, AppResult};

/// Wrong guesses allowed per code before a new one must be requested.
pub const MAX_ATTEMPTS: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpPurpose {
    VerifyEmail,
    ResetPassword,
}

impl OtpPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            OtpPurpose::VerifyEmail => "verify_email",
            OtpPurpose::ResetPassword => "reset_password",
        }
    }

    pub fn ttl(self) -> Duration {
        match self {
            OtpPurpose::VerifyEmail => Duration::from_secs(24 * 3600),
            OtpPurpose::ResetPassword => Duration::from_secs(30 * 60),
        }
    }
}

/// Creates a code for `user_id` and returns it in clear (only for the email).
pub async fn issue(
    conn: &mut PgConnection,
    key: &[u8],
    user_id: Uuid,
    purpose: OtpPurpose,
) -> AppResult<String> {
    sqlx::query(
        "update email_otps set consumed_at = now() \
         where user_id = $1 and purpose = $2 and consumed_at is null",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .execute(&mut *conn)
    .await?;
    let code = secrets::random_otp();
    let expires_at = Utc::now() + purpose.ttl();
    sqlx::query(
        "insert into email_otps (id, user_id, purpose, code_hash, expires_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(secrets::hash_code(key, purpose.as_str(), &code)?)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(code)
}

#[derive(sqlx::FromRow)]
struct ActiveOtp {
    id: Uuid,
    code_hash: String,
    attempts: i32,
    expires_at: DateTime<Utc>,
}

/// Checks `code` and marks it used. On success returns the open transaction so
/// the caller's follow-up change (verify the email, set the password) commits
/// atomically with the consumption. A wrong guess is counted and committed.
///
/// `keys`: the current code key first, then the previous one during a key rotation
/// (codes mailed before the rotation keep working until they expire).
pub async fn consume(
    db: &PgPool,
    keys: &[&[u8]],
    user_id: Uuid,
    purpose: OtpPurpose,
    code: &str,
) -> AppResult<Transaction<'static, Postgres>> {
    let mut tx = db.begin().await?;
    let otp: Option<ActiveOtp> = sqlx::query_as(
        "select id, code_hash, attempts, expires_at from email_otps \
         where user_id = $1 and purpose = $2 and consumed_at is null \
         order by created_at desc limit 1 for update",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(otp) = otp else {
        return Err(invalid_code());
    };
    if otp.expires_at <= Utc::now() {
        return Err(AppError::validation(
            "the code has expired; request a new one",
        ));
    }
    if otp.attempts >= MAX_ATTEMPTS {
        return Err(AppError::TooManyRequests(
            "too many wrong codes; request a new one".into(),
        ));
    }
    let matches = keys
        .iter()
        .any(|key| secrets::code_matches(key, purpose.as_str(), code.trim(), &otp.code_hash));
    if !matches {
        sqlx::query("update email_otps set attempts = attempts + 1 where id = $1")
            .bind(otp.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Err(invalid_code());
    }
    sqlx::query("update email_otps set consumed_at = now() where id = $1")
        .bind(otp.id)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Same answer for "no such account", "no code" and "wrong code".
pub fn invalid_code() -> AppError {
    AppError::validation("invalid or expired code")
}
