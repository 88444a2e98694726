//! CRM for the sales role: leads visible only to their assignee (others: 404),
//! click-to-call through a local stand-in for Exotel's Calls API (connect two numbers)
//! and SMS API, the status callback updating the call log, and the `tel:` fallback
//! while Exotel is unset.
//!
//! The stand-in follows https://developer.exotel.com/docs/voice-v1/api-reference/connect-two-numbers:
//! `POST /v1/Accounts/<sid>/Calls/connect` with HTTP basic auth `api_key:api_token`,
//! form fields `From`, `To`, `CallerId`, `StatusCallback`, … → `{"Call": {"Sid", "Status",
//! "From", "To", ...}}`; and the SMS API `POST /v1/Accounts/<sid>/Sms/send` (`From`, `To`,
//! `Body`) → `{"SMSMessage": {"Sid", "Status", ...}}`:
//! https://developer.exotel.com/docs/sms-v1/api-reference/send-sms

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use mas_server::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::queues as qs;
use crate::support::standin::serve;
use crate::support::wait::wait_for;
use crate::support::{TestApp, create_user};
use crate::webhooks::{EXOTEL_TOKEN, post_raw, webhook_env};

const SID: &str = "mas-standin";
const API_KEY: &str = "exotel-key";
const API_TOKEN: &str = "exotel-api-token-secret";

/// One request the stand-in received: its kind (`call`, `sms`) and form fields.
type Received = (String, HashMap<String, String>);

#[derive(Clone, Default)]
struct Exotel {
    requests: Arc<Mutex<Vec<Received>>>,
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:{API_TOKEN}"))
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

/// Local stand-in for Exotel's Calls/connect.
async fn connect(
    State(ex): State<Exotel>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, axum::Json<Value>) {
    if !authorized(&headers) || sid != SID {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"RestException": {"Status": 401, "Message": "Authentication is required"}}),
            ),
        );
    }
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap();
    let mut reqs = ex.requests.lock().unwrap();
    let call_sid = format!("callsid{:04}", reqs.len() + 1);
    let answer = json!({"Call": {"Sid": call_sid, "AccountSid": SID, "From": form["From"],
        "To": form["To"], "PhoneNumberSid": form["CallerId"], "Status": "in-progress",
        "Direction": "outbound-api"}});
    reqs.push(("call".into(), form));
    (StatusCode::OK, axum::Json(answer))
}

/// Local stand-in for Exotel's Sms/send.
async fn sms(
    State(ex): State<Exotel>,
    Path(_sid): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, axum::Json<Value>) {
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({})));
    }
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap();
    let answer = json!({"SMSMessage": {"Sid": "smssid0001", "From": form["From"], "To": form["To"],
        "Body": form["Body"], "Status": "queued"}});
    ex.requests.lock().unwrap().push(("sms".into(), form));
    (StatusCode::OK, axum::Json(answer))
}

async fn stand_in() -> (String, Exotel) {
    let ex = Exotel::default();
    let app = axum::Router::new()
        .route("/v1/Accounts/{sid}/Calls/connect", post(connect))
        .route("/v1/Accounts/{sid}/Sms/send", post(sms))
        .with_state(ex.clone());
    let (base, _) = serve(app).await;
    (base, ex)
}

fn exotel_env(env: &mut HashMap<String, String>, base: &str) {
    webhook_env(env);
    for (k, v) in [
        ("EXOTEL_API_KEY", API_KEY),
        ("EXOTEL_API_TOKEN", API_TOKEN),
        ("EXOTEL_SID", SID),
        ("EXOTEL_CALLER_ID", "08047000000"),
        ("EXOTEL_SUBDOMAIN", "api.in.exotel.com"),
        ("EXOTEL_BASE_URL", base),
        ("BACKEND_PUBLIC_URL", "https://api.mas.example.com"),
    ] {
        env.insert(k.into(), v.into());
    }
}

async fn new_lead(app: &TestApp, token: &str, phone: &str) -> String {
    let (status, body) = app
        .call(
            Method::POST,
            "/api/crm/leads",
            Some(token),
            Some(json!({"name": "Asha", "phone": phone, "source": "webinar"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().unwrap().to_string()
}

#[sqlx::test(migrations = false)]
async fn leads_are_visible_to_their_assignee_only(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let sales = create_user(&app.state, Role::Sales).await;
    let other_sales = create_user(&app.state, Role::Sales).await;
    let student = create_user(&app.state, Role::Student).await.token;
    let admin = create_user(&app.state, Role::Admin).await.token;
    let lead = new_lead(&app, &sales.token, "+919900000001").await;

    let (status, _) = app
        .call(Method::GET, "/api/crm/leads", Some(&student), None)
        .await;
    assert_eq!(status, 403);
    let path = format!("/api/crm/leads/{lead}");
    let (status, _) = app
        .call(Method::GET, &path, Some(&other_sales.token), None)
        .await;
    assert_eq!(status, 404);
    for (method, sub, body) in [
        (Method::POST, "/call", None),
        (Method::PUT, "/status", Some(json!({"status": "contacted"}))),
        (Method::POST, "/notes", Some(json!({"body": "hi"}))),
    ] {
        let (status, res) = app
            .call(
                method,
                &format!("{path}{sub}"),
                Some(&other_sales.token),
                body,
            )
            .await;
        assert_eq!(status, 404, "{sub}: {res}");
    }
    let (_, list) = app
        .call(
            Method::GET,
            "/api/crm/leads",
            Some(&other_sales.token),
            None,
        )
        .await;
    assert_eq!(list["data"]["items"], json!([]), "{list}");

    // The owner works it; a bad phone or status is refused.
    let (status, _) = app
        .call(
            Method::POST,
            "/api/crm/leads",
            Some(&sales.token),
            Some(json!({"name": "X", "phone": "9900000001"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, res) = app
        .call(
            Method::PUT,
            &format!("{path}/status"),
            Some(&sales.token),
            Some(json!({"status": "qualified"})),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("{path}/status"),
            Some(&sales.token),
            Some(json!({"status": "maybe"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .call(
            Method::POST,
            &format!("{path}/notes"),
            Some(&sales.token),
            Some(json!({"body": "wants the weekend batch"})),
        )
        .await;
    assert_eq!(status, 201);

    // Without Exotel, calling hands out a tel: link and logs it; SMS is disabled.
    let (status, res) = app
        .call(
            Method::POST,
            &format!("{path}/call"),
            Some(&sales.token),
            None,
        )
        .await;
    assert_eq!(status, 201, "{res}");
    assert_eq!(res["data"]["mode"], "tel");
    assert_eq!(res["data"]["telUrl"], "tel:+919900000001");
    let (status, res) = app
        .call(
            Method::POST,
            &format!("{path}/sms"),
            Some(&sales.token),
            Some(json!({"body": "hello"})),
        )
        .await;
    assert_eq!(status, 503, "{res}");
    assert_eq!(res["error"]["code"], "INTEGRATION_DISABLED");

    // An admin reassigns it: now the other sales user sees it and the first does not.
    let (status, res) = app
        .call(
            Method::PUT,
            &format!("{path}/assignee"),
            Some(&admin),
            Some(json!({"assignedTo": other_sales.id})),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    let (status, detail) = app
        .call(Method::GET, &path, Some(&other_sales.token), None)
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["data"]["lead"]["status"], "qualified", "{detail}");
    let (status, _) = app.call(Method::GET, &path, Some(&sales.token), None).await;
    assert_eq!(status, 404);
}

#[sqlx::test(migrations = false)]
async fn click_to_call_through_exotel_and_the_status_callback(db: PgPool) {
    let (base, ex) = stand_in().await;
    let (app, prefix) = qs::spawn(db, |env| exotel_env(env, &base)).await;
    let sales = create_user(&app.state, Role::Sales).await;
    let lead = new_lead(&app, &sales.token, "+919900000002").await;
    let call = format!("/api/crm/leads/{lead}/call");

    // Exotel rings the agent first: without a phone of their own, 400.
    let (status, res) = app
        .call(Method::POST, &call, Some(&sales.token), None)
        .await;
    assert_eq!(status, 400, "{res}");
    let (status, _) = app
        .call(
            Method::PUT,
            "/api/profile/phone",
            Some(&sales.token),
            Some(json!({"phone": "+919800000009"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, res) = app
        .call(Method::POST, &call, Some(&sales.token), None)
        .await;
    assert_eq!(status, 201, "{res}");
    assert_eq!(res["data"]["mode"], "exotel");
    assert_eq!(res["data"]["call"]["callSid"], "callsid0001");
    assert_eq!(res["data"]["call"]["status"], "in-progress");
    let call_id = res["data"]["call"]["id"].as_str().unwrap().to_string();
    {
        let reqs = ex.requests.lock().unwrap();
        let (_, form) = &reqs[0];
        assert_eq!(form["From"], "+919800000009");
        assert_eq!(form["To"], "+919900000002");
        assert_eq!(form["CallerId"], "08047000000");
        assert_eq!(form["CustomField"], call_id);
        assert_eq!(
            form["StatusCallback"],
            format!("https://api.mas.example.com/api/exotel/status?token={EXOTEL_TOKEN}")
        );
    }

    // Exotel's terminal callback (JSON, as StatusCallbackContentType asked).
    let callback = json!({"CallSid": "callsid0001", "EventType": "terminal", "Status": "completed",
        "RecordingUrl": "https://recordings.exotel.com/callsid0001.mp3",
        "ConversationDuration": 73, "CustomField": call_id})
    .to_string()
    .into_bytes();
    let (status, res) = post_raw(
        &app,
        &format!("/api/exotel/status?token={EXOTEL_TOKEN}"),
        "application/json",
        &[],
        callback,
    )
    .await;
    assert_eq!(status, 200, "{res}");
    let db = app.state.db.clone();
    let (status_text, duration, recording) = wait_for(
        "the call log to be completed",
        Duration::from_secs(20),
        || {
            let db = db.clone();
            async move {
                let row: (String, Option<i32>, Option<String>) = sqlx::query_as(
                    "select status, duration_seconds, recording_url from call_logs where call_sid = 'callsid0001'",
                )
                .fetch_one(&db)
                .await
                .ok()?;
                (row.0 == "completed").then_some(row)
            }
        },
    )
    .await;
    assert_eq!(status_text, "completed");
    assert_eq!(duration, Some(73));
    assert_eq!(
        recording.as_deref(),
        Some("https://recordings.exotel.com/callsid0001.mp3")
    );

    // SMS from the ExoPhone.
    let (status, res) = app
        .call(
            Method::POST,
            &format!("/api/crm/leads/{lead}/sms"),
            Some(&sales.token),
            Some(json!({"body": "Your demo class is at 6 pm"})),
        )
        .await;
    assert_eq!(status, 201, "{res}");
    assert_eq!(res["data"]["sid"], "smssid0001");
    {
        let reqs = ex.requests.lock().unwrap();
        let (kind, form) = &reqs[1];
        assert_eq!(kind, "sms");
        assert_eq!(form["To"], "+919900000002");
        assert_eq!(form["Body"], "Your demo class is at 6 pm");
    }
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
