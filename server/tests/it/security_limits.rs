//! Abuse limits through the one limiter (`services::rate_limit`): per user and per
//! client address (`TRUSTED_PROXY_HOPS` + `X-Forwarded-For`, as behind the ingress),
//! 429 with `Retry-After`, each limit set by its own `RATE_LIMIT_<NAME>`.
//!
//! Counters live in the shared Redis for their whole window, so every test comes from
//! client addresses of its own (random documentation-range IPv6 strings in the
//! header; nothing is ever sent to them).

use std::collections::HashMap;

use mas_server::auth::Role;
use mas_server::services::rate_limit::{self, LimitName};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::app::TestApp;
use crate::support::auth::spawn_with;
use crate::support::create_user;
use crate::support::users::unique_email;

fn client() -> String {
    let g: [u16; 4] = rand::random();
    format!("2001:db8:{:x}:{:x}:{:x}:{:x}::1", g[0], g[1], g[2], g[3])
}

fn limits(env: &mut HashMap<String, String>, pairs: &[(&str, &str)]) {
    env.insert("TRUSTED_PROXY_HOPS".into(), "1".into());
    for (var, rule) in pairs {
        env.insert((*var).into(), (*rule).into());
    }
}

async fn call_from(
    app: &TestApp,
    from: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Option<u64>, Value) {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("x-forwarded-for", from)
        .json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = res.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

fn assert_limited(got: &(StatusCode, Option<u64>, Value), window_secs: u64) {
    let (status, retry_after, body) = got;
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "TOO_MANY_REQUESTS", "{body}");
    let retry_after = retry_after.expect("Retry-After header");
    assert!(
        (1..=window_secs).contains(&retry_after),
        "Retry-After {retry_after} within the {window_secs} s window"
    );
}

#[sqlx::test(migrations = false)]
async fn registrations_are_limited_per_client_address(db: PgPool) {
    let app = spawn_with(db, |env| {
        limits(env, &[("RATE_LIMIT_REGISTER", "client=3/1h")])
    })
    .await;
    let (a, b) = (client(), client());
    let body = || json!({"name": "N", "email": unique_email("lim"), "password": "long-enough-1"});
    for _ in 0..3 {
        let got = call_from(&app, &a, Method::POST, "/api/auth/register", None, body()).await;
        assert_eq!(got.0, StatusCode::ACCEPTED, "{}", got.2);
    }
    let blocked = call_from(&app, &a, Method::POST, "/api/auth/register", None, body()).await;
    assert_limited(&blocked, 3600);
    // Another address is not affected.
    let other = call_from(&app, &b, Method::POST, "/api/auth/register", None, body()).await;
    assert_eq!(other.0, StatusCode::ACCEPTED);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn verification_and_resend_are_limited_per_client_address(db: PgPool) {
    let app = spawn_with(db, |env| {
        limits(
            env,
            &[
                ("RATE_LIMIT_VERIFICATION", "client=2/10m"),
                ("RATE_LIMIT_RESEND", "client=1/10m"),
            ],
        )
    })
    .await;
    let from = client();
    let guess = json!({"email": unique_email("v"), "otp": "000000"});
    for _ in 0..2 {
        let got = call_from(
            &app,
            &from,
            Method::POST,
            "/api/auth/verify-email",
            None,
            guess.clone(),
        )
        .await;
        assert_eq!(
            got.0,
            StatusCode::BAD_REQUEST,
            "a wrong code, not yet limited"
        );
    }
    let blocked = call_from(
        &app,
        &from,
        Method::POST,
        "/api/auth/verify-email",
        None,
        guess,
    )
    .await;
    assert_limited(&blocked, 600);

    let ask = json!({"email": unique_email("r")});
    let first = call_from(
        &app,
        &from,
        Method::POST,
        "/api/auth/resend-verification",
        None,
        ask.clone(),
    )
    .await;
    assert_eq!(first.0, StatusCode::OK);
    let blocked = call_from(
        &app,
        &from,
        Method::POST,
        "/api/auth/resend-verification",
        None,
        ask,
    )
    .await;
    assert_limited(&blocked, 600);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn pairings_are_limited_per_user_and_per_client_address(db: PgPool) {
    let app = spawn_with(db, |env| {
        limits(env, &[("RATE_LIMIT_PAIRING", "user=2/10m,client=3/10m")])
    })
    .await;
    let from = client();
    let first = create_user(&app.state, Role::Student).await;
    let second = create_user(&app.state, Role::Student).await;
    for _ in 0..2 {
        let got = call_from(
            &app,
            &from,
            Method::POST,
            "/api/terminal/pairings",
            Some(&first.token),
            json!({}),
        )
        .await;
        assert_eq!(got.0, StatusCode::CREATED, "{}", got.2);
    }
    let per_user = call_from(
        &app,
        &from,
        Method::POST,
        "/api/terminal/pairings",
        Some(&first.token),
        json!({}),
    )
    .await;
    assert_limited(&per_user, 600);
    // The client address has had 3 now (the refused one counts too): the next user
    // from the same address is refused, from another address served.
    let per_client = call_from(
        &app,
        &from,
        Method::POST,
        "/api/terminal/pairings",
        Some(&second.token),
        json!({}),
    )
    .await;
    assert_limited(&per_client, 600);
    let elsewhere = call_from(
        &app,
        &client(),
        Method::POST,
        "/api/terminal/pairings",
        Some(&second.token),
        json!({}),
    )
    .await;
    assert_eq!(elsewhere.0, StatusCode::CREATED);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn uploads_are_limited_per_user(db: PgPool) {
    let bucket = format!("limits-{}", Uuid::new_v4().simple());
    let app = spawn_with(db, |env| {
        limits(env, &[("RATE_LIMIT_UPLOAD", "user=2/1h")]);
        env.insert("S3_BUCKET".into(), bucket.clone());
        env.insert(
            "S3_ENDPOINT".into(),
            std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto)"),
        );
    })
    .await;
    let student = create_user(&app.state, Role::Student).await;
    let from = client();
    let upload = json!({"purpose": "resume", "fileName": "cv.pdf", "contentType": "application/pdf", "sizeBytes": 10});
    for _ in 0..2 {
        let got = call_from(
            &app,
            &from,
            Method::POST,
            "/api/uploads",
            Some(&student.token),
            upload.clone(),
        )
        .await;
        assert_eq!(got.0, StatusCode::OK, "{}", got.2);
    }
    let blocked = call_from(
        &app,
        &client(),
        Method::POST,
        "/api/uploads",
        Some(&student.token),
        upload,
    )
    .await;
    assert_limited(&blocked, 3600);
    app.shutdown().await.unwrap();
}

/// Every webhook route counts its calls per client address against `RATE_LIMIT_WEBHOOK`
/// before anything else (configured or not, signed or not); the code-run limit is the same
/// limiter (its route is tested with a Judge0 stand-in in `code_runs`).
#[sqlx::test(migrations = false)]
async fn webhook_routes_are_limited_per_client_address(db: PgPool) {
    let app = spawn_with(db, |env| {
        limits(
            env,
            &[
                ("RATE_LIMIT_CODE_RUN", "user=2/1m"),
                ("RATE_LIMIT_WEBHOOK", "client=1/1m"),
            ],
        )
    })
    .await;
    for path in [
        "/api/webhooks/razorpay",
        "/api/webhooks/whatsapp",
        "/api/exotel/status",
        "/api/webhooks/leegality",
        "/api/webhooks/elevenlabs",
    ] {
        let from = client();
        let (first, _, body) = call_from(&app, &from, Method::POST, path, None, json!({})).await;
        assert_ne!(first, StatusCode::TOO_MANY_REQUESTS, "{path}: {body}");
        let second = call_from(&app, &from, Method::POST, path, None, json!({})).await;
        assert_limited(&second, 60);
        // Another address has its own budget.
        let (other, _, _) = call_from(&app, &client(), Method::POST, path, None, json!({})).await;
        assert_ne!(other, StatusCode::TOO_MANY_REQUESTS, "{path}");
    }
    let from = client();
    let (first, _, _) = call_from(
        &app,
        &from,
        Method::GET,
        "/api/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
        None,
        Value::Null,
    )
    .await;
    assert_ne!(first, StatusCode::TOO_MANY_REQUESTS);
    let second = call_from(
        &app,
        &from,
        Method::GET,
        "/api/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
        None,
        Value::Null,
    )
    .await;
    assert_limited(&second, 60);

    // The code-run rule through the same limiter.
    let user = Uuid::new_v4();
    let from = client();
    for _ in 0..2 {
        rate_limit::enforce(&app.state, LimitName::CodeRun, Some(user), &from)
            .await
            .unwrap();
    }
    let err = rate_limit::enforce(&app.state, LimitName::CodeRun, Some(user), &from)
        .await
        .unwrap_err();
    assert_eq!(err.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
    app.shutdown().await.unwrap();
}
