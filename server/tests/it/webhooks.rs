//! Inbound webhooks (Razorpay, WhatsApp, Exotel, Leegality): signatures checked over
//! the raw body, redeliveries acknowledged once, oversized bodies refused, and each
//! webhook disabled (503 INTEGRATION_DISABLED) while its secret is unset.
//!
//! Bodies are signed here exactly as each provider documents, with the `hmac` crate
//! directly (not the server's own helper), so a wrong scheme on the server fails:
//! - Razorpay: `X-Razorpay-Signature` = hex HMAC-SHA256(raw body, webhook secret),
//!   `X-Razorpay-Event-Id` the event id — https://razorpay.com/docs/webhooks/validate-test/
//! - Meta (WhatsApp Cloud API): `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(raw body,
//!   app secret)>`, and the GET handshake `hub.mode=subscribe&hub.verify_token=…&
//!   hub.challenge=…` answered with the challenge —
//!   https://developers.facebook.com/docs/graph-api/webhooks/getting-started
//! - Exotel: callbacks are unsigned, so the StatusCallback URL carries our token
//!   (the seed's `EXOTEL_WEBHOOK_TOKEN`); fields `CallSid`, `Status`, `EventType` as
//!   in https://developer.exotel.com/docs/voice-v1/api-reference/connect-two-numbers
//! - Leegality: `mac` = hex HMAC-SHA1(documentId, private salt) —
//!   https://knowledge.leegality.com/document-execution/api/webhooks/verify-webhook-request

use hmac::{KeyInit, Mac};
use mas_server::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestApp, create_user};

pub const RAZORPAY_SECRET: &str = "rzp-webhook-secret-1";
pub const WA_APP_SECRET: &str = "whatsapp-app-secret-1";
pub const WA_VERIFY_TOKEN: &str = "whatsapp-verify-token-1";
pub const EXOTEL_TOKEN: &str = "exotel-webhook-token-0123456789";
pub const LEEGALITY_SALT: &str = "leegality-private-salt";

pub fn hmac_sha256_hex(key: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

pub fn hmac_sha1_hex(key: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

pub fn webhook_env(env: &mut std::collections::HashMap<String, String>) {
    for (k, v) in [
        ("RAZORPAY_WEBHOOK_SECRET", RAZORPAY_SECRET),
        ("WHATSAPP_APP_SECRET", WA_APP_SECRET),
        ("WHATSAPP_VERIFY_TOKEN", WA_VERIFY_TOKEN),
        ("EXOTEL_WEBHOOK_TOKEN", EXOTEL_TOKEN),
        ("LEEGALITY_PRIVATE_SALT", LEEGALITY_SALT),
    ] {
        env.insert(k.into(), v.into());
    }
}

/// POSTs raw bytes with headers; returns status and JSON body.
pub async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A Razorpay webhook, signed over exactly these bytes.
pub async fn razorpay_webhook(app: &TestApp, event_id: &str, body: &[u8]) -> (u16, Value) {
    let sig = hmac_sha256_hex(RAZORPAY_SECRET, body);
    post_raw(
        app,
        "/api/webhooks/razorpay",
        "application/json",
        &[
            ("x-razorpay-signature", &sig),
            ("x-razorpay-event-id", event_id),
        ],
        body.to_vec(),
    )
    .await
}

async fn inbox_count(app: &TestApp, provider: &str) -> i64 {
    sqlx::query_scalar("select count(*) from webhook_events where provider = $1")
        .bind(provider)
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn webhooks_are_disabled_while_their_secrets_are_unset(db: PgPool) {
    let app = TestApp::spawn(db).await;
    for (path, var) in [
        ("/api/webhooks/razorpay", "RAZORPAY_WEBHOOK_SECRET"),
        ("/api/webhooks/whatsapp", "WHATSAPP_APP_SECRET"),
        ("/api/exotel/status", "EXOTEL_WEBHOOK_TOKEN"),
        ("/api/webhooks/leegality", "LEEGALITY_PRIVATE_SALT"),
    ] {
        let (status, body) = post_raw(&app, path, "application/json", &[], b"{}".to_vec()).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(
            body["error"]["code"], "INTEGRATION_DISABLED",
            "{path}: {body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(var),
            "{path} names {var}: {body}"
        );
    }
    let (status, body) = app
        .call(
            Method::GET,
            "/api/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
            None,
            None,
        )
        .await;
    assert_eq!(status, 503, "{body}");
    // Nothing was recorded.
    let n: i64 = sqlx::query_scalar("select count(*) from webhook_events")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // The registry lists them as not configured.
    let admin = create_user(&app.state, Role::Admin).await.token;
    let (status, body) = app
        .call(Method::GET, "/api/admin/integrations", Some(&admin), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let text = body.to_string();
    for id in [
        "razorpay-webhooks",
        "whatsapp-webhooks",
        "exotel-webhooks",
        "leegality-webhooks",
    ] {
        assert!(text.contains(id), "{id} listed: {text}");
    }
}

#[sqlx::test(migrations = false)]
async fn razorpay_signature_is_checked_over_the_raw_body(db: PgPool) {
    let app = TestApp::spawn_with(db, webhook_env).await;
    // Odd but valid JSON spacing: a server that re-serialises before checking fails.
    let body = br#"{ "entity":"event","account_id":"acc_1","event":"payment.failed",  "payload":{"payment":{"entity":{"id":"pay_x","order_id":"order_unknown","amount":100,"currency":"INR"}}},"created_at":1700000000 }"#.to_vec();
    let path = "/api/webhooks/razorpay";

    // Missing signature.
    let (status, res) = post_raw(
        &app,
        path,
        "application/json",
        &[("x-razorpay-event-id", "evt_1")],
        body.clone(),
    )
    .await;
    assert_eq!(status, 401, "{res}");
    assert_eq!(res["error"]["code"], "UNAUTHORIZED", "{res}");

    // Signed with another secret.
    let wrong = hmac_sha256_hex("some-other-secret", &body);
    let (status, _) = post_raw(
        &app,
        path,
        "application/json",
        &[
            ("x-razorpay-signature", &wrong),
            ("x-razorpay-event-id", "evt_1"),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(status, 401);

    // Signed over the re-serialised JSON, not the bytes sent.
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    assert_ne!(reserialised, body);
    let sig = hmac_sha256_hex(RAZORPAY_SECRET, &reserialised);
    let (status, _) = post_raw(
        &app,
        path,
        "application/json",
        &[
            ("x-razorpay-signature", &sig),
            ("x-razorpay-event-id", "evt_1"),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(status, 401);

    // A body tampered after signing.
    let sig = hmac_sha256_hex(RAZORPAY_SECRET, &body);
    let mut tampered = body.clone();
    let at = tampered.windows(3).position(|w| w == b"100").unwrap();
    tampered[at] = b'9';
    let (status, _) = post_raw(
        &app,
        path,
        "application/json",
        &[
            ("x-razorpay-signature", &sig),
            ("x-razorpay-event-id", "evt_1"),
        ],
        tampered,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(inbox_count(&app, "razorpay").await, 0);

    // Correct: stored once; the redelivery (same event id) is acknowledged, not stored.
    let (status, res) = razorpay_webhook(&app, "evt_1", &body).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["data"]["received"], true);
    assert_eq!(res["data"]["duplicate"], false);
    let (status, res) = razorpay_webhook(&app, "evt_1", &body).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["data"]["duplicate"], true, "{res}");
    assert_eq!(inbox_count(&app, "razorpay").await, 1);
    let (event_type, event_id): (String, String) = sqlx::query_as(
        "select event_type, event_id from webhook_events where provider = 'razorpay'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(
        (event_type.as_str(), event_id.as_str()),
        ("payment.failed", "evt_1")
    );

    // Signed but not an event.
    let junk = b"not json".to_vec();
    let (status, _) = razorpay_webhook(&app, "evt_2", &junk).await;
    assert_eq!(status, 400);
}

#[sqlx::test(migrations = false)]
async fn oversized_webhook_bodies_are_refused(db: PgPool) {
    let app = TestApp::spawn_with(db, |env| {
        webhook_env(env);
        env.insert("WEBHOOK_BODY_LIMIT_BYTES".into(), "2048".into());
    })
    .await;
    let big = format!(
        r#"{{"event":"payment.failed","pad":"{}"}}"#,
        "x".repeat(4096)
    )
    .into_bytes();
    let (status, res) = razorpay_webhook(&app, "evt_big", &big).await;
    assert_eq!(status, 413, "{res}");
    // Without a Content-Length (chunked, raw HTTP/1.1) the cap holds as well.
    let sig = hmac_sha256_hex(RAZORPAY_SECRET, &big);
    let mut req = format!(
        "POST /api/webhooks/razorpay HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         X-Razorpay-Signature: {sig}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    )
    .into_bytes();
    for chunk in big.chunks(512) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(&req).await.unwrap();
    let mut answer = Vec::new();
    // The server may answer and close before reading everything; what it said counts.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(inbox_count(&app, "razorpay").await, 0);
}

#[sqlx::test(migrations = false)]
async fn whatsapp_handshake_and_signature(db: PgPool) {
    let app = TestApp::spawn_with(db, webhook_env).await;

    // The GET handshake answers the challenge as plain text.
    let res = app
        .client
        .get(app.url(&format!(
            "/api/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={WA_VERIFY_TOKEN}&hub.challenge=1158201444"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(res.text().await.unwrap(), "1158201444");
    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong-token-xx&hub.challenge=1",
        &format!("hub.mode=unsubscribe&hub.verify_token={WA_VERIFY_TOKEN}&hub.challenge=1"),
        "hub.mode=subscribe&hub.challenge=1",
    ] {
        let (status, body) = app
            .call(
                Method::GET,
                &format!("/api/webhooks/whatsapp?{query}"),
                None,
                None,
            )
            .await;
        assert_eq!(status, 403, "{query}: {body}");
    }

    // A delivery status notification, shaped as in Meta's webhook reference.
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA_ID", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": "PNID"},
            "statuses": [{"id": "wamid.unknown", "status": "delivered", "timestamp": "1700000000", "recipient_id": "919900000001"}]
        }}]}]
    })
    .to_string()
    .into_bytes();
    let path = "/api/webhooks/whatsapp";
    let good = format!("sha256={}", hmac_sha256_hex(WA_APP_SECRET, &body));
    let bare = hmac_sha256_hex(WA_APP_SECRET, &body);
    let wrong = format!("sha256={}", hmac_sha256_hex("not-the-app-secret", &body));
    for (headers, want) in [
        (vec![], 401),
        (vec![("x-hub-signature-256", bare.as_str())], 401),
        (vec![("x-hub-signature-256", wrong.as_str())], 401),
        (vec![("x-hub-signature-256", good.as_str())], 200),
    ] {
        let (status, res) = post_raw(&app, path, "application/json", &headers, body.clone()).await;
        assert_eq!(status, want, "{headers:?}: {res}");
    }
    // Redelivered: the same bytes again.
    let (status, res) = post_raw(
        &app,
        path,
        "application/json",
        &[("x-hub-signature-256", &good)],
        body.clone(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(res["data"]["duplicate"], true, "{res}");
    assert_eq!(inbox_count(&app, "whatsapp").await, 1);
}

#[sqlx::test(migrations = false)]
async fn exotel_callbacks_need_the_token(db: PgPool) {
    let app = TestApp::spawn_with(db, webhook_env).await;
    // Exotel posts its StatusCallback as a urlencoded form.
    let form = b"CallSid=c0ffee123&Status=completed&EventType=terminal&ConversationDuration=42&RecordingUrl=https%3A%2F%2Frecordings.exotel.com%2Fx.mp3".to_vec();
    let ct = "application/x-www-form-urlencoded";
    let (status, _) = post_raw(&app, "/api/exotel/status", ct, &[], form.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = post_raw(
        &app,
        "/api/exotel/status?token=exotel-webhook-token-wrong-1234",
        ct,
        &[],
        form.clone(),
    )
    .await;
    assert_eq!(status, 401);
    let path = format!("/api/exotel/status?token={EXOTEL_TOKEN}");
    let (status, res) = post_raw(&app, &path, ct, &[], form.clone()).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["data"]["duplicate"], false);
    // Exotel retries a callback it did not see acknowledged: same call, kind and status.
    let (status, res) = post_raw(&app, &path, ct, &[], form.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(res["data"]["duplicate"], true);
    // The header form of the token works too.
    let (status, _) = post_raw(
        &app,
        "/api/exotel/status",
        ct,
        &[("x-exotel-webhook-token", EXOTEL_TOKEN)],
        b"CallSid=c0ffee123&Status=busy&EventType=terminal".to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    // No CallSid.
    let (status, _) = post_raw(&app, &path, ct, &[], b"Status=completed".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(inbox_count(&app, "exotel").await, 2);
    let payload: Value = sqlx::query_scalar(
        "select payload from webhook_events where provider = 'exotel' and event_id like '%completed'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(payload["ConversationDuration"], "42");
}

#[sqlx::test(migrations = false)]
async fn leegality_mac_is_checked(db: PgPool) {
    let app = TestApp::spawn_with(db, webhook_env).await;
    let document_id = "DOC123abc";
    let event = |mac: &str| {
        json!({"documentId": document_id, "mac": mac, "webhookType": "Success",
               "request": {"name": "Student", "signed": true}})
        .to_string()
        .into_bytes()
    };
    let good = hmac_sha1_hex(LEEGALITY_SALT, document_id.as_bytes());
    let wrong = hmac_sha1_hex("another-salt", document_id.as_bytes());
    let path = "/api/webhooks/leegality";
    let (status, _) = post_raw(&app, path, "application/json", &[], event(&wrong)).await;
    assert_eq!(status, 401);
    let no_mac = json!({"documentId": document_id}).to_string().into_bytes();
    let (status, _) = post_raw(&app, path, "application/json", &[], no_mac).await;
    assert_eq!(status, 401);
    let (status, res) = post_raw(&app, path, "application/json", &[], event(&good)).await;
    assert_eq!(status, 200, "{res}");
    let (status, res) = post_raw(&app, path, "application/json", &[], event(&good)).await;
    assert_eq!(status, 200);
    assert_eq!(res["data"]["duplicate"], true);
    assert_eq!(inbox_count(&app, "leegality").await, 1);
}
