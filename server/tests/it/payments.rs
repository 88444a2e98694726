//! Payments through Razorpay, with a local stand-in for Razorpay's Orders API
//! (Razorpay cannot be reached from here): amount from the catalogue, checkout
//! signature, capture → enrollment exactly once whatever order the events arrive in,
//! fail-closed without keys, no enumeration of other users' payments, and the
//! invoice PDF archived in the invoice bucket (moto) and mailed (aiosmtpd).
//!
//! Contracts the stand-in and the signed events follow:
//! - Orders API `POST /v1/orders`, HTTP basic auth `key_id:key_secret`, body `{amount,
//!   currency, receipt, notes}` → the order entity `{id: "order_…", entity: "order",
//!   amount, amount_paid, amount_due, currency, receipt, status: "created", attempts,
//!   notes, created_at}`: https://razorpay.com/docs/api/orders/create/
//! - Checkout: `razorpay_signature` = hex HMAC-SHA256(`order_id|payment_id`, key
//!   secret): https://razorpay.com/docs/payments/payment-gateway/web-integration/standard/build-integration/#verify-payment-signature
//! - Webhook events `{entity: "event", event: "payment.captured", payload: {payment:
//!   {entity: {id, amount, currency, status, order_id}}}}`:
//!   https://razorpay.com/docs/webhooks/payloads/payments/
//! - Refunds API `POST /v1/payments/{id}/refund`, basic auth, body `{amount, receipt}` → the
//!   refund entity `{id: "rfnd_…", entity: "refund", amount, currency, payment_id, receipt,
//!   status: "pending" | "processed", speed_requested, …}`, errors as `{error: {code,
//!   description}}`: https://razorpay.com/docs/api/refunds/create-normal/ ; the
//!   `refund.processed` event carries `payload.refund.entity` and `payload.payment.entity`:
//!   https://razorpay.com/docs/webhooks/payloads/refunds/

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use mas_server::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::queues as qs;
use crate::support::services::{self, mail_dir};
use crate::support::standin::serve;
use crate::support::wait::wait_for;
use crate::support::{TestApp, create_user};
use crate::webhooks::{hmac_sha256_hex, razorpay_webhook, webhook_env};

const KEY_ID: &str = "rzp_test_standin";
const KEY_SECRET: &str = "rzp-key-secret-standin";

#[derive(Clone, Default)]
struct Razorpay {
    orders: Arc<Mutex<Vec<Value>>>,
    /// (payment id, request body) of every refund request.
    refunds: Arc<Mutex<Vec<(String, Value)>>>,
    /// Answer refund requests with Razorpay's 400 error.
    refuse_refunds: Arc<AtomicBool>,
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{KEY_ID}:{KEY_SECRET}"))
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

/// Local stand-in for Razorpay's Refunds API (`POST /v1/payments/{id}/refund`); refunds
/// stay `pending` (the `refund.processed` webhook completes them).
async fn create_refund(
    State(rp): State<Razorpay>,
    axum::extract::Path(payment): axum::extract::Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> (StatusCode, axum::Json<Value>) {
    if !authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"code": "BAD_REQUEST_ERROR",
                "description": "Authentication failed"}})),
        );
    }
    let mut refunds = rp.refunds.lock().unwrap();
    refunds.push((payment.clone(), body.clone()));
    if rp.refuse_refunds.load(Ordering::SeqCst) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"code": "BAD_REQUEST_ERROR",
                "description": "The refund amount provided is greater than amount captured."}})),
        );
    }
    let refund = json!({
        "id": format!("rfnd_{:014}", refunds.len()), "entity": "refund",
        "amount": body["amount"], "currency": "INR", "payment_id": payment, "notes": {},
        "receipt": body["receipt"], "acquirer_data": {"arn": null}, "created_at": 1_700_000_200,
        "batch_id": null, "status": "pending", "speed_processed": "normal",
        "speed_requested": "normal"
    });
    (StatusCode::OK, axum::Json(refund))
}

/// Local stand-in for Razorpay's Orders API (`POST /v1/orders`).
async fn create_order(
    State(rp): State<Razorpay>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> (StatusCode, axum::Json<Value>) {
    if !authorized(&headers) {
        // Razorpay's 401 body shape.
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"code": "BAD_REQUEST_ERROR",
                "description": "Authentication failed"}})),
        );
    }
    let mut orders = rp.orders.lock().unwrap();
    let id = format!("order_{:014}", orders.len() + 1);
    let order = json!({
        "id": id, "entity": "order", "amount": body["amount"], "amount_paid": 0,
        "amount_due": body["amount"], "currency": body["currency"], "receipt": body["receipt"],
        "offer_id": null, "status": "created", "attempts": 0, "notes": body["notes"],
        "created_at": 1_700_000_000
    });
    orders.push(body);
    (StatusCode::OK, axum::Json(order))
}

async fn stand_in() -> (String, Razorpay) {
    let rp = Razorpay::default();
    let app = axum::Router::new()
        .route("/v1/orders", post(create_order))
        .route("/v1/payments/{id}/refund", post(create_refund))
        .with_state(rp.clone());
    let (base, _) = serve(app).await;
    (base, rp)
}

fn razorpay_env(env: &mut std::collections::HashMap<String, String>, base: &str) {
    webhook_env(env);
    env.insert("RAZORPAY_KEY_ID".into(), KEY_ID.into());
    env.insert("RAZORPAY_KEY_SECRET".into(), KEY_SECRET.into());
    env.insert("RAZORPAY_BASE_URL".into(), base.into());
}

async fn course(db: &PgPool, price: Option<i64>) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into courses (id, slug, title, price_paise) values ($1, $2, 'Data Analytics', $3)",
    )
    .bind(id)
    .bind(format!("c-{}", id.simple()))
    .bind(price)
    .execute(db)
    .await
    .unwrap();
    id
}

fn captured_event(event: &str, order: &str, payment: &str, amount: i64) -> Vec<u8> {
    json!({
        "entity": "event", "account_id": "acc_standin", "event": event,
        "contains": ["payment"],
        "payload": {"payment": {"entity": {
            "id": payment, "entity": "payment", "amount": amount, "currency": "INR",
            "status": if event == "payment.captured" { "captured" } else { "authorized" },
            "order_id": order, "method": "upi", "captured": event == "payment.captured"
        }}},
        "created_at": 1_700_000_100
    })
    .to_string()
    .into_bytes()
}

async fn enrollments(db: &PgPool, user: Uuid, course: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from enrollments where user_id = $1 and course_id = $2")
        .bind(user)
        .bind(course)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn status_of(db: &PgPool, order: &str) -> String {
    sqlx::query_scalar("select status from payments where razorpay_order_id = $1")
        .bind(order)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn wait_status(db: &PgPool, order: &str, want: &str) {
    wait_for(
        &format!("payment {order} {want}"),
        Duration::from_secs(20),
        || async move { (status_of(db, order).await == want).then_some(()) },
    )
    .await;
}

#[sqlx::test(migrations = false)]
async fn payments_fail_closed_without_razorpay_keys(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let c = course(&app.state.db, Some(49_900)).await;
    let student = create_user(&app.state, Role::Student).await.token;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/payments/orders",
            Some(&student),
            Some(json!({"courseId": c})),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "INTEGRATION_DISABLED");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("RAZORPAY_KEY_ID")
    );
    let sig = "0".repeat(64);
    let (status, _) = app
        .call(
            Method::POST,
            "/api/payments/verify",
            Some(&student),
            Some(
                json!({"razorpay_order_id": "order_1", "razorpay_payment_id": "pay_1",
                        "razorpay_signature": sig}),
            ),
        )
        .await;
    assert_eq!(status, 503);
}

#[sqlx::test(migrations = false)]
async fn order_amount_comes_from_the_catalogue(db: PgPool) {
    let (base, rp) = stand_in().await;
    let app = TestApp::spawn_with(db, |env| razorpay_env(env, &base)).await;
    let priced = course(&app.state.db, Some(49_900)).await;
    let free = course(&app.state.db, None).await;
    let student = create_user(&app.state, Role::Student).await;
    let path = "/api/payments/orders";

    // A client-supplied amount is refused, not used.
    let (status, body) = app
        .call(
            Method::POST,
            path,
            Some(&student.token),
            Some(json!({"courseId": priced, "amount": 100})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app
        .call(
            Method::POST,
            path,
            Some(&student.token),
            Some(json!({"courseId": free})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .call(
            Method::POST,
            path,
            Some(&student.token),
            Some(json!({"courseId": Uuid::new_v4()})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(
            Method::POST,
            path,
            Some(&student.token),
            Some(json!({"courseId": priced, "batchId": Uuid::new_v4()})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(rp.orders.lock().unwrap().is_empty());
    // Not a student.
    let mentor = create_user(&app.state, Role::Mentor).await.token;
    let (status, _) = app
        .call(
            Method::POST,
            path,
            Some(&mentor),
            Some(json!({"courseId": priced})),
        )
        .await;
    assert_eq!(status, 403);

    let (status, body) = app
        .call(
            Method::POST,
            path,
            Some(&student.token),
            Some(json!({"courseId": priced})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let data = &body["data"];
    assert_eq!(data["amountPaise"], 49_900);
    assert_eq!(data["currency"], "INR");
    assert_eq!(data["keyId"], KEY_ID);
    assert_eq!(data["payment"]["status"], "created");
    let sent = rp.orders.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["amount"], 49_900);
    assert_eq!(sent[0]["currency"], "INR");
    let stored: i64 =
        sqlx::query_scalar("select amount_paise from payments where razorpay_order_id = $1")
            .bind(data["razorpayOrderId"].as_str().unwrap())
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(stored, 49_900);

    // Others cannot see it: 404 by id, absent from their list; the owner sees it.
    let pid = data["payment"]["id"].as_str().unwrap();
    let other = create_user(&app.state, Role::Student).await.token;
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/payments/{pid}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/payments/{pid}/invoice"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (_, list) = app
        .call(Method::GET, "/api/payments", Some(&other), None)
        .await;
    assert_eq!(list["data"]["items"], json!([]), "{list}");
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/payments/{pid}"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // The admin listing is for admins.
    let (status, _) = app
        .call(
            Method::GET,
            "/api/admin/payments",
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(status, 403);
}

#[sqlx::test(migrations = false)]
async fn checkout_signature_then_capture_enrolls_exactly_once(db: PgPool) {
    let (base, _rp) = stand_in().await;
    let (app, prefix) = qs::spawn(db, |env| razorpay_env(env, &base)).await;
    let db = app.state.db.clone();
    let c = course(&db, Some(120_000)).await;
    let student = create_user(&app.state, Role::Student).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/payments/orders",
            Some(&student.token),
            Some(json!({"courseId": c})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let order = body["data"]["razorpayOrderId"]
        .as_str()
        .unwrap()
        .to_string();
    let verify = |order: &str, payment: &str, sig: &str| {
        json!({"razorpay_order_id": order, "razorpay_payment_id": payment,
               "razorpay_signature": sig})
    };

    // A signature over another payment id, or with another key, is refused.
    let wrong = hmac_sha256_hex(KEY_SECRET, format!("{order}|pay_other").as_bytes());
    let (status, _) = app
        .call(
            Method::POST,
            "/api/payments/verify",
            Some(&student.token),
            Some(verify(&order, "pay_A1", &wrong)),
        )
        .await;
    assert_eq!(status, 400);
    let good = hmac_sha256_hex(KEY_SECRET, format!("{order}|pay_A1").as_bytes());
    // Someone else's order, even with its valid signature: 404.
    let other = create_user(&app.state, Role::Student).await.token;
    let (status, _) = app
        .call(
            Method::POST,
            "/api/payments/verify",
            Some(&other),
            Some(verify(&order, "pay_A1", &good)),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(status_of(&db, &order).await, "created");

    let (status, body) = app
        .call(
            Method::POST,
            "/api/payments/verify",
            Some(&student.token),
            Some(verify(&order, "pay_A1", &good)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "authorized");
    assert_eq!(enrollments(&db, student.id, c).await, 0);

    // A capture event with a tampered amount is not applied.
    let (status, _) = razorpay_webhook(
        &app,
        "evt_bad_amount",
        &captured_event("payment.captured", &order, "pay_A1", 100),
    )
    .await;
    assert_eq!(status, 200);
    wait_for(
        "the tampered event to fail",
        Duration::from_secs(20),
        || {
            let db = db.clone();
            async move {
                let err: Option<String> = sqlx::query_scalar(
                    "select last_error from webhook_events where event_id = 'evt_bad_amount'",
                )
                .fetch_one(&db)
                .await
                .ok()?;
                err
            }
        },
    )
    .await;
    assert_eq!(status_of(&db, &order).await, "authorized");

    // The real capture, redelivered, plus order.paid for the same payment.
    let capture = captured_event("payment.captured", &order, "pay_A1", 120_000);
    for _ in 0..2 {
        let (status, _) = razorpay_webhook(&app, "evt_capture", &capture).await;
        assert_eq!(status, 200);
    }
    wait_status(&db, &order, "captured").await;
    let paid = json!({"entity": "event", "event": "order.paid",
        "payload": {"payment": {"entity": {"id": "pay_A1", "amount": 120_000, "currency": "INR",
                                           "order_id": order}},
                    "order": {"entity": {"id": order, "amount_paid": 120_000, "currency": "INR"}}}})
    .to_string()
    .into_bytes();
    razorpay_webhook(&app, "evt_paid", &paid).await;
    wait_for("order.paid processed", Duration::from_secs(20), || {
        let db = db.clone();
        async move {
            let done: bool = sqlx::query_scalar(
                "select processed_at is not null from webhook_events where event_id = 'evt_paid'",
            )
            .fetch_one(&db)
            .await
            .ok()?;
            done.then_some(())
        }
    })
    .await;
    assert_eq!(enrollments(&db, student.id, c).await, 1);
    // A late authorized event does not move it back; verifying again changes nothing.
    razorpay_webhook(
        &app,
        "evt_late_auth",
        &captured_event("payment.authorized", &order, "pay_A1", 120_000),
    )
    .await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/payments/verify",
            Some(&student.token),
            Some(verify(&order, "pay_A1", &good)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "captured");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status_of(&db, &order).await, "captured");
    assert_eq!(enrollments(&db, student.id, c).await, 1);
    // Enrolled: a second order for the same course is refused.
    let (status, _) = app
        .call(
            Method::POST,
            "/api/payments/orders",
            Some(&student.token),
            Some(json!({"courseId": c})),
        )
        .await;
    assert_eq!(status, 409);
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

/// Capture arrives before the checkout verification, while no worker runs; a worker
/// started later applies it once.
#[sqlx::test(migrations = false)]
async fn a_capture_webhook_waits_for_a_worker_and_beats_verification(db: PgPool) {
    let (base, _rp) = stand_in().await;
    let prefix = qs::unique_prefix();
    let p = prefix.clone();
    let b = base.clone();
    // API only: the webhook is stored and queued, nothing applies it yet.
    let api = TestApp::spawn_with(db.clone(), move |env| {
        qs::queue_env(env, &p);
        env.insert("PROCESS_ROLE".into(), "api".into());
        razorpay_env(env, &b);
    })
    .await;
    let c = course(&db, Some(99_900)).await;
    let student = create_user(&api.state, Role::Student).await;
    let (_, body) = api
        .call(
            Method::POST,
            "/api/payments/orders",
            Some(&student.token),
            Some(json!({"courseId": c})),
        )
        .await;
    let order = body["data"]["razorpayOrderId"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = razorpay_webhook(
        &api,
        "evt_early",
        &captured_event("payment.captured", &order, "pay_B1", 99_900),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(status_of(&db, &order).await, "created");

    let p = prefix.clone();
    let workers = TestApp::spawn_with(db.clone(), move |env| {
        qs::queue_env(env, &p);
        env.insert("PROCESS_ROLE".into(), "workers".into());
        razorpay_env(env, &base);
    })
    .await;
    wait_status(&db, &order, "captured").await;
    assert_eq!(enrollments(&db, student.id, c).await, 1);
    // The verification arriving afterwards is accepted and changes nothing.
    let sig = hmac_sha256_hex(KEY_SECRET, format!("{order}|pay_B1").as_bytes());
    let (status, body) = api
        .call(
            Method::POST,
            "/api/payments/verify",
            Some(&student.token),
            Some(
                json!({"razorpay_order_id": order, "razorpay_payment_id": "pay_B1",
                        "razorpay_signature": sig}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "captured");
    assert_eq!(enrollments(&db, student.id, c).await, 1);
    workers.shutdown().await.unwrap();
    api.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

/// The invoice: PDF archived in the invoice bucket (moto), read back through the
/// short-lived signed GET, and mailed (aiosmtpd); its text (pdftotext) matches the order.
#[sqlx::test(migrations = false)]
async fn captured_payment_gets_an_archived_and_mailed_invoice(db: PgPool) {
    mail_dir();
    let (base, _rp) = stand_in().await;
    let bucket = format!("invoices-{}", &Uuid::new_v4().simple().to_string()[..12]);
    let b = bucket.clone();
    let (app, prefix) = qs::spawn(db, move |env| {
        razorpay_env(env, &base);
        services::smtp_env(env);
        env.insert("SMTP_FROM".into(), "MAS <no-reply@test.local>".into());
        env.insert("S3_INVOICES_BUCKET".into(), b);
        env.insert(
            "S3_ENDPOINT".into(),
            std::env::var("AWS_ENDPOINT_URL").unwrap(),
        );
        env.insert("S3_PRIVATE_GET_TTL_SECONDS".into(), "120".into());
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
    let db = app.state.db.clone();
    let c = course(&db, Some(250_050)).await;
    let student = create_user(&app.state, Role::Student).await;
    let (_, body) = app
        .call(
            Method::POST,
            "/api/payments/orders",
            Some(&student.token),
            Some(json!({"courseId": c})),
        )
        .await;
    let order = body["data"]["razorpayOrderId"]
        .as_str()
        .unwrap()
        .to_string();
    let pid = body["data"]["payment"]["id"].as_str().unwrap().to_string();
    razorpay_webhook(
        &app,
        "evt_inv",
        &captured_event("payment.captured", &order, "pay_C1", 250_050),
    )
    .await;
    let email = student.email.clone();
    let mail = wait_for("the invoice mail", Duration::from_secs(30), || {
        let email = email.clone();
        async move {
            let dir = mail_dir().join("new");
            std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
                let text = std::fs::read_to_string(e.path()).ok()?;
                (text.contains(&email) && text.contains("application/pdf")).then_some(e.path())
            })
        }
    })
    .await;
    // Python's email package parses the MIME message and writes the attachment out.
    let pdf_path = std::env::temp_dir().join(format!("invoice-{pid}.pdf"));
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import email,sys\nm=email.message_from_binary_file(open(sys.argv[1],'rb'))\n\
             parts=[p for p in m.walk() if p.get_content_type()=='application/pdf']\n\
             assert len(parts)==1, len(parts)\nopen(sys.argv[2],'wb').write(parts[0].get_payload(decode=True))",
        ])
        .arg(&mail)
        .arg(&pdf_path)
        .status()
        .unwrap();
    assert!(status.success());
    let mailed = std::fs::read(&pdf_path).unwrap();
    assert!(mailed.starts_with(b"%PDF-"));
    let text = std::process::Command::new("pdftotext")
        .arg(&pdf_path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    for want in [
        "Invoice",
        "INR 2500.50",
        "Data Analytics",
        &order,
        "pay_C1",
        &student.email,
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    let number: String =
        sqlx::query_scalar("select invoice_number from payments where id = $1::uuid")
            .bind(&pid)
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(text.contains(&number), "{number} in {text}");

    // Archived: the owner gets a signed GET of the same bytes; others a 404.
    let link = wait_for("the archived invoice", Duration::from_secs(20), || {
        let (app, pid, token) = (&app, pid.clone(), student.token.clone());
        async move {
            let (status, body) = app
                .call(
                    Method::GET,
                    &format!("/api/payments/{pid}/invoice"),
                    Some(&token),
                    None,
                )
                .await;
            (status == 200).then_some(body)
        }
    })
    .await;
    let url = link["data"]["downloadUrl"].as_str().unwrap();
    assert!(url.contains("X-Amz-Expires=120"), "{url}");
    assert!(url.contains(&bucket), "{url}");
    let archived = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert_eq!(archived.as_ref(), mailed.as_slice());
    let _ = std::fs::remove_file(&pdf_path);
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

/// An admin refunds a captured payment through Razorpay's Refunds API: a refused refund
/// changes nothing and can be retried, an accepted one is pending until `refund.processed`
/// arrives, which marks the payment refunded and removes the enrollment; students cannot
/// refund and a payment is refunded once.
#[sqlx::test(migrations = false)]
async fn admin_refund_goes_through_razorpay_and_completes_on_the_webhook(db: PgPool) {
    let (base, rp) = stand_in().await;
    let (app, prefix) = qs::spawn(db, |env| razorpay_env(env, &base)).await;
    let db = app.state.db.clone();
    let c = course(&db, Some(120_000)).await;
    let student = create_user(&app.state, Role::Student).await;
    let admin = create_user(&app.state, Role::Admin).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/payments/orders",
            Some(&student.token),
            Some(json!({"courseId": c})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let order = body["data"]["razorpayOrderId"]
        .as_str()
        .unwrap()
        .to_string();
    let payment: Uuid = sqlx::query_scalar("select id from payments where razorpay_order_id = $1")
        .bind(&order)
        .fetch_one(&db)
        .await
        .unwrap();
    let refund_path = format!("/api/admin/payments/{payment}/refund");

    // Not captured yet: nothing to refund, and Razorpay is not asked.
    let (status, _) = app
        .call(Method::POST, &refund_path, Some(&admin.token), None)
        .await;
    assert_eq!(status, 409);
    let capture = captured_event("payment.captured", &order, "pay_R1", 120_000);
    let (status, _) = razorpay_webhook(&app, "evt_r_capture", &capture).await;
    assert_eq!(status, 200);
    wait_status(&db, &order, "captured").await;
    assert_eq!(enrollments(&db, student.id, c).await, 1);

    let (status, _) = app
        .call(Method::POST, &refund_path, Some(&student.token), None)
        .await;
    assert_eq!(status, 403, "students cannot refund");

    // Razorpay refuses: the payment is unchanged and the refund can be asked again.
    rp.refuse_refunds.store(true, Ordering::SeqCst);
    let (status, body) = app
        .call(Method::POST, &refund_path, Some(&admin.token), None)
        .await;
    assert!(
        (400..600).contains(&status) && status != 500,
        "{status} {body}"
    );
    let requested: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select refund_requested_at from payments where id = $1")
            .bind(payment)
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(
        requested.is_none(),
        "a refused refund leaves no pending mark"
    );
    assert_eq!(status_of(&db, &order).await, "captured");

    // Accepted (pending at Razorpay): still captured, the refund id kept, not twice.
    rp.refuse_refunds.store(false, Ordering::SeqCst);
    let (status, body) = app
        .call(Method::POST, &refund_path, Some(&admin.token), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "captured");
    let (status, _) = app
        .call(Method::POST, &refund_path, Some(&admin.token), None)
        .await;
    assert_eq!(status, 409, "a pending refund is not asked again");
    {
        let refunds = rp.refunds.lock().unwrap();
        assert_eq!(refunds.len(), 2, "one refused, one accepted: {refunds:?}");
        for (paid, request) in refunds.iter() {
            assert_eq!(paid, "pay_R1");
            assert_eq!(request["amount"], 120_000, "the captured amount, in paise");
        }
    }
    let refund_id: Option<String> =
        sqlx::query_scalar("select razorpay_refund_id from payments where id = $1")
            .bind(payment)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(refund_id.as_deref(), Some("rfnd_00000000000002"));

    // refund.processed completes it: refunded, the enrollment gone.
    let processed = json!({
        "entity": "event", "account_id": "acc_standin", "event": "refund.processed",
        "contains": ["refund", "payment"],
        "payload": {
            "refund": {"entity": {"id": "rfnd_00000000000002", "entity": "refund",
                "amount": 120_000, "currency": "INR", "payment_id": "pay_R1",
                "status": "processed"}},
            "payment": {"entity": {"id": "pay_R1", "entity": "payment", "amount": 120_000,
                "currency": "INR", "status": "refunded", "order_id": order,
                "amount_refunded": 120_000, "refund_status": "full"}}
        },
        "created_at": 1_700_000_300
    })
    .to_string()
    .into_bytes();
    let (status, _) = razorpay_webhook(&app, "evt_r_refunded", &processed).await;
    assert_eq!(status, 200);
    wait_status(&db, &order, "refunded").await;
    assert_eq!(enrollments(&db, student.id, c).await, 0);
    let (status, body) = app
        .call(
            Method::GET,
            "/api/admin/payments?status=refunded",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["items"][0]["id"], payment.to_string());
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
