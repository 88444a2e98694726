//! Fixed-window failure counters in Redis (login brute-force protection).
//!
//! Only failures count, so a user who types the password right is never
//! locked out by their own successful logins; a success clears the counter.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::secrets;
use crate::error::AppResult;

/// A failure counter for one subject (e.g. email + client IP).
pub struct FailureLimiter {
    key: String,
    max: u32,
    window: Duration,
}

impl FailureLimiter {
    /// Login attempts per email and client address. The email is hashed so the
    /// key space does not hold addresses in clear.
    pub fn login(email: &str, client: &str, max: u32, window: Duration) -> Self {
        let subject = secrets::hash_token(&email.trim().to_lowercase());
        FailureLimiter {
            key: format!("ratelimit:login:{}:{client}", &subject[..32]),
            max,
            window,
        }
    }

    /// Codes mailed per account (forgot password, resend verification), so the
    /// endpoints cannot be used to flood someone's inbox.
    pub fn mail(purpose: &str, email: &str, max: u32, window: Duration) -> Self {
        let subject = secrets::hash_token(&email.trim().to_lowercase());
        FailureLimiter {
            key: format!("ratelimit:mail:{purpose}:{}", &subject[..32]),
            max,
            window,
        }
    }

    /// Uses of a bounded resource per subject and window (e.g. code runs per user):
    /// [`FailureLimiter::record_failure`] counts a use.
    pub fn uses(scope: &str, subject: &str, max: u32, window: Duration) -> Self {
        FailureLimiter {
            key: format!("ratelimit:{scope}:{subject}"),
            max,
            window,
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
            Some(count) if count >= self.max => Ok(Some(ttl.max(1) as u64)),
            _ => Ok(None),
        }
    }

    /// Counts one failure (or one use); the window starts with the first.
    pub async fn record_failure(&self, redis: &mut ConnectionManager) -> AppResult<()> {
        let window = self.window.as_secs().max(1);
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&self.key)
            .arg(0)
            .arg("NX")
            .arg("EX")
            .arg(window)
            .ignore()
            .incr(&self.key, 1)
            .ignore()
            .query_async::<()>(redis)
            .await?;
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
