//! The one limiter: fixed-window counters in Redis, shared by every replica.
//!
//! Two uses share the same counters and the same 429 answer:
//! - [`enforce`]: request limits per user and per client address (registration,
//!   verification, terminal pairings, uploads, code runs, webhooks), configured per
//!   limit with `RATE_LIMIT_<NAME>`;
//! - [`FailureLimiter`]: counts only what the caller records (failed logins, mailed
//!   codes), so a user who types the password right is never locked out by their
//!   own successful logins.
//!
//! A window starts with its first hit and is never extended by later ones, so a
//! client hammering a closed window is let in again when it ends. When Redis is
//! down the limits cannot be checked and the request gets 503 (fail closed).

use std::time::Duration;

use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::secrets;
use crate::config::{LimitRule, LimitWindow};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Every request limit; `RATE_LIMIT_<NAME>` overrides its default rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitName {
    /// `POST /api/auth/register`.
    Register,
    /// `POST /api/auth/verify-email`.
    Verification,
    /// `POST /api/auth/resend-verification`.
    Resend,
    /// `POST /api/terminal/pairings`.
    Pairing,
    /// `POST /api/uploads` (presigned upload URLs).
    Upload,
    /// Code execution requests (the code-run route calls [`enforce`] with this).
    CodeRun,
    /// Inbound provider webhooks, per client address (the webhook routes call [`enforce`]).
    Webhook,
}

const fn per(max: u32, secs: u64) -> Option<LimitWindow> {
    Some(LimitWindow {
        max,
        window: Duration::from_secs(secs),
    })
}

impl LimitName {
    pub const ALL: [LimitName; 7] = [
        LimitName::Register,
        LimitName::Verification,
        LimitName::Resend,
        LimitName::Pairing,
        LimitName::Upload,
        LimitName::CodeRun,
        LimitName::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LimitName::Register => "register",
            LimitName::Verification => "verification",
            LimitName::Resend => "resend",
            LimitName::Pairing => "pairing",
            LimitName::Upload => "upload",
            LimitName::CodeRun => "code_run",
            LimitName::Webhook => "webhook",
        }
    }

    pub fn env_var(self) -> &'static str {
        match self {
            LimitName::Register => "RATE_LIMIT_REGISTER",
            LimitName::Verification => "RATE_LIMIT_VERIFICATION",
            LimitName::Resend => "RATE_LIMIT_RESEND",
            LimitName::Pairing => "RATE_LIMIT_PAIRING",
            LimitName::Upload => "RATE_LIMIT_UPLOAD",
            LimitName::CodeRun => "RATE_LIMIT_CODE_RUN",
            LimitName::Webhook => "RATE_LIMIT_WEBHOOK",
        }
    }

    /// Defaults sized for people, not scripts; a client address may be a whole
    /// campus behind one NAT, so its ceilings are higher than a user's.
    pub fn default_rule(self) -> LimitRule {
        let (per_user, per_client) = match self {
            LimitName::Register => (None, per(20, 3600)),
            LimitName::Verification => (None, per(30, 3600)),
            LimitName::Resend => (None, per(10, 3600)),
            LimitName::Pairing => (per(20, 600), per(60, 600)),
            LimitName::Upload => (per(60, 3600), per(200, 3600)),
            LimitName::CodeRun => (per(10, 60), per(120, 60)),
            LimitName::Webhook => (None, per(600, 60)),
        };
        LimitRule {
            per_user,
            per_client,
        }
    }
}

/// Counts one request of `user` (when known) from `client` against `name`; 429
/// `TOO_MANY_REQUESTS` with `Retry-After` once either ceiling is passed.
pub async fn enforce(
    state: &AppState,
    name: LimitName,
    user: Option<Uuid>,
    client: &str,
) -> AppResult<()> {
    let rule = state.config.security.rate_limits.rule(name);
    let mut counters = Vec::with_capacity(2);
    if let (Some(user), Some(window)) = (user, rule.per_user) {
        counters.push((format!("ratelimit:{}:user:{user}", name.as_str()), window));
    }
    if let Some(window) = rule.per_client {
        counters.push((
            format!("ratelimit:{}:client:{client}", name.as_str()),
            window,
        ));
    }
    if counters.is_empty() {
        return Ok(());
    }
    let mut redis = state.redis.clone();
    let counts = hit_all(&mut redis, &counters).await?;
    let retry_after = counters
        .iter()
        .zip(counts)
        .filter(|((_, window), (count, _))| *count > u64::from(window.max))
        .map(|(_, (_, ttl))| ttl.max(1) as u64)
        .max();
    match retry_after {
        None => Ok(()),
        Some(retry_after_secs) => {
            tracing::info!(limit = name.as_str(), %client, "rate limit reached");
            Err(AppError::RateLimited {
                message: format!(
                    "too many {} requests; try again in {retry_after_secs} seconds",
                    name.as_str().replace('_', " ")
                ),
                retry_after_secs,
            })
        }
    }
}

/// Counts one hit on each key (starting its window on the first) and returns each
/// key's count and seconds left, in one atomic round trip.
async fn hit_all(
    redis: &mut ConnectionManager,
    counters: &[(String, LimitWindow)],
) -> AppResult<Vec<(u64, i64)>> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (key, window) in counters {
        pipe.cmd("SET")
            .arg(key)
            .arg(0)
            .arg("NX")
            .arg("EX")
            .arg(window.window.as_secs().max(1))
            .ignore()
            .incr(key, 1)
            .ttl(key);
    }
    let flat: Vec<i64> = pipe.query_async(redis).await?;
    Ok(flat
        .chunks(2)
        .map(|pair| (pair[0].max(0) as u64, pair.get(1).copied().unwrap_or(1)))
        .collect())
}

/// A counter for one subject that only grows when the caller records an event.
pub struct FailureLimiter {
    key: String,
    window: LimitWindow,
}

impl FailureLimiter {
    /// Login attempts per email and client address. The email is hashed so the
    /// key space does not hold addresses in clear.
    pub fn login(email: &str, client: &str, max: u32, window: Duration) -> Self {
        let subject = secrets::hash_token(&email.trim().to_lowercase());
        FailureLimiter {
            key: format!("ratelimit:login:{}:{client}", &subject[..32]),
            window: LimitWindow { max, window },
        }
    }

    /// Messages mailed per account (codes, notices), so the endpoints cannot be
    /// used to flood someone's inbox.
    pub fn mail(purpose: &str, email: &str, max: u32, window: Duration) -> Self {
        let subject = secrets::hash_token(&email.trim().to_lowercase());
        FailureLimiter {
            key: format!("ratelimit:mail:{purpose}:{}", &subject[..32]),
            window: LimitWindow { max, window },
        }
    }

    /// Uses of a bounded resource per subject and window (e.g. code runs per user):
    /// [`FailureLimiter::record_failure`] counts a use.
    pub fn uses(scope: &str, subject: &str, max: u32, window: Duration) -> Self {
        FailureLimiter {
            key: format!("ratelimit:{scope}:{subject}"),
            window: LimitWindow { max, window },
        }
    }

    /// `Some(seconds until the window resets)` when the subject is blocked.
    pub async fn blocked(&self, redis: &mut ConnectionManager) -> AppResult<Option<u64>> {
        let (count, ttl): (Option<u32>, i64) = redis::pipe()
            .get(&self.key)
            .ttl(&self.key)
            .query_async(redis)
            .await?;
        match count {
            Some(count) if count >= self.window.max => Ok(Some(ttl.max(1) as u64)),
            _ => Ok(None),
        }
    }

    /// Counts one failure (or one use); the window starts with the first.
    pub async fn record_failure(&self, redis: &mut ConnectionManager) -> AppResult<()> {
        hit_all(redis, &[(self.key.clone(), self.window)]).await?;
        Ok(())
    }

    pub async fn reset(&self, redis: &mut ConnectionManager) -> AppResult<()> {
        redis::cmd("DEL")
            .arg(&self.key)
            .query_async::<()>(redis)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_has_a_distinct_variable_and_a_rule() {
        let mut vars: Vec<_> = LimitName::ALL.iter().map(|n| n.env_var()).collect();
        vars.sort();
        vars.dedup();
        assert_eq!(vars.len(), LimitName::ALL.len());
        for name in LimitName::ALL {
            let rule = name.default_rule();
            assert!(
                rule.per_user.is_some() || rule.per_client.is_some(),
                "{name:?}"
            );
            assert!(
                name.env_var()
                    .ends_with(&name.as_str().to_ascii_uppercase())
            );
        }
    }
}
