//! JWT signing key rotation without logging anyone out: a server with the new key
//! (`JWT_SECRET`, `JWT_KEY_ID`) and the old one as `JWT_PREVIOUS_SECRET` accepts the
//! old key's tokens and codes and signs with the new one; once the previous key is
//! removed its tokens stop working.

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::support::auth::{outbox_otp, register, spawn_with};
use crate::support::users::unique_email;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};

const OLD: &str = "old-signing-secret-old-signing-secret!";
const NEW: &str = "new-signing-secret-new-signing-secret!";

fn kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok()?.kid
}

#[sqlx::test(migrations = false)]
async fn rotating_the_signing_key_keeps_sessions_and_codes(db: PgPool) {
    let before = spawn_with(db.clone(), |env| {
        env.insert("JWT_SECRET".into(), OLD.into());
        env.insert("JWT_KEY_ID".into(), "2026-11".into());
    })
    .await;
    let old_token = before.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(kid(&old_token).as_deref(), Some("2026-11"));
    // A verification code mailed before the rotation.
    let email = unique_email("rotate");
    register(&before, "Rotating", &email, "long-enough-1").await;
    let code = outbox_otp(&before, &email, "verify_email").await;

    let rotated = spawn_with(db.clone(), |env| {
        env.insert("JWT_SECRET".into(), NEW.into());
        env.insert("JWT_KEY_ID".into(), "2026-12".into());
        env.insert("JWT_PREVIOUS_SECRET".into(), OLD.into());
        env.insert("JWT_PREVIOUS_KEY_ID".into(), "2026-11".into());
    })
    .await;
    let (status, body) = rotated
        .call(Method::GET, "/api/auth/me", Some(&old_token), None)
        .await;
    assert_eq!(status, 200, "an old token still works: {body}");
    let new_token = rotated.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        kid(&new_token).as_deref(),
        Some("2026-12"),
        "new tokens use the new key"
    );
    let (status, body) = rotated
        .call(
            Method::POST,
            "/api/auth/verify-email",
            None,
            Some(json!({"email": email, "otp": code})),
        )
        .await;
    assert_eq!(
        status, 200,
        "a code keyed before the rotation verifies: {body}"
    );

    // The previous key removed: its tokens are refused, the new ones kept.
    let after = spawn_with(db, |env| {
        env.insert("JWT_SECRET".into(), NEW.into());
        env.insert("JWT_KEY_ID".into(), "2026-12".into());
    })
    .await;
    let (status, body) = after
        .call(Method::GET, "/api/auth/me", Some(&old_token), None)
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["error"]["message"],
        "access token signature is invalid"
    );
    let (status, _) = after
        .call(Method::GET, "/api/auth/me", Some(&new_token), None)
        .await;
    assert_eq!(status, 200);
    for app in [before, rotated, after] {
        app.shutdown().await.unwrap();
    }
}
