//! The queues area: servers running workers on their own Redis database and a unique
//! queue prefix per test, queue handles, and cleanup of the test's keys.

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

use super::app::TestApp;
use super::redis::redis_url_with_db;

/// Redis database reserved for the queues tests (the instance is shared).
pub const REDIS_DB: u32 = 3;

pub fn unique_prefix() -> String {
    format!("qt{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// Environment for an app running workers on its own prefix, with fast retries.
pub fn queue_env(env: &mut HashMap<String, String>, prefix: &str) {
    env.insert("REDIS_URL".into(), redis_url_with_db(REDIS_DB));
    env.insert("QUEUE_PREFIX".into(), prefix.into());
    env.insert("PROCESS_ROLE".into(), "all".into());
    env.insert("QUEUE_BACKOFF_MS".into(), "200".into());
    env.insert("QUEUE_JOB_ATTEMPTS".into(), "3".into());
    env.insert("EMAIL_OUTBOX_POLL_MS".into(), "100".into());
    env.remove("SMTP_HOST");
}

/// Starts the app with workers on a fresh prefix; `adjust` runs after the queue settings.
pub async fn spawn(
    db: PgPool,
    adjust: impl FnOnce(&mut HashMap<String, String>),
) -> (TestApp, String) {
    let prefix = unique_prefix();
    let p = prefix.clone();
    let app = TestApp::spawn_with(db, move |env| {
        queue_env(env, &p);
        adjust(env);
    })
    .await;
    (app, prefix)
}

/// A producer/inspector handle on one queue of a prefix (independent of the app).
pub async fn queue(prefix: &str, name: &str) -> bullmq::Queue {
    bullmq::Queue::with_options(
        name,
        bullmq::QueueOptions::new()
            .connection(
                bullmq::options::RedisConnectionOptions::new().url(redis_url_with_db(REDIS_DB)),
            )
            .prefix(prefix),
    )
    .await
    .expect("queue handle")
}

/// Deletes every key of the prefix in the queues' Redis database.
pub async fn purge(prefix: &str) {
    let client = redis::Client::open(redis_url_with_db(REDIS_DB)).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    for chunk in keys.chunks(500) {
        let _: () = redis::cmd("DEL")
            .arg(chunk)
            .query_async(&mut conn)
            .await
            .expect("del");
    }
}
