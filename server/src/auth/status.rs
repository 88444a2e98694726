//! Whether an account may still use its access tokens: active, and with which
//! role now. Checked on every authenticated request (and followed by every open
//! Socket.IO socket and terminal relay) so deactivation and role changes take
//! effect at once rather than when the token expires.
//!
//! One mechanism serves both uses:
//! - each replica keeps the answers in an in-process cache (no Redis round trip
//!   per request);
//! - the paths that change an account call [`changed`], which publishes the user id
//!   on the Redis channel `{REALTIME_REDIS_PREFIX}:account:changed`; every replica's
//!   [`listen`] task drops its cached entry and passes an [`AccountEvent`] to its
//!   local listeners (sockets and relays re-check the account and disconnect or
//!   downgrade).
//!
//! The cache is trusted only while the subscription is up: when it drops (Redis
//! down), the cache is cleared and bypassed (every check reads PostgreSQL) until
//! it is back, and listeners get [`AccountEvent::Resync`] since changes may have
//! been missed. `ACCOUNT_STATUS_CACHE_SECONDS` still bounds an entry's age, for
//! changes made outside the application (by hand in SQL).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Role;
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// How often the subscription is pinged: a silently dead connection (no RST) is
/// noticed within this plus [`PING_TIMEOUT`].
const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
const RESUBSCRIBE_MIN: Duration = Duration::from_millis(100);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(2);
/// Entries kept at most; past it the cache starts over (bounded memory).
const MAX_ENTRIES: usize = 100_000;

/// The account as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active(Role),
    /// Deactivated or deleted.
    Gone,
}

/// What a replica's local listeners are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEvent {
    /// This account changed: re-check it.
    Changed(Uuid),
    /// The subscription was (re-)established: changes may have been missed while it
    /// was down, so every open session should re-check its account.
    Resync,
}

/// One replica's account status cache and its subscription state.
pub struct AccountStatuses {
    entries: Mutex<HashMap<Uuid, (AccountStatus, Instant)>>,
    ttl: Duration,
    /// Bumped by every invalidation: a lookup that started before one does not
    /// store what it read (it may predate the change).
    generation: AtomicU64,
    subscribed: AtomicBool,
    events: broadcast::Sender<AccountEvent>,
    channel: String,
}

impl AccountStatuses {
    pub fn new(config: &Config) -> Self {
        AccountStatuses {
            entries: Mutex::default(),
            ttl: config.security.account_cache_ttl,
            generation: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
            events: broadcast::channel(1024).0,
            channel: channel(&config.realtime.redis_prefix),
        }
    }

    /// Local listeners (sockets, relays) of account changes.
    pub fn subscribe(&self) -> broadcast::Receiver<AccountEvent> {
        self.events.subscribe()
    }

    /// Whether invalidations are arriving (the cache is in use).
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::SeqCst)
    }

    fn cached(&self, user_id: Uuid) -> Option<AccountStatus> {
        if !self.is_subscribed() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        entries
            .get(&user_id)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(status, _)| *status)
    }

    fn store(&self, user_id: Uuid, status: AccountStatus, generation: u64) {
        if !self.is_subscribed() || self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(user_id, (status, Instant::now()));
        }
    }

    fn invalidate(&self, user_id: Uuid) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&user_id);
        }
    }

    fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    fn set_subscribed(&self, up: bool) {
        self.subscribed.store(up, Ordering::SeqCst);
        self.clear();
    }

    fn notify(&self, event: AccountEvent) {
        // No receiver (no realtime on this process) is fine.
        let _ = self.events.send(event);
    }
}

/// The channel every replica sharing `prefix` listens on.
pub fn channel(prefix: &str) -> String {
    format!("{prefix}:account:changed")
}

/// The account's status, from this replica's cache or PostgreSQL.
pub async fn current(state: &AppState, user_id: Uuid) -> AppResult<AccountStatus> {
    let cache = &state.accounts;
    if let Some(status) = cache.cached(user_id) {
        return Ok(status);
    }
    let generation = cache.generation.load(Ordering::SeqCst);
    let status = read(&state.db, user_id).await?;
    cache.store(user_id, status, generation);
    Ok(status)
}

/// The account's status as stored now (no cache).
pub async fn read(db: &sqlx::PgPool, user_id: Uuid) -> AppResult<AccountStatus> {
    let row: Option<(bool, String)> =
        sqlx::query_as("select is_active, role from users where id = $1")
            .bind(user_id)
            .fetch_optional(db)
            .await?;
    Ok(match row {
        Some((true, role)) => AccountStatus::Active(
            role.parse()
                .map_err(|e: String| AppError::internal(anyhow::anyhow!(e)))?,
        ),
        _ => AccountStatus::Gone,
    })
}

/// Tells every replica that the account changed (call after the commit). This
/// replica forgets it at once; the others when the message arrives. The change is
/// already committed, so a Redis failure is only logged: the other replicas' caches
/// are bypassed while their subscription is down anyway, and local sessions are
/// told directly.
pub async fn changed(state: &AppState, user_id: Uuid) {
    let cache = &state.accounts;
    cache.invalidate(user_id);
    let mut redis = state.redis.clone();
    let published: Result<i64, redis::RedisError> = redis::cmd("PUBLISH")
        .arg(&cache.channel)
        .arg(user_id.to_string())
        .query_async(&mut redis)
        .await;
    match published {
        // Our own subscription echoes it back and notifies the local listeners.
        Ok(_) if cache.is_subscribed() => {}
        Ok(_) => cache.notify(AccountEvent::Changed(user_id)),
        Err(err) => {
            tracing::warn!(%user_id, error = %err, "could not publish an account change");
            cache.notify(AccountEvent::Changed(user_id));
        }
    }
}

/// Keeps this replica subscribed to the account channel until `stop`, resubscribing
/// after every failure.
pub async fn listen(state: AppState, stop: CancellationToken) {
    let cache = state.accounts.clone();
    let mut backoff = RESUBSCRIBE_MIN;
    loop {
        let client = match crate::startup::redis_client(&state.config, false) {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(error = %err, "account channel: bad Redis settings");
                return;
            }
        };
        let session = subscribe_once(&client, &cache, &stop);
        match session.await {
            Ok(Ended::Stopped) => break,
            Ok(Ended::Lost) => backoff = RESUBSCRIBE_MIN,
            Err(err) => {
                tracing::debug!(error = %err, "account channel unavailable");
                backoff = (backoff * 2).min(RESUBSCRIBE_MAX);
            }
        }
        if cache.is_subscribed() {
            tracing::warn!("account channel subscription lost; checking accounts in PostgreSQL");
        }
        cache.set_subscribed(false);
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
    }
    cache.set_subscribed(false);
}

enum Ended {
    Stopped,
    Lost,
}

async fn subscribe_once(
    client: &redis::Client,
    cache: &AccountStatuses,
    stop: &CancellationToken,
) -> redis::RedisResult<Ended> {
    let pubsub = tokio::time::timeout(PING_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
    let (mut sink, mut stream) = pubsub.split();
    sink.subscribe(&cache.channel).await?;
    if !cache.is_subscribed() {
        tracing::info!(channel = %cache.channel, "subscribed to account changes");
    }
    cache.set_subscribed(true);
    cache.notify(AccountEvent::Resync);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(Ended::Stopped),
            msg = stream.next() => {
                let Some(msg) = msg else { return Ok(Ended::Lost) };
                let payload: String = match msg.get_payload() {
                    Ok(p) => p,
                    Err(_) => continue,
                };
                match payload.parse::<Uuid>() {
                    Ok(user_id) => {
                        cache.invalidate(user_id);
                        cache.notify(AccountEvent::Changed(user_id));
                    }
                    Err(_) => tracing::warn!("ignoring a malformed account change message"),
                }
            }
            _ = ping.tick() => {
                let alive = tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await;
                if !matches!(alive, Ok(Ok(_))) {
                    return Ok(Ended::Lost);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> AccountStatuses {
        let vars = [
            ("DATABASE_URL", "postgres://u@127.0.0.1/db"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        AccountStatuses::new(&Config::from_map(&vars).unwrap())
    }

    #[test]
    fn cache_is_used_only_while_subscribed() {
        let c = cache();
        let id = Uuid::new_v4();
        let status = AccountStatus::Active(Role::Mentor);
        c.store(id, status, c.generation.load(Ordering::SeqCst));
        assert_eq!(c.cached(id), None, "not subscribed: nothing is stored");
        c.set_subscribed(true);
        c.store(id, status, c.generation.load(Ordering::SeqCst));
        assert_eq!(c.cached(id), Some(status));
        c.set_subscribed(false);
        assert_eq!(
            c.cached(id),
            None,
            "losing the subscription clears the cache"
        );
    }

    #[test]
    fn a_lookup_that_raced_an_invalidation_is_not_stored() {
        let c = cache();
        c.set_subscribed(true);
        let id = Uuid::new_v4();
        let before = c.generation.load(Ordering::SeqCst);
        c.invalidate(id);
        c.store(id, AccountStatus::Active(Role::Admin), before);
        assert_eq!(c.cached(id), None);
    }
}
