//! Short-lived, single-use pairing tokens joining a browser terminal and a CLI.
//!
//! Only the token's SHA-256 is stored. A token stays recorded for an hour past
//! its expiry so a late connect is told "expired" rather than "unknown". Each
//! role (browser, cli) may claim a token once; a claim is released only when a
//! draining replica asks the client to reconnect.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::RealtimeConfig;

/// Kept after expiry to tell "expired" from "unknown".
const TOMBSTONE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TerminalRole {
    Browser,
    Cli,
}

impl TerminalRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TerminalRole::Browser => "browser",
            TerminalRole::Cli => "cli",
        }
    }
    pub fn peer(self) -> TerminalRole {
        match self {
            TerminalRole::Browser => TerminalRole::Cli,
            TerminalRole::Cli => TerminalRole::Browser,
        }
    }
}

#[derive(Debug, Clone)]
pub struct IssuedPairing {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct PairingRecord {
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    /// Expiry of the access token that asked for the pairing (absent in records
    /// written before sessions followed their token).
    #[serde(default)]
    auth_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Hash of the token: names the pairing's channels, never the token itself.
    pub pairing_id: String,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    /// When the relay session must be re-authenticated (`auth:refresh`).
    pub auth_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClaimError {
    #[error("unknown pairing token")]
    Unknown,
    #[error("pairing token expired")]
    Expired,
    #[error("pairing token already used")]
    AlreadyUsed,
    #[error("pairing service unavailable")]
    Unavailable,
}

impl From<redis::RedisError> for ClaimError {
    fn from(err: redis::RedisError) -> Self {
        tracing::error!(error = %err, "redis error while claiming a pairing token");
        ClaimError::Unavailable
    }
}

#[derive(Clone)]
pub struct PairingStore {
    redis: ConnectionManager,
    prefix: String,
    ttl: Duration,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl PairingStore {
    pub fn new(redis: ConnectionManager, config: &RealtimeConfig) -> Self {
        PairingStore {
            redis,
            prefix: config.redis_prefix.clone(),
            ttl: config.terminal_pairing_ttl,
        }
    }

    fn record_key(&self, pairing_id: &str) -> String {
        format!("{}:term:pair:{pairing_id}", self.prefix)
    }

    fn claim_key(&self, pairing_id: &str, role: TerminalRole) -> String {
        format!("{}:term:claim:{pairing_id}:{}", self.prefix, role.as_str())
    }

    /// Pub/sub channel a side of the pairing listens on.
    pub fn channel(&self, pairing_id: &str, role: TerminalRole) -> String {
        format!("{}:term:ch:{pairing_id}:{}", self.prefix, role.as_str())
    }

    /// A new token for `user_id`, whose access token expires at `auth_exp` (unix seconds).
    pub async fn issue(&self, user_id: Uuid, auth_exp: i64) -> redis::RedisResult<IssuedPairing> {
        let token = hex::encode(rand::random::<[u8; 32]>());
        let expires_at = Utc::now() + self.ttl;
        let record = serde_json::to_string(&PairingRecord {
            user_id,
            expires_at,
            auth_expires_at: DateTime::from_timestamp(auth_exp, 0),
        })
        .map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Client, "encode", e.to_string()))
        })?;
        let mut conn = self.redis.clone();
        let _: () = conn
            .set_ex(
                self.record_key(&hash(&token)),
                record,
                (self.ttl + TOMBSTONE).as_secs(),
            )
            .await?;
        Ok(IssuedPairing { token, expires_at })
    }

    pub async fn claim(&self, token: &str, role: TerminalRole) -> Result<Claimed, ClaimError> {
        let pairing_id = hash(token);
        let mut conn = self.redis.clone();
        let raw: Option<String> = conn.get(self.record_key(&pairing_id)).await?;
        let record: PairingRecord = raw
            .and_then(|r| serde_json::from_str(&r).ok())
            .ok_or(ClaimError::Unknown)?;
        if record.expires_at <= Utc::now() {
            return Err(ClaimError::Expired);
        }
        let claimed: bool = redis::cmd("SET")
            .arg(self.claim_key(&pairing_id, role))
            .arg(record.user_id.to_string())
            .arg("NX")
            .arg("EX")
            .arg((self.ttl + TOMBSTONE).as_secs())
            .query_async::<Option<String>>(&mut conn)
            .await?
            .is_some();
        if !claimed {
            return Err(ClaimError::AlreadyUsed);
        }
        Ok(Claimed {
            pairing_id,
            user_id: record.user_id,
            expires_at: record.expires_at,
            auth_expires_at: record.auth_expires_at,
        })
    }

    /// Lets the same role connect again with the token (replica restart).
    pub async fn release(&self, pairing_id: &str, role: TerminalRole) -> redis::RedisResult<()> {
        let mut conn = self.redis.clone();
        let _: () = conn.del(self.claim_key(pairing_id, role)).await?;
        Ok(())
    }

    /// Publishes one frame to `channel`; returns how many listeners got it.
    pub async fn publish(&self, channel: &str, frame: &[u8]) -> redis::RedisResult<i64> {
        let mut conn = self.redis.clone();
        conn.publish(channel, frame).await
    }
}
