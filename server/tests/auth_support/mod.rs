//! Helpers shared by the auth and cross-cutting tests: a TestApp on the auth
//! Redis database (1), JSON calls, and reading mails from the outbox.
#![allow(dead_code)]

use std::collections::HashMap;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::{TestApp, test_env};

/// Redis database reserved for the auth tests (the instance is shared).
pub const REDIS_DB: u32 = 1;

/// `REDIS_URL` from the environment, pointed at database `db`.
pub fn redis_url_with_db(db: u32) -> String {
    let base = test_env()
        .remove("REDIS_URL")
        .expect("REDIS_URL is not set: run the tests through scripts/test");
    let base = base.trim_end_matches('/');
    // Drop an existing "/<n>" database suffix after the authority.
    let without_db = match base.rsplit_once('/') {
        Some((head, tail)) if !head.ends_with('/') && tail.chars().all(|c| c.is_ascii_digit()) => {
            head
        }
        _ => base,
    };
    format!("{without_db}/{db}")
}

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

/// An address no other test (or earlier run) uses.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", uuid::Uuid::new_v4().simple())
}

pub async fn post(app: &TestApp, path: &str, body: Value) -> Response {
    app.client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .expect("request")
}

pub async fn post_auth(app: &TestApp, path: &str, token: &str, body: Value) -> Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
}

pub async fn get_auth(app: &TestApp, path: &str, token: &str) -> Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

/// Status and JSON body.
pub async fn read(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {text}"));
    (status, body)
}

/// Asserts the error envelope and returns the message.
pub fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) -> String {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"]
        .as_str()
        .expect("error message")
        .to_string()
}

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
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"].clone()
}

/// The newest outbox row for `to` with `template`: (id, payload).
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
