//! The auth area (auth, admin users, HTTP errors, cross-cutting): servers on their
//! own Redis database (the login limiter's keys), registration and the outbox.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::app::TestApp;
use super::http::{post, read};
use super::redis::redis_url_with_db;

/// Redis database reserved for the auth tests (the instance is shared).
pub const REDIS_DB: u32 = 1;

pub fn use_auth_redis(env: &mut HashMap<String, String>) {
    env.insert("REDIS_URL".into(), redis_url_with_db(REDIS_DB));
}

pub async fn spawn(db: PgPool) -> TestApp {
    TestApp::spawn_with(db, use_auth_redis).await
}

pub async fn spawn_with(db: PgPool, adjust: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    TestApp::spawn_with(db, |env| {
        use_auth_redis(env);
        adjust(env);
    })
    .await
}

/// Registers through the API (202, the same answer for new and taken addresses) and
/// returns the account as stored, in the API's user shape.
pub async fn register(app: &TestApp, name: &str, email: &str, password: &str) -> Value {
    let (status, body) = read(
        post(
            app,
            "/api/auth/register",
            json!({"name": name, "email": email, "password": password}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (id, email, name, role, verified, active): (
        uuid::Uuid,
        String,
        String,
        String,
        bool,
        bool,
    ) = sqlx::query_as(
        "select id, email, name, role, email_verified, is_active from users \
             where lower(email) = lower($1)",
    )
    .bind(email)
    .fetch_one(&app.state.db)
    .await
    .expect("registered account");
    json!({
        "id": id, "email": email, "name": name, "role": role,
        "emailVerified": verified, "isActive": active,
    })
}

/// The payload of the newest outbox row for `to` with `template`.
pub async fn outbox_mail(app: &TestApp, to: &str, template: &str) -> Option<Value> {
    sqlx::query_scalar::<_, Value>(
        "select payload from email_outbox where to_email = $1 and template = $2 \
         order by created_at desc limit 1",
    )
    .bind(to)
    .bind(template)
    .fetch_optional(&app.state.db)
    .await
    .expect("outbox query")
}

pub async fn outbox_otp(app: &TestApp, to: &str, template: &str) -> String {
    let payload = outbox_mail(app, to, template)
        .await
        .unwrap_or_else(|| panic!("no {template} mail to {to} in the outbox"));
    payload["otp"].as_str().expect("otp in payload").to_string()
}

/// Logs in and returns the whole `data` object (tokens and user).
pub async fn login_session(app: &TestApp, email: &str, password: &str) -> Value {
    let (status, body) = read(
        post(
            app,
            "/api/auth/login",
            json!({"email": email, "password": password}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}
