//! Voice interview calls. ElevenLabs is replaced by a local stand-in for its
//! "Outbound call via twilio" API (`POST /v1/convai/twilio/outbound-call`, `xi-api-key`,
//! answering `{success, message, conversation_id, callSid}`), and the post-call webhook
//! is sent the way ElevenLabs signs it (`ElevenLabs-Signature: t=…,v0=hex(HMAC-SHA256(
//! secret, "t.body"))`, https://elevenlabs.io/docs/eleven-agents/workflows/post-call-webhooks).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use mas_server::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;

use crate::support::standin::{Recorder, serve};
use crate::support::wait::wait_for;
use crate::support::{TestApp, create_user, logs};

const API_KEY: &str = "xi-api-key-secret-value";
const WEBHOOK_SECRET: &str = "wsec_elevenlabs_webhook_secret";
const AGENT: &str = "agent_aarya_01";
const PHONE: &str = "phnum_aarya_01";

#[derive(Clone, Default)]
struct ElevenLabs {
    /// Status to answer instead (0: accept the call).
    status: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
}

async fn outbound(
    State(s): State<ElevenLabs>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if headers.get("xi-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": {"status": "invalid_api_key"}})),
        )
            .into_response();
    }
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    let status = s.status.load(Ordering::SeqCst);
    if status != 0 {
        return (
            StatusCode::from_u16(status as u16).unwrap(),
            Json(json!({"detail": "agent_phone_number_id not found"})),
        )
            .into_response();
    }
    assert_eq!(body["agent_id"], AGENT);
    assert_eq!(body["agent_phone_number_id"], PHONE);
    let n = s.calls.fetch_add(1, Ordering::SeqCst) + 1;
    Json(json!({"success": true, "message": "Success", "conversation_id": format!("conv_{n}"), "callSid": format!("CA{n:032}")})).into_response()
}

async fn elevenlabs(state: ElevenLabs) -> (String, Recorder) {
    serve(
        axum::Router::new()
            .route("/v1/convai/twilio/outbound-call", post(outbound))
            .with_state(state),
    )
    .await
}

fn env_for(base: &str) -> Vec<(String, String)> {
    [
        ("ELEVENLABS_API_URL", base),
        ("ELEVENLABS_API_KEY", API_KEY),
        ("ELEVENLABS_AGENT_ID", AGENT),
        ("ELEVENLABS_AGENT_PHONE_NUMBER_ID", PHONE),
        ("ELEVENLABS_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("INTEGRATIONS_HTTP_TIMEOUT_MS", "800"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v0={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

async fn deliver(app: &TestApp, body: &str, sig: Option<String>) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/api/webhooks/elevenlabs"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(sig) = sig {
        req = req.header("ElevenLabs-Signature", sig);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn transcription(conversation_id: &str) -> String {
    json!({
        "type": "post_call_transcription",
        "event_timestamp": chrono::Utc::now().timestamp(),
        "data": {
            "agent_id": AGENT,
            "conversation_id": conversation_id,
            "status": "done",
            "transcript": [
                {"role": "agent", "message": "Hi, I am Aarya. Tell me about your last project.", "time_in_call_secs": 0},
                {"role": "user", "message": "I built a dashboard in SQL and Power BI.", "time_in_call_secs": 4}
            ],
            "metadata": {"start_time_unix_secs": 1, "call_duration_secs": 312},
            "analysis": {"call_successful": "success", "transcript_summary": "Confident SQL, weak on statistics."}
        }
    })
    .to_string()
}

#[sqlx::test(migrations = false)]
async fn a_call_is_placed_and_its_result_stored_from_the_signed_webhook(db: PgPool) {
    let logs = logs::capture();
    let (base, rec) = elevenlabs(ElevenLabs::default()).await;
    let env = env_for(&base);
    let app = TestApp::spawn_with(db, move |e| e.extend(env)).await;
    let student = create_user(&app.state, Role::Student).await;

    let (s, body) = app
        .call(
            Method::POST,
            "/api/voice-calls",
            Some(&student.token),
            Some(json!({"toNumber": "+919812345678"})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let call = body["data"].clone();
    assert_eq!(call["status"], "initiated");
    assert_eq!(call["conversationId"], "conv_1");
    let sent = rec
        .matching("POST", "/v1/convai/twilio/outbound-call")
        .pop()
        .unwrap();
    let sent_body = sent.json();
    assert_eq!(sent_body["to_number"], "+919812345678");
    assert_eq!(
        sent_body["conversation_initiation_client_data"]["dynamic_variables"]["student_name"],
        "Test student"
    );

    // The post-call webhook: wrong, missing and stale signatures are refused.
    let event = transcription("conv_1");
    let now = chrono::Utc::now().timestamp();
    for sig in [
        Some(signature("not-the-secret", now, &event)),
        Some(signature(WEBHOOK_SECRET, now, &format!("{event} "))),
        Some(signature(WEBHOOK_SECRET, now - 3600, &event)),
        None,
    ] {
        let (s, body) = deliver(&app, &event, sig).await;
        assert_eq!(s, 401, "{body}");
    }
    let id = call["id"].as_str().unwrap();
    let (_, body) = app
        .call(
            Method::GET,
            &format!("/api/voice-calls/{id}"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(
        body["data"]["status"], "initiated",
        "nothing stored from unsigned events"
    );

    // Correctly signed: recorded; a redelivery is harmless.
    for _ in 0..2 {
        let (s, body) = deliver(
            &app,
            &event,
            Some(signature(
                WEBHOOK_SECRET,
                chrono::Utc::now().timestamp(),
                &event,
            )),
        )
        .await;
        assert_eq!(
            (s, body["data"]["outcome"].clone()),
            (200, json!("recorded")),
            "{body}"
        );
    }
    let (_, body) = app
        .call(
            Method::GET,
            &format!("/api/voice-calls/{id}"),
            Some(&student.token),
            None,
        )
        .await;
    let stored = &body["data"];
    assert_eq!(stored["status"], "completed");
    assert_eq!(stored["summary"], "Confident SQL, weak on statistics.");
    assert_eq!(stored["callSuccessful"], "success");
    assert_eq!(stored["durationSecs"], 312);
    assert_eq!(
        stored["transcript"][1]["message"],
        "I built a dashboard in SQL and Power BI."
    );

    // Unknown conversations are acknowledged and ignored.
    let other = transcription("conv_not_ours");
    let (s, body) = deliver(
        &app,
        &other,
        Some(signature(
            WEBHOOK_SECRET,
            chrono::Utc::now().timestamp(),
            &other,
        )),
    )
    .await;
    assert_eq!(
        (s, body["data"]["outcome"].clone()),
        (200, json!("unknown_conversation"))
    );

    // Others cannot read the call; students cannot call someone else.
    let stranger = create_user(&app.state, Role::Student).await;
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/voice-calls/{id}"),
            Some(&stranger.token),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .call(
            Method::POST,
            "/api/voice-calls",
            Some(&stranger.token),
            Some(json!({"toNumber": "+919812345678", "studentId": student.id})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .call(
            Method::POST,
            "/api/voice-calls",
            Some(&student.token),
            Some(json!({"toNumber": "98123"})),
        )
        .await;
    assert_eq!(s, 400);

    let text = logs.text();
    assert!(
        !text.contains(API_KEY) && !text.contains(WEBHOOK_SECRET),
        "no secret in the logs"
    );
}

#[sqlx::test(migrations = false)]
async fn provider_failures_fail_the_call_without_dialling_twice(db: PgPool) {
    let el = ElevenLabs::default();
    let (base, rec) = elevenlabs(el.clone()).await;
    let env = env_for(&base);
    let app = TestApp::spawn_with(db, move |e| e.extend(env)).await;
    let admin = crate::support::users::seeded_admin(&app.state).await;
    let student = create_user(&app.state, Role::Student).await;
    let new = json!({"toNumber": "+14155550100", "studentId": student.id});

    // 4xx: the provider refused; 502 and the call is failed.
    el.status.store(404, Ordering::SeqCst);
    let (s, body) = app
        .call(
            Method::POST,
            "/api/voice-calls",
            Some(&admin.token),
            Some(new.clone()),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (502, json!("BAD_GATEWAY")),
        "{body}"
    );
    // 5xx: a POST that dials a phone is sent once.
    el.status.store(500, Ordering::SeqCst);
    let before = rec.count("POST", "/v1/convai");
    let (s, _) = app
        .call(
            Method::POST,
            "/api/voice-calls",
            Some(&admin.token),
            Some(new.clone()),
        )
        .await;
    assert_eq!(s, 502);
    assert_eq!(rec.count("POST", "/v1/convai"), before + 1);
    // Timeout: 504, and the call is failed (outcome unknown: never redialled).
    el.status.store(0, Ordering::SeqCst);
    el.delay_ms.store(1500, Ordering::SeqCst);
    let (s, body) = app
        .call(
            Method::POST,
            "/api/voice-calls",
            Some(&admin.token),
            Some(new.clone()),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (504, json!("GATEWAY_TIMEOUT")),
        "{body}"
    );
    let statuses: Vec<(String, Option<String>)> =
        sqlx::query_as("select status, failure_reason from voice_calls order by created_at")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert_eq!(statuses.len(), 3);
    assert!(statuses.iter().all(|(s, _)| s == "failed"), "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|(_, r)| !r.as_deref().unwrap_or("").contains(API_KEY))
    );
}

#[sqlx::test(migrations = false)]
async fn a_scheduled_call_is_placed_by_the_queue(db: PgPool) {
    let (base, rec) = elevenlabs(ElevenLabs::default()).await;
    let env = env_for(&base);
    let (app, prefix) = crate::support::queues::spawn(db, move |e| e.extend(env)).await;
    let student = create_user(&app.state, Role::Student).await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(7);
    let (s, body) = app
        .call(
            Method::POST,
            "/api/voice-calls",
            Some(&student.token),
            Some(json!({"toNumber": "+919812345678", "scheduledFor": at})),
        )
        .await;
    assert_eq!(
        (s, body["data"]["status"].clone()),
        (201, json!("scheduled")),
        "{body}"
    );
    assert_eq!(rec.count("POST", "/v1/convai"), 0, "not before its time");
    let id = body["data"]["id"].as_str().unwrap().to_string();
    let placed = wait_for(
        "the scheduled call to be placed",
        Duration::from_secs(25),
        || {
            let (app, id, token) = (&app, id.clone(), student.token.clone());
            async move {
                let (_, body) = app
                    .call(
                        Method::GET,
                        &format!("/api/voice-calls/{id}"),
                        Some(&token),
                        None,
                    )
                    .await;
                (body["data"]["status"] == "initiated").then_some(body)
            }
        },
    )
    .await;
    assert!(chrono::Utc::now() >= at, "placed no earlier than scheduled");
    assert_eq!(placed["data"]["conversationId"], "conv_1");
    assert_eq!(rec.count("POST", "/v1/convai"), 1);
    crate::support::queues::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn voice_calls_are_disabled_without_elevenlabs(db: PgPool) {
    let app = TestApp::spawn_with(db, |e| {
        // Half the variables: still disabled, naming the rest.
        e.insert("ELEVENLABS_API_KEY".into(), API_KEY.into());
    })
    .await;
    let student = create_user(&app.state, Role::Student).await;
    let (s, body) = app
        .call(
            Method::POST,
            "/api/voice-calls",
            Some(&student.token),
            Some(json!({"toNumber": "+919812345678"})),
        )
        .await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(
        body["error"]["message"],
        "elevenlabs is not configured: set ELEVENLABS_AGENT_ID, ELEVENLABS_AGENT_PHONE_NUMBER_ID, ELEVENLABS_WEBHOOK_SECRET"
    );
    // Unsigned webhooks are refused before anything else; signed ones learn it is off.
    let (s, _) = deliver(&app, "{}", None).await;
    assert_eq!(s, 401);
    let (s, _) = deliver(&app, "{}", Some("t=1,v0=00".into())).await;
    assert_eq!(s, 503);
    assert!(!body.to_string().contains(API_KEY));
}
