//! Shared helpers for the queues_* tests: Redis DB 3, a unique queue prefix per
//! test, tokens for seeded/created users, polling, and cleanup of the test's keys.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use mas_server::auth::Role;
use mas_server::state::AppState;
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::TestApp;

/// REDIS_URL with the queues DB number (3) selected.
pub fn redis_url() -> String {
    let base = std::env::var("REDIS_URL")
        .expect("REDIS_URL is not set: run the tests through scripts/test");
    let base = base.trim_end_matches('/');
    // Drop an explicit DB number if the URL has one.
    let without_db = match base.rsplit_once('/') {
        Some((head, tail)) if !head.ends_with('/') && tail.chars().all(|c| c.is_ascii_digit()) => {
            head
        }
        _ => base,
    };
    format!("{without_db}/3")
}

pub fn unique_prefix() -> String {
    format!("qt{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// Environment for an app running workers on its own prefix, with fast retries.
pub fn queue_env(env: &mut HashMap<String, String>, prefix: &str) {
    env.insert("REDIS_URL".into(), redis_url());
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

pub async fn token_for_email(state: &AppState, email: &str) -> String {
    let (id, role): (Uuid, String) = sqlx::query_as("select id, role from users where email = $1")
        .bind(email)
        .fetch_one(&state.db)
        .await
        .expect("user exists");
    state
        .jwt
        .issue(
            id,
            role.parse().expect("role"),
            email,
            Duration::from_secs(900),
        )
        .expect("token")
}

/// Creates a user with `role` and returns (id, email, access token).
pub async fn create_user(state: &AppState, role: Role) -> (Uuid, String, String) {
    let id = Uuid::new_v4();
    let email = format!(
        "{}-{}@test.local",
        role.as_str(),
        &id.simple().to_string()[..8]
    );
    sqlx::query(
        "insert into users (id, email, password_hash, name, role) values ($1, $2, '!', $3, $4)",
    )
    .bind(id)
    .bind(&email)
    .bind(format!("Test {}", role.as_str()))
    .bind(role.as_str())
    .execute(&state.db)
    .await
    .expect("insert user");
    let token = state
        .jwt
        .issue(id, role, &email, Duration::from_secs(900))
        .expect("token");
    (id, email, token)
}

/// Polls `check` until it yields `Some`, or panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A producer/inspector handle on one queue of a prefix (independent of the app).
pub async fn queue(prefix: &str, name: &str) -> bullmq::Queue {
    bullmq::Queue::with_options(
        name,
        bullmq::QueueOptions::new()
            .connection(bullmq::options::RedisConnectionOptions::new().url(redis_url()))
            .prefix(prefix),
    )
    .await
    .expect("queue handle")
}

/// Deletes every key of the prefix in the test Redis DB.
pub async fn purge(prefix: &str) {
    let client = redis::Client::open(redis_url()).expect("redis url");
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

/// A free loopback port with nothing listening on it.
pub async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}
