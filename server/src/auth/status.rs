//! Whether an account may still use its access tokens: active, and with which
//! role now. Checked on every authenticated request so deactivation and role
//! changes take effect at once rather than when the token expires.
//!
//! The answer is cached in Redis for [`CACHE_TTL`] (shared by every replica) and
//! dropped by [`forget`] whenever an admin changes the account; the TTL only
//! bounds staleness for changes made outside those paths (e.g. by hand in SQL).

use std::time::Duration;

use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::Role;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

const CACHE_TTL: Duration = Duration::from_secs(30);
/// Cached value for an id with no account.
const MISSING: &str = "missing";

fn key(user_id: Uuid) -> String {
    format!("authz:user:{user_id}")
}

/// The account as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active(Role),
    /// Deactivated or deleted.
    Gone,
}

impl AccountStatus {
    fn encode(self) -> String {
        match self {
            AccountStatus::Active(role) => role.as_str().to_string(),
            AccountStatus::Gone => MISSING.to_string(),
        }
    }

    fn decode(raw: &str) -> Option<Self> {
        if raw == MISSING {
            return Some(AccountStatus::Gone);
        }
        raw.parse().ok().map(AccountStatus::Active)
    }
}

pub async fn current(state: &AppState, user_id: Uuid) -> AppResult<AccountStatus> {
    let mut redis = state.redis.clone();
    let cached: Result<Option<String>, redis::RedisError> = redis::cmd("GET")
        .arg(key(user_id))
        .query_async(&mut redis)
        .await;
    match cached {
        Ok(Some(raw)) => {
            if let Some(status) = AccountStatus::decode(&raw) {
                return Ok(status);
            }
        }
        Ok(None) => {}
        // The database still answers; a cache outage must not lock everyone out.
        Err(err) => tracing::warn!(error = %err, "account status cache unavailable"),
    }
    let row: Option<(bool, String)> =
        sqlx::query_as("select is_active, role from users where id = $1")
            .bind(user_id)
            .fetch_optional(&state.db)
            .await?;
    let status = match row {
        Some((true, role)) => AccountStatus::Active(
            role.parse()
                .map_err(|e: String| AppError::internal(anyhow::anyhow!(e)))?,
        ),
        _ => AccountStatus::Gone,
    };
    let stored: Result<(), redis::RedisError> = redis::cmd("SET")
        .arg(key(user_id))
        .arg(status.encode())
        .arg("EX")
        .arg(CACHE_TTL.as_secs())
        .query_async(&mut redis)
        .await;
    if let Err(err) = stored {
        tracing::warn!(error = %err, "could not cache account status");
    }
    Ok(status)
}

/// Drops the cached status after the account changed (call after the commit).
/// The change itself is already committed, so a Redis failure is only logged:
/// the stale entry then lasts at most [`CACHE_TTL`].
pub async fn forget(redis: &ConnectionManager, user_id: Uuid) {
    let mut redis = redis.clone();
    let dropped: Result<(), redis::RedisError> = redis::cmd("DEL")
        .arg(key(user_id))
        .query_async(&mut redis)
        .await;
    if let Err(err) = dropped {
        tracing::warn!(%user_id, error = %err, "could not drop the cached account status");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        for status in Role::ALL
            .into_iter()
            .map(AccountStatus::Active)
            .chain([AccountStatus::Gone])
        {
            assert_eq!(AccountStatus::decode(&status.encode()), Some(status));
        }
        assert_eq!(AccountStatus::decode("wizard"), None);
    }
}
