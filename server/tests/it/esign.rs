//! Leegality eSign of the PAP agreement end to end, against a local server speaking the
//! Leegality Document Execution API (Leegality cannot be reached from here) and moto's S3:
//! the signing request, the signed webhook, the signed PDF fetched and kept in the
//! documents bucket, and its download by the student.
//!
//! Contracts the stand-in follows (https://knowledge.leegality.com):
//! - `POST /v3.0/sign/request` with `X-Auth-Token`, body `{profileId, file: {name},
//!   invitees: [{name, email, phone}], irn}` → `{status: 1, messages: [], data:
//!   {documentId, irn, invitees: [{name, email, phone, signUrl, expiryDate, active}]}}`
//!   (…/document-execution/api/create-an-e-signing-request); a refused token answers
//!   `{status: 0, messages: [{code, message}]}`;
//! - `GET /v3.3/document/fetchDocument?documentId=…&documentDownloadType=DOCUMENT` with
//!   `X-Auth-Token` → the signed PDF (…/document-execution/api/fetch-document);
//! - webhooks: JSON with `documentId`, `webhookType`, `documentStatus`, the invitee and
//!   `mac` = hex HMAC-SHA1(documentId, private salt)
//!   (…/api/webhooks/webhook-configuration, …/api/webhooks/verify-webhook-request).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mas_server::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::queues as qs;
use crate::support::standin::serve;
use crate::support::wait::wait_for;
use crate::support::{TestApp, create_user};
use crate::webhooks::{LEEGALITY_SALT, hmac_sha1_hex, post_raw, webhook_env};

const AUTH_TOKEN: &str = "leegality-auth-token-standin";
const PROFILE_ID: &str = "PAPWORKFLOW1";
const DOCUMENT_ID: &str = "LGDOC0001";
const SIGNED_PDF: &[u8] = b"%PDF-1.4\n% signed PAP agreement (stand-in)\n%%EOF\n";

#[derive(Clone, Default)]
struct Leegality {
    requests: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<Mutex<Vec<String>>>,
}

fn token_ok(headers: &HeaderMap) -> bool {
    headers.get("x-auth-token").and_then(|v| v.to_str().ok()) == Some(AUTH_TOKEN)
}

async fn sign_request(
    State(l): State<Leegality>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    if !token_ok(&headers) {
        return axum::Json(json!({"status": 0, "data": null,
            "messages": [{"code": "auth.token.invalid", "message": "Invalid auth token."}]}));
    }
    l.requests.lock().unwrap().push(body.clone());
    let invitee = &body["invitees"][0];
    axum::Json(json!({"status": 1, "messages": [], "data": {
        "documentId": DOCUMENT_ID, "irn": body["irn"],
        "invitees": [{"name": invitee["name"], "email": invitee["email"],
            "phone": invitee["phone"], "signUrl": format!("https://sign.leegality.test/{DOCUMENT_ID}"),
            "expiryDate": "2026-12-31T23:59:59Z", "active": true}]}}))
}

async fn fetch_document(
    State(l): State<Leegality>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if !token_ok(&headers) || q.get("documentDownloadType").map(String::as_str) != Some("DOCUMENT")
    {
        return (StatusCode::UNAUTHORIZED, "refused").into_response();
    }
    let id = q.get("documentId").cloned().unwrap_or_default();
    l.fetches.lock().unwrap().push(id.clone());
    if id != DOCUMENT_ID {
        return (StatusCode::NOT_FOUND, "no such document").into_response();
    }
    ([("content-type", "application/pdf")], SIGNED_PDF).into_response()
}

async fn webhook(app: &TestApp, payload: Value) -> u16 {
    post_raw(
        app,
        "/api/webhooks/leegality",
        "application/json",
        &[],
        payload.to_string().into_bytes(),
    )
    .await
    .0
}

fn event(kind: &str, status: &str, mac: &str) -> Value {
    json!({"documentId": DOCUMENT_ID, "irn": null, "webhookType": kind,
        "documentStatus": status, "mac": mac,
        "request": {"name": "Student", "email": "student@e2e.test", "action": "SIGN"}})
}

async fn state_of(app: &TestApp, token: &str) -> Value {
    let (status, body) = app
        .call(Method::GET, "/api/esign/pap", Some(token), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

#[sqlx::test(migrations = false)]
async fn the_pap_agreement_is_signed_and_its_pdf_kept_and_downloadable(db: PgPool) {
    let l = Leegality::default();
    let router = axum::Router::new()
        .route("/v3.0/sign/request", post(sign_request))
        .route("/v3.3/document/fetchDocument", get(fetch_document))
        .with_state(l.clone());
    let (base, _) = serve(router).await;
    let bucket = format!("docs-{}", &Uuid::new_v4().simple().to_string()[..10]);
    let (app, prefix) = qs::spawn(db, |env| {
        webhook_env(env);
        env.insert("LEEGALITY_AUTH_TOKEN".into(), AUTH_TOKEN.into());
        env.insert("LEEGALITY_PAP_PROFILE_ID".into(), PROFILE_ID.into());
        env.insert("LEEGALITY_BASE_URL".into(), base);
        env.insert("S3_DOCUMENTS_BUCKET".into(), bucket.clone());
        env.insert(
            "S3_ENDPOINT".into(),
            std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL"),
        );
    })
    .await;
    let storage = app.state.storage().await.unwrap();
    storage
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let student = create_user(&app.state, Role::Student).await;
    app.call(
        Method::PUT,
        "/api/profile/phone",
        Some(&student.token),
        Some(json!({"phone": "+919900000011"})),
    )
    .await;

    // The request goes out with the workflow, the student as invitee and our id as irn.
    let (status, body) = app
        .call(Method::POST, "/api/esign/pap", Some(&student.token), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let request = &body["data"];
    assert_eq!(request["status"], "sent");
    assert_eq!(request["documentId"], DOCUMENT_ID);
    assert_eq!(
        request["signUrl"],
        format!("https://sign.leegality.test/{DOCUMENT_ID}")
    );
    {
        let sent = l.requests.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["profileId"], PROFILE_ID);
        assert_eq!(sent[0]["file"]["name"], "PAP Agreement");
        assert_eq!(sent[0]["invitees"][0]["phone"], "919900000011");
        assert_eq!(sent[0]["irn"], request["id"]);
    }
    let (status, _) = app
        .call(Method::POST, "/api/esign/pap", Some(&student.token), None)
        .await;
    assert_eq!(status, 409, "one open request at a time");
    let (status, _) = app
        .call(
            Method::GET,
            "/api/esign/pap/document",
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(status, 404, "nothing signed yet");

    // A forged mac is refused and changes nothing.
    let mac = hmac_sha1_hex(LEEGALITY_SALT, DOCUMENT_ID.as_bytes());
    assert_eq!(
        webhook(&app, event("SUCCESS", "COMPLETED", &"0".repeat(40))).await,
        401
    );
    // A progress event is recorded; the request stays sent.
    assert_eq!(webhook(&app, event("SIGNED", "PENDING", &mac)).await, 200);
    let db = app.state.db.clone();
    wait_for("the progress event", Duration::from_secs(20), || {
        let db = db.clone();
        async move {
            let last: Option<String> =
                sqlx::query_scalar("select last_event from esign_requests where document_id = $1")
                    .bind(DOCUMENT_ID)
                    .fetch_one(&db)
                    .await
                    .ok()?;
            (last.as_deref() == Some("SIGNED")).then_some(())
        }
    })
    .await;
    assert_eq!(state_of(&app, &student.token).await["status"], "sent");

    // Completion: the signed PDF is fetched from Leegality and kept in the documents bucket.
    assert_eq!(
        webhook(&app, event("SUCCESS", "COMPLETED", &mac)).await,
        200
    );
    let done = wait_for("the agreement completed", Duration::from_secs(30), || {
        let app = &app;
        let token = student.token.clone();
        async move {
            let s = state_of(app, &token).await;
            (s["status"] == "completed" && s["hasSignedDocument"] == true).then_some(s)
        }
    })
    .await;
    assert!(done["completedAt"].is_string());
    assert_eq!(*l.fetches.lock().unwrap(), vec![DOCUMENT_ID.to_string()]);
    let (status, body) = app
        .call(
            Method::GET,
            "/api/esign/pap/document",
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let url = body["data"]["downloadUrl"].as_str().unwrap();
    let pdf = reqwest::get(url).await.unwrap();
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.bytes().await.unwrap().as_ref(), SIGNED_PDF);

    // A late rejection does not undo the completion; another student has nothing.
    assert_eq!(
        webhook(&app, event("REJECTED", "REJECTED", &mac)).await,
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(state_of(&app, &student.token).await["status"], "completed");
    let other = create_user(&app.state, Role::Student).await;
    let (status, _) = app
        .call(
            Method::GET,
            "/api/esign/pap/document",
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
