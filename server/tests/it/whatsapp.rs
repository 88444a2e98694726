//! WhatsApp template messages through a local stand-in for the Cloud API's messages
//! endpoint, and their delivery statuses and inbound messages stored from the signed
//! webhook (statuses only move forward, whatever order they arrive in).
//!
//! Contract (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages):
//! `POST /<WHATSAPP_GRAPH_API_VERSION>/<phone number id>/messages`, `Authorization:
//! Bearer <token>`, body `{messaging_product: "whatsapp", to, type: "template",
//! template: {name, language: {code}, components}}` → `{messaging_product, contacts:
//! [{input, wa_id}], messages: [{id: "wamid…"}]}`. Status and message notifications
//! as in https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use mas_server::auth::Role;
use mas_server::services::whatsapp::{self, TemplateKind};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::queues as qs;
use crate::support::standin::serve;
use crate::support::wait::wait_for;
use crate::support::{TestApp, create_user};
use crate::webhooks::{WA_APP_SECRET, hmac_sha256_hex, post_raw, webhook_env};

const ACCESS_TOKEN: &str = "wa-access-token-standin";

#[derive(Clone, Default)]
struct Graph {
    sent: Arc<Mutex<Vec<(String, String, Value)>>>,
}

/// Local stand-in for the Cloud API's `POST /{version}/{phone-number-id}/messages`.
async fn messages(
    State(g): State<Graph>,
    Path((version, phone_id)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> (StatusCode, axum::Json<Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}),
            ),
        );
    }
    let mut sent = g.sent.lock().unwrap();
    let wamid = format!("wamid.STANDIN{}", sent.len() + 1);
    let answer = json!({"messaging_product": "whatsapp",
        "contacts": [{"input": body["to"], "wa_id": body["to"]}],
        "messages": [{"id": wamid}]});
    sent.push((version, phone_id, body));
    (StatusCode::OK, axum::Json(answer))
}

async fn signed(app: &TestApp, body: Value) -> u16 {
    let bytes = body.to_string().into_bytes();
    let sig = format!("sha256={}", hmac_sha256_hex(WA_APP_SECRET, &bytes));
    post_raw(
        app,
        "/api/webhooks/whatsapp",
        "application/json",
        &[("x-hub-signature-256", &sig)],
        bytes,
    )
    .await
    .0
}

fn notification(value: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [
        {"field": "messages", "value": value}]}]})
}

/// The stand-in on a free loopback port and a server (with queue workers) sending to it.
async fn spawn_with_graph(db: PgPool) -> (TestApp, String, Graph) {
    let g = Graph::default();
    let router = axum::Router::new()
        .route("/{version}/{phone}/messages", post(messages))
        .with_state(g.clone());
    let (base, _) = serve(router).await;
    let (app, prefix) = qs::spawn(db, |env| {
        webhook_env(env);
        env.insert("WHATSAPP_ACCESS_TOKEN".into(), ACCESS_TOKEN.into());
        env.insert("WHATSAPP_PHONE_NUMBER_ID".into(), "106540352242922".into());
        env.insert("WHATSAPP_GRAPH_API_VERSION".into(), "v22.0".into());
        env.insert("WHATSAPP_GRAPH_BASE_URL".into(), base);
    })
    .await;
    (app, prefix, g)
}

/// `POST /api/admin/whatsapp/reminders`: admins only, a scheduled meeting only, the
/// student needs a phone; the reminder template (mentor, start) reaches the Cloud API.
#[sqlx::test(migrations = false)]
async fn the_reminder_route_sends_the_reminder_template(db: PgPool) {
    let (app, prefix, g) = spawn_with_graph(db).await;
    let m = crate::support::realtime::meeting(&app).await;
    let body = json!({"meetingId": m.meeting_id});
    let path = "/api/admin/whatsapp/reminders";
    let (status, _) = app
        .call(
            Method::POST,
            path,
            Some(&m.student.token),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 403, "students cannot send reminders");
    let (status, res) = app
        .call(Method::POST, path, Some(&m.admin.token), Some(body.clone()))
        .await;
    assert_eq!(status, 400, "no phone yet: {res}");
    let (status, _) = app
        .call(
            Method::POST,
            path,
            Some(&m.admin.token),
            Some(json!({"meetingId": uuid::Uuid::new_v4()})),
        )
        .await;
    assert_eq!(status, 404);
    app.call(
        Method::PUT,
        "/api/profile/phone",
        Some(&m.student.token),
        Some(json!({"phone": "+919900000007"})),
    )
    .await;
    let (status, res) = app
        .call(Method::POST, path, Some(&m.admin.token), Some(body.clone()))
        .await;
    assert_eq!(status, 201, "{res}");
    let sent = wait_for(
        "the reminder at the Cloud API",
        Duration::from_secs(20),
        || {
            let g = g.clone();
            async move {
                let sent = g.sent.lock().unwrap();
                sent.first().map(|(_, _, body)| body.clone())
            }
        },
    )
    .await;
    assert_eq!(sent["to"], "919900000007");
    assert_eq!(sent["template"]["name"], "session_reminder");
    let params = &sent["template"]["components"][0]["parameters"];
    let mentor: String = sqlx::query_scalar("select name from users where id = $1")
        .bind(m.mentor.id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(params[0]["text"], mentor.as_str());
    assert!(
        params[1]["text"].as_str().unwrap().ends_with("UTC"),
        "{params}"
    );

    // A cancelled meeting gets no reminder.
    sqlx::query("update meetings set status = 'cancelled' where id = $1")
        .bind(m.meeting_id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let (status, _) = app
        .call(Method::POST, path, Some(&m.admin.token), Some(body))
        .await;
    assert_eq!(status, 404);
    assert_eq!(g.sent.lock().unwrap().len(), 1);
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn templates_are_sent_and_statuses_stored(db: PgPool) {
    let (app, prefix, g) = spawn_with_graph(db).await;
    let student = create_user(&app.state, Role::Student).await;
    // No phone: nothing is queued.
    let none = whatsapp::queue_template(&app.state, student.id, TemplateKind::Reminder, vec![])
        .await
        .unwrap();
    assert!(none.is_none());
    app.call(
        Method::PUT,
        "/api/profile/phone",
        Some(&student.token),
        Some(json!({"phone": "+919900000003"})),
    )
    .await;
    let queued = whatsapp::queue_template(
        &app.state,
        student.id,
        TemplateKind::BookingConfirmation,
        vec!["Asha".into(), "Mon 6 pm".into()],
    )
    .await
    .unwrap()
    .expect("queued");
    let db = app.state.db.clone();
    let id = queued.id;
    let wamid: String = wait_for("the message to be sent", Duration::from_secs(20), || {
        let db = db.clone();
        async move {
            let (status, wamid): (String, Option<String>) =
                sqlx::query_as("select status, wamid from whatsapp_messages where id = $1")
                    .bind(id)
                    .fetch_one(&db)
                    .await
                    .ok()?;
            (status == "sent").then_some(wamid).flatten()
        }
    })
    .await;
    {
        let sent = g.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        let (version, phone_id, body) = &sent[0];
        assert_eq!(
            (version.as_str(), phone_id.as_str()),
            ("v22.0", "106540352242922")
        );
        assert_eq!(body["to"], "919900000003");
        assert_eq!(body["type"], "template");
        assert_eq!(body["template"]["name"], "booking_confirmation");
        assert_eq!(body["template"]["language"]["code"], "en");
        assert_eq!(
            body["template"]["components"][0]["parameters"][1]["text"],
            "Mon 6 pm"
        );
    }

    // "read" overtakes "delivered": the late "delivered" does not move it back.
    let status = |s: &str, ts: &str| {
        notification(json!({"messaging_product": "whatsapp",
            "metadata": {"phone_number_id": "106540352242922"},
            "statuses": [{"id": wamid, "status": s, "timestamp": ts, "recipient_id": "919900000003"}]}))
    };
    assert_eq!(signed(&app, status("read", "1700000200")).await, 200);
    assert_eq!(signed(&app, status("delivered", "1700000100")).await, 200);
    // An inbound reply from the student.
    let inbound = notification(json!({"messaging_product": "whatsapp",
        "contacts": [{"profile": {"name": "Asha"}, "wa_id": "919900000003"}],
        "messages": [{"from": "919900000003", "id": "wamid.INBOUND1", "timestamp": "1700000300",
                      "type": "text", "text": {"body": "See you then"}}]}));
    assert_eq!(signed(&app, inbound).await, 200);
    let processed = wait_for("the three notifications", Duration::from_secs(20), || {
        let db = db.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "select count(*) from webhook_events where provider = 'whatsapp' and processed_at is not null",
            )
            .fetch_one(&db)
            .await
            .ok()?;
            (n == 3).then_some(n)
        }
    })
    .await;
    assert_eq!(processed, 3);
    let final_status: String =
        sqlx::query_scalar("select status from whatsapp_messages where id = $1")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(final_status, "read");
    let admin = create_user(&app.state, Role::Admin).await.token;
    let (status, res) = app
        .call(
            Method::GET,
            &format!("/api/admin/whatsapp/messages?userId={}", student.id),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{res}");
    let text = res.to_string();
    assert!(
        text.contains("See you then") && text.contains("received"),
        "{text}"
    );
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/admin/whatsapp/messages?userId={}", student.id),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(status, 403);
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
