//! Who is online, across every replica.
//!
//! Each replica keeps a Redis hash `{prefix}:presence:inst:{instance}` of
//! user id → number of its sockets for that user (a per-socket refcount), and
//! heartbeats its id into the sorted set `{prefix}:presence:instances` (score =
//! last beat, ms). A replica whose beat is older than the TTL is dead: its users
//! stop counting immediately and the first live replica to notice reaps its hash.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::RealtimeConfig;

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OnlineUser {
    pub user_id: Uuid,
    /// Open sockets over all replicas.
    pub connections: u64,
}

/// Read side, usable from any handler.
#[derive(Clone)]
pub struct PresenceStore {
    redis: ConnectionManager,
    prefix: String,
    ttl: Duration,
}

impl PresenceStore {
    pub fn new(redis: ConnectionManager, config: &RealtimeConfig) -> Self {
        PresenceStore {
            redis,
            prefix: config.redis_prefix.clone(),
            ttl: config.presence_ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn instances_key(&self) -> String {
        format!("{}:presence:instances", self.prefix)
    }

    fn instance_key(&self, instance: &str) -> String {
        format!("{}:presence:inst:{instance}", self.prefix)
    }

    fn now_ms() -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    fn cutoff_ms(&self) -> i64 {
        Self::now_ms() - self.ttl.as_millis() as i64
    }

    pub async fn live_instances(&self) -> redis::RedisResult<Vec<String>> {
        let mut conn = self.redis.clone();
        conn.zrangebyscore(self.instances_key(), self.cutoff_ms(), "+inf")
            .await
    }

    /// Users with at least one socket on a live replica.
    pub async fn online_users(&self) -> redis::RedisResult<Vec<OnlineUser>> {
        let mut conn = self.redis.clone();
        let mut totals: BTreeMap<Uuid, u64> = BTreeMap::new();
        for instance in self.live_instances().await? {
            let counts: Vec<(String, i64)> = conn.hgetall(self.instance_key(&instance)).await?;
            for (user, count) in counts {
                if let (Ok(user), true) = (user.parse::<Uuid>(), count > 0) {
                    *totals.entry(user).or_default() += count as u64;
                }
            }
        }
        Ok(totals
            .into_iter()
            .map(|(user_id, connections)| OnlineUser {
                user_id,
                connections,
            })
            .collect())
    }

    /// True when any live replica other than `except` has a socket for `user`.
    async fn online_elsewhere(&self, user: Uuid, except: &str) -> redis::RedisResult<bool> {
        let mut conn = self.redis.clone();
        for instance in self.live_instances().await? {
            if instance == except {
                continue;
            }
            let count: Option<i64> = conn
                .hget(self.instance_key(&instance), user.to_string())
                .await?;
            if count.unwrap_or(0) > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Write side of one replica.
#[derive(Clone)]
pub struct InstancePresence {
    store: PresenceStore,
    instance: String,
}

impl InstancePresence {
    pub fn new(store: PresenceStore) -> Self {
        InstancePresence {
            store,
            instance: Uuid::new_v4().to_string(),
        }
    }

    pub fn store(&self) -> &PresenceStore {
        &self.store
    }

    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    /// Records one more socket for `user`; true when the user just came online.
    pub async fn socket_connected(&self, user: Uuid) -> redis::RedisResult<bool> {
        let mut conn = self.store.redis.clone();
        let key = self.store.instance_key(&self.instance);
        let count: i64 = conn.hincr(&key, user.to_string(), 1).await?;
        // Not atomic across replicas: two first sockets at the same instant on two
        // replicas may both announce "online"; clients treat it as idempotent.
        Ok(count == 1 && !self.store.online_elsewhere(user, &self.instance).await?)
    }

    /// Records one socket fewer; true when the user has no socket left anywhere.
    pub async fn socket_disconnected(&self, user: Uuid) -> redis::RedisResult<bool> {
        let mut conn = self.store.redis.clone();
        let key = self.store.instance_key(&self.instance);
        let count: i64 = conn.hincr(&key, user.to_string(), -1).await?;
        if count > 0 {
            return Ok(false);
        }
        let _: () = conn.hdel(&key, user.to_string()).await?;
        Ok(!self.store.online_elsewhere(user, &self.instance).await?)
    }

    /// Marks this replica alive. The hash outlives the TTL so a reaper can still
    /// read it after this replica dies.
    pub async fn heartbeat(&self) -> redis::RedisResult<()> {
        let mut conn = self.store.redis.clone();
        let _: () = conn
            .zadd(
                self.store.instances_key(),
                &self.instance,
                PresenceStore::now_ms(),
            )
            .await?;
        let _: () = conn
            .expire(
                self.store.instance_key(&self.instance),
                (self.store.ttl.as_secs() as i64 * 4).max(60),
            )
            .await?;
        Ok(())
    }

    /// Removes replicas that stopped beating; returns users left with no socket.
    pub async fn reap_dead_instances(&self) -> redis::RedisResult<Vec<Uuid>> {
        let mut conn = self.store.redis.clone();
        let dead: Vec<String> = conn
            .zrangebyscore(
                self.store.instances_key(),
                "-inf",
                self.store.cutoff_ms() - 1,
            )
            .await?;
        let mut gone = HashSet::new();
        for instance in dead {
            // ZREM returns 1 for exactly one reaper.
            let removed: i64 = conn.zrem(self.store.instances_key(), &instance).await?;
            if removed != 1 {
                continue;
            }
            let key = self.store.instance_key(&instance);
            let users: Vec<String> = conn.hkeys(&key).await?;
            let _: () = conn.del(&key).await?;
            for user in users.iter().filter_map(|u| u.parse::<Uuid>().ok()) {
                if !self.store.online_elsewhere(user, "").await? {
                    gone.insert(user);
                }
            }
        }
        Ok(gone.into_iter().collect())
    }

    /// Graceful exit: this replica's sockets stop counting at once. Returns the
    /// users that are now offline everywhere.
    pub async fn withdraw(&self) -> redis::RedisResult<Vec<Uuid>> {
        let mut conn = self.store.redis.clone();
        let key = self.store.instance_key(&self.instance);
        let users: Vec<String> = conn.hkeys(&key).await?;
        let _: () = conn
            .zrem(self.store.instances_key(), &self.instance)
            .await?;
        let _: () = conn.del(&key).await?;
        let mut gone = Vec::new();
        for user in users.iter().filter_map(|u| u.parse::<Uuid>().ok()) {
            if !self.store.online_elsewhere(user, &self.instance).await? {
                gone.push(user);
            }
        }
        Ok(gone)
    }
}
