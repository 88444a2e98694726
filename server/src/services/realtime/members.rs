//! Who is in a meeting room right now, across replicas: a Redis hash per
//! meeting of socket id → member. Entries of replicas that stopped heartbeating
//! (see `presence`) are ignored, so a crashed replica's sockets vanish here too.

use std::collections::HashSet;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::presence::PresenceStore;
use crate::auth::Role;

/// Upper bound on a room entry's life if nobody removes it.
const ENTRY_TTL_SECONDS: i64 = 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: Uuid,
    pub role: Role,
    pub socket_id: String,
    #[serde(skip_serializing)]
    #[serde(default)]
    pub instance: String,
}

/// Stored form keeps the instance (the public form hides it).
#[derive(Serialize, Deserialize)]
struct Stored {
    user_id: Uuid,
    role: Role,
    instance: String,
}

#[derive(Clone)]
pub struct MeetingMembers {
    redis: ConnectionManager,
    prefix: String,
}

impl MeetingMembers {
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        MeetingMembers {
            redis,
            prefix: prefix.to_string(),
        }
    }

    fn key(&self, meeting: Uuid) -> String {
        format!("{}:meeting:{meeting}:members", self.prefix)
    }

    pub async fn add(&self, meeting: Uuid, member: &Member) -> redis::RedisResult<()> {
        let stored = serde_json::json!({
            "user_id": member.user_id,
            "role": member.role,
            "instance": member.instance,
        })
        .to_string();
        let mut conn = self.redis.clone();
        let key = self.key(meeting);
        let _: () = conn.hset(&key, &member.socket_id, stored).await?;
        let _: () = conn.expire(&key, ENTRY_TTL_SECONDS).await?;
        Ok(())
    }

    pub async fn remove(&self, meeting: Uuid, socket_id: &str) -> redis::RedisResult<()> {
        let mut conn = self.redis.clone();
        let _: () = conn.hdel(self.key(meeting), socket_id).await?;
        Ok(())
    }

    /// Members on live replicas.
    pub async fn list(
        &self,
        meeting: Uuid,
        presence: &PresenceStore,
    ) -> redis::RedisResult<Vec<Member>> {
        let live: HashSet<String> = presence.live_instances().await?.into_iter().collect();
        let mut conn = self.redis.clone();
        let entries: Vec<(String, String)> = conn.hgetall(self.key(meeting)).await?;
        let mut members: Vec<Member> = entries
            .into_iter()
            .filter_map(|(socket_id, raw)| {
                let stored: Stored = serde_json::from_str(&raw).ok()?;
                live.contains(&stored.instance).then_some(Member {
                    user_id: stored.user_id,
                    role: stored.role,
                    socket_id,
                    instance: stored.instance,
                })
            })
            .collect();
        members.sort_by(|a, b| a.socket_id.cmp(&b.socket_id));
        Ok(members)
    }
}
