//! The integration mechanism: the registry behind `GET /api/admin/integrations` and
//! `INTEGRATION_DISABLED`, and the shared outbound HTTP policy.
//!
//! The policy is provider-agnostic, so its provider here is a stand-in: a local axum
//! server speaking a generic JSON API (each path answers what the test asks for) that
//! counts the requests reaching it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mas_server::auth::Role;
use mas_server::config::{Config, Secret};
use mas_server::error::AppError;
use mas_server::services::integrations::{
    HttpClient, HttpPolicy, IntegrationId, Integrations, OutboundError,
};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::app::{free_port, test_env};
use crate::support::standin::serve;
use crate::support::{TestApp, create_user, logs};

/// An API key the client knows as a secret (sent in a header).
const KEY: &str = "sk-live-header-secret-123";
/// A key sent in a query string and never registered as a secret: only keeping URLs
/// out of messages protects it.
const QUERY_KEY: &str = "query-secret-456";

// --- The stand-in provider -------------------------------------------------------

#[derive(Clone, Default)]
struct StandIn {
    /// Requests per "METHOD /path".
    hits: Arc<Mutex<HashMap<String, usize>>>,
    /// `/flaky` answers 200 when set, else 500.
    healthy: Arc<AtomicBool>,
    /// Where `/redirect` points.
    redirect_to: Arc<Mutex<String>>,
}

impl StandIn {
    fn hits(&self, method: &str, path: &str) -> usize {
        let hits = self.hits.lock().unwrap();
        hits.get(&format!("{method} {path}")).copied().unwrap_or(0)
    }
}

async fn answer(State(s): State<StandIn>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let n = {
        let mut hits = s.hits.lock().unwrap();
        let n = hits.entry(format!("{} {path}", req.method())).or_default();
        *n += 1;
        *n
    };
    let key = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ok = || Json(json!({"ok": true})).into_response();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["ok"] => ok(),
        // Echoes the key back, as some providers do in their error messages.
        ["status", code] => (
            StatusCode::from_u16(code.parse().unwrap()).unwrap(),
            Json(json!({"error": format!("rejected key {key}")})),
        )
            .into_response(),
        ["slow"] => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            ok()
        }
        ["throttled", secs] if n == 1 => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            Json(json!({"error": "slow down"})),
        )
            .into_response(),
        ["throttled", _] => ok(),
        ["flaky"] if s.healthy.load(Ordering::SeqCst) => ok(),
        ["flaky"] => (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
        ["redirect"] => (
            StatusCode::FOUND,
            [(header::LOCATION, s.redirect_to.lock().unwrap().clone())],
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Starts a stand-in on 127.0.0.1:0; returns its base URL.
async fn start(state: StandIn) -> String {
    let app = axum::Router::new().fallback(answer).with_state(state);
    serve(app).await.0
}

/// Short everything, and a breaker that stays out of the way unless a test lowers it.
fn policy() -> HttpPolicy {
    HttpPolicy {
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_millis(300),
        max_attempts: 3,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(5),
        breaker_threshold: 100,
        breaker_cooldown: Duration::from_millis(500),
    }
}

fn client(policy: HttpPolicy) -> HttpClient {
    HttpClient::new("stand-in", policy, vec![Secret::new(KEY)])
}

async fn call(
    c: &HttpClient,
    method: Method,
    url: &str,
) -> Result<reqwest::Response, OutboundError> {
    c.send(|http| http.request(method, url).header("x-api-key", KEY))
        .await
}

/// The error as the HTTP API would answer it.
async fn as_response(err: OutboundError) -> (u16, Value) {
    let res = AppError::from(err).into_response();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

// --- The policy ------------------------------------------------------------------

#[tokio::test]
async fn successes_pass_and_client_errors_are_not_retried() {
    let s = StandIn::default();
    let base = start(s.clone()).await;
    let c = client(policy());

    let res = call(&c, Method::GET, &format!("{base}/ok")).await.unwrap();
    let body: Value = c.json(res).await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(s.hits("GET", "/ok"), 1);

    for code in [400, 404, 422] {
        let path = format!("/status/{code}");
        let err = call(&c, Method::GET, &format!("{base}{path}"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, OutboundError::Status { status, .. } if status.as_u16() == code),
            "{err:?}"
        );
        assert_eq!(s.hits("GET", &path), 1, "{code} is not retried");
        let (status, body) = as_response(err).await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["error"]["code"], "BAD_GATEWAY");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("stand-in answered HTTP {code}")),
            "{body}"
        );
    }
    // A 4xx shows the upstream is up: the breaker does not count it.
    assert_eq!(c.circuit().consecutive_failures, 0);
}

#[tokio::test]
async fn server_errors_are_retried_for_idempotent_calls_only() {
    let s = StandIn::default();
    let base = start(s.clone()).await;
    let c = client(policy());

    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let err = call(&c, method.clone(), &format!("{base}/status/500"))
            .await
            .unwrap_err();
        assert!(matches!(err, OutboundError::Status { .. }), "{err:?}");
        assert_eq!(s.hits(method.as_str(), "/status/500"), 3, "{method}");
    }
    for method in [Method::POST, Method::PATCH] {
        call(&c, method.clone(), &format!("{base}/status/503"))
            .await
            .unwrap_err();
        assert_eq!(s.hits(method.as_str(), "/status/503"), 1, "{method}");
    }
    // A POST carrying an idempotency key, or marked idempotent, is retried.
    c.send(|http| {
        http.post(format!("{base}/status/502"))
            .header("Idempotency-Key", "order-1")
    })
    .await
    .unwrap_err();
    assert_eq!(s.hits("POST", "/status/502"), 3);
    c.send_idempotent(|http| http.post(format!("{base}/status/504")))
        .await
        .unwrap_err();
    assert_eq!(s.hits("POST", "/status/504"), 3);

    // 429 is retried after the Retry-After it asks for...
    let started = Instant::now();
    call(&c, Method::GET, &format!("{base}/throttled/1"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(s.hits("GET", "/throttled/1"), 2);
    // ...unless that is longer than the policy's cap: then the call fails at once.
    let started = Instant::now();
    let err = call(&c, Method::GET, &format!("{base}/throttled/3600"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OutboundError::Status { retry_after: Some(d), .. } if d.as_secs() == 3600),
        "{err:?}"
    );
    assert_eq!(s.hits("GET", "/throttled/3600"), 1);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_timeout_answers_504_naming_the_provider() {
    let s = StandIn::default();
    let base = start(s.clone()).await;
    let c = client(policy());

    let started = Instant::now();
    let err = call(&c, Method::POST, &format!("{base}/slow"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "{err:?}");
    assert!(matches!(err, OutboundError::Timeout { .. }), "{err:?}");
    assert_eq!(s.hits("POST", "/slow"), 1);
    let (status, body) = as_response(err).await;
    assert_eq!(
        (status, body),
        (
            504,
            json!({"success": false, "error": {"code": "GATEWAY_TIMEOUT",
                "message": "stand-in did not answer within 0.3s"}})
        )
    );

    // An idempotent call is retried after a timeout.
    call(&c, Method::GET, &format!("{base}/slow"))
        .await
        .unwrap_err();
    assert_eq!(s.hits("GET", "/slow"), 3);
}

#[tokio::test]
async fn the_circuit_opens_after_n_failures_and_closes_after_the_cooldown() {
    let s = StandIn::default();
    let base = start(s.clone()).await;
    let c = client(HttpPolicy {
        breaker_threshold: 3,
        ..policy()
    });
    let flaky = format!("{base}/flaky");

    for _ in 0..3 {
        let err = call(&c, Method::POST, &flaky).await.unwrap_err();
        assert!(matches!(err, OutboundError::Status { .. }), "{err:?}");
    }
    assert_eq!(s.hits("POST", "/flaky"), 3);
    let circuit = c.circuit();
    assert_eq!(
        serde_json::to_value(&circuit).unwrap()["state"],
        "open",
        "{circuit:?}"
    );
    assert_eq!(circuit.consecutive_failures, 3);

    // Open: calls fail fast without reaching the provider, idempotent ones included.
    for method in [Method::POST, Method::GET] {
        let err = call(&c, method, &flaky).await.unwrap_err();
        assert!(matches!(err, OutboundError::CircuitOpen { .. }), "{err:?}");
        let (status, body) = as_response(err).await;
        assert_eq!(status, 503);
        assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("stand-in is temporarily unavailable"),
            "{body}"
        );
    }
    assert_eq!(s.hits("POST", "/flaky") + s.hits("GET", "/flaky"), 3);

    // After the cool-down one probe goes through; its success closes the circuit.
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert_eq!(
        serde_json::to_value(c.circuit()).unwrap()["state"],
        "half_open"
    );
    s.healthy.store(true, Ordering::SeqCst);
    call(&c, Method::POST, &flaky).await.unwrap();
    assert_eq!(s.hits("POST", "/flaky"), 4);
    let circuit = c.circuit();
    assert_eq!(serde_json::to_value(&circuit).unwrap()["state"], "closed");
    assert_eq!(circuit.consecutive_failures, 0);
    call(&c, Method::POST, &flaky).await.unwrap();
    assert_eq!(s.hits("POST", "/flaky"), 5);
}

#[tokio::test]
async fn a_circuit_opening_mid_retry_stops_the_retries() {
    let s = StandIn::default();
    let base = start(s.clone()).await;
    let c = client(HttpPolicy {
        breaker_threshold: 2,
        ..policy()
    });
    let err = call(&c, Method::GET, &format!("{base}/status/500"))
        .await
        .unwrap_err();
    // The upstream's own answer, not "circuit open", after two of three attempts.
    assert!(matches!(err, OutboundError::Status { .. }), "{err:?}");
    assert_eq!(s.hits("GET", "/status/500"), 2);
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let other = StandIn::default();
    let other_base = start(other.clone()).await;
    let s = StandIn::default();
    *s.redirect_to.lock().unwrap() = format!("{other_base}/ok");
    let base = start(s.clone()).await;
    let c = client(policy());

    let err = call(&c, Method::GET, &format!("{base}/redirect"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OutboundError::Status { status, .. } if status.as_u16() == 302),
        "{err:?}"
    );
    assert_eq!(s.hits("GET", "/redirect"), 1, "a 3xx is not retried");
    assert_eq!(
        other.hits("GET", "/ok"),
        0,
        "the other host is never reached"
    );
    assert_eq!(as_response(err).await.0, 502);
}

#[tokio::test]
async fn secrets_never_reach_error_messages_or_logs() {
    let logs = logs::capture();
    let s = StandIn::default();
    let base = start(s.clone()).await;
    let c = client(policy());
    let closed_port = free_port();

    let mut errors = Vec::new();
    for (method, url) in [
        // The provider echoes the header key into its error body.
        (
            Method::GET,
            format!("{base}/status/500?api_key={QUERY_KEY}"),
        ),
        (
            Method::POST,
            format!("{base}/status/401?api_key={QUERY_KEY}"),
        ),
        (Method::POST, format!("{base}/slow?api_key={QUERY_KEY}")),
        // Nothing listens: the transport error would name the URL.
        (
            Method::GET,
            format!("http://127.0.0.1:{closed_port}/v1/x?api_key={QUERY_KEY}"),
        ),
    ] {
        errors.push(call(&c, method, &url).await.unwrap_err());
    }
    assert!(
        matches!(errors[3], OutboundError::Unreachable { .. }),
        "{:?}",
        errors[3]
    );
    match &errors[0] {
        OutboundError::Status { body, .. } => {
            assert!(body.contains("rejected key ***"), "{body}")
        }
        other => panic!("{other:?}"),
    }

    let mut texts = Vec::new();
    for err in errors {
        texts.push(err.to_string());
        texts.push(format!("{err:?}"));
        texts.push(as_response(err).await.1.to_string());
    }
    let log_text = logs.text();
    assert!(
        log_text.contains("provider call failed; retrying") && log_text.contains("stand-in"),
        "the capture sees the policy's log lines: {log_text}"
    );
    texts.push(log_text);
    for text in &texts {
        assert!(
            !text.contains(KEY) && !text.contains(QUERY_KEY),
            "a secret leaked: {text}"
        );
    }
}

// --- The registry and the admin listing ------------------------------------------

/// The registry `build_state` makes at start-up: one line per disabled integration,
/// naming what is missing, never a value.
#[test]
fn start_up_logs_one_line_per_disabled_integration() {
    let mut env = test_env();
    env.insert("SMTP_HOST".into(), "smtp.test.local".into());
    env.insert("LITELLM_API_KEY".into(), KEY.into());
    let config = Config::from_map(&env).unwrap();
    let logs = logs::capture();
    let registry = Integrations::new(&config);
    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("integration disabled"))
        .collect();
    // Every disabled integration logs one line, in registry order.
    let disabled = registry.list().iter().filter(|r| !r.configured).count();
    assert_eq!(lines.len(), disabled, "{text}");
    assert!(
        lines[0].contains("integration=\"s3-documents\"")
            && lines[0].contains("set S3_DOCUMENTS_BUCKET"),
        "{text}"
    );
    assert!(
        lines[4].contains("integration=\"litellm\"") && lines[4].contains("set LITELLM_BASE_URL"),
        "{text}"
    );
    assert!(!text.contains("integration=\"smtp\""), "{text}");
    assert!(!text.contains(KEY), "{text}");
}

async fn listing(app: &TestApp, token: Option<&str>) -> (u16, Value) {
    app.call(Method::GET, "/api/admin/integrations", token, None)
        .await
}

fn row<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

#[sqlx::test(migrations = false)]
async fn admin_listing_when_nothing_is_configured(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let student = create_user(&app.state, Role::Student).await.token;
    let mentor = create_user(&app.state, Role::Mentor).await.token;
    let superadmin = create_user(&app.state, Role::Superadmin).await.token;
    let admin = create_user(&app.state, Role::Admin).await.token;

    assert_eq!(listing(&app, None).await.0, 401);
    for token in [&student, &mentor] {
        let (status, body) = listing(&app, Some(token)).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "FORBIDDEN");
    }
    assert_eq!(listing(&app, Some(&superadmin)).await.0, 200);

    let (status, body) = listing(&app, Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "s3-documents",
            "s3-recordings",
            "s3-assets",
            "s3-invoices",
            "smtp",
            "litellm",
            "razorpay",
            "razorpay-webhooks",
            "exotel",
            "exotel-webhooks",
            "whatsapp",
            "whatsapp-webhooks",
            "leegality",
            "leegality-webhooks",
            "mr-hire-caller",
            "google",
            "google-calendar",
            "google-drive",
            "judge0",
            "elevenlabs",
            "graphy",
            "mr-hire",
            "class-agent",
            "cdn"
        ]
    );
    for (name, missing) in [
        ("s3-documents", json!(["S3_DOCUMENTS_BUCKET"])),
        ("s3-invoices", json!(["S3_INVOICES_BUCKET"])),
        ("smtp", json!(["SMTP_HOST"])),
        ("litellm", json!(["LITELLM_BASE_URL", "LITELLM_API_KEY"])),
    ] {
        let r = row(&body, name);
        assert_eq!(r["configured"], false, "{r}");
        assert_eq!(r["missing"], missing, "{r}");
        assert_eq!(r["settings"], json!({}), "{r}");
    }
    assert_eq!(row(&body, "s3-documents")["circuit"], Value::Null);
    assert_eq!(row(&body, "litellm")["circuit"]["state"], "closed");
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn admin_listing_when_everything_is_configured(db: PgPool) {
    let app = TestApp::spawn_with(db, |env| {
        for (k, v) in [
            // The seed's name of the documents bucket.
            ("S3_BUCKET", "uploads-test"),
            ("AWS_REGION", "eu-west-1"),
            ("S3_ENDPOINT", "http://127.0.0.1:9"),
            ("SMTP_HOST", "smtp.test.local"),
            ("SMTP_PORT", "2525"),
            ("SMTP_USER", "mailer"),
            ("SMTP_PASSWORD", "smtp-password-secret"),
            ("SMTP_TLS", "none"),
            ("LITELLM_BASE_URL", "http://127.0.0.1:9/v1/"),
            ("LITELLM_API_KEY", "sk-litellm-secret"),
            ("LITELLM_MODEL", "test-model"),
        ] {
            env.insert(k.into(), v.into());
        }
    })
    .await;
    let admin = create_user(&app.state, Role::Admin).await.token;
    let (status, body) = listing(&app, Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    for (name, settings) in [
        (
            "s3-documents",
            json!({"S3_DOCUMENTS_BUCKET": "uploads-test", "AWS_REGION": "eu-west-1",
                   "S3_ENDPOINT": "http://127.0.0.1:9", "S3_PRESIGN_TTL_SECONDS": "900",
                   "S3_PRIVATE_GET_TTL_SECONDS": "300", "UPLOAD_CONFIRM_WINDOW_SECONDS": "86400"}),
        ),
        (
            "smtp",
            json!({"SMTP_HOST": "smtp.test.local", "SMTP_PORT": "2525", "SMTP_USER": "mailer",
                   "SMTP_FROM": "MAS <no-reply@myanalyticsschool.com>", "SMTP_TLS": "none"}),
        ),
        (
            "litellm",
            json!({"LITELLM_BASE_URL": "http://127.0.0.1:9/v1", "LITELLM_MODEL": "test-model",
                   "RESUME_URL_ALLOW_PRIVATE": "false"}),
        ),
    ] {
        let r = row(&body, name);
        assert_eq!(r["configured"], true, "{r}");
        assert_eq!(r["missing"], json!([]), "{r}");
        assert_eq!(r["settings"], settings, "{r}");
    }
    let text = body.to_string();
    assert!(
        !text.contains("smtp-password-secret") && !text.contains("sk-litellm-secret"),
        "{text}"
    );
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_disabled_integration_answers_503_integration_disabled(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let student = create_user(&app.state, Role::Student).await.token;

    let (status, body) = app
        .call(
            Method::POST,
            "/api/resumes/analysis",
            Some(&student),
            Some(json!({"resumeText": "SQL, Python"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            503,
            json!({"success": false, "error": {"code": "INTEGRATION_DISABLED",
                "message": "litellm is not configured: set LITELLM_BASE_URL, LITELLM_API_KEY"}})
        )
    );
    let (status, body) = app
        .call(
            Method::POST,
            "/api/uploads",
            Some(&student),
            Some(json!({"purpose": "resume", "fileName": "a.pdf",
                        "contentType": "application/pdf", "sizeBytes": 10})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            503,
            json!({"success": false, "error": {"code": "INTEGRATION_DISABLED",
                "message": "s3-documents is not configured: set S3_DOCUMENTS_BUCKET"}})
        )
    );
    // Disabled integrations are no reason for the health check to fail.
    assert_eq!(
        app.call(Method::GET, "/api/health", None, None).await.0,
        200
    );
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_partly_configured_integration_names_what_is_still_missing(db: PgPool) {
    let app = TestApp::spawn_with(db, |env| {
        env.insert("LITELLM_API_KEY".into(), "sk-half".into());
    })
    .await;
    let admin = create_user(&app.state, Role::Admin).await.token;
    let (_, body) = listing(&app, Some(&admin)).await;
    assert_eq!(
        row(&body, "litellm")["missing"],
        json!(["LITELLM_BASE_URL"])
    );
    let err = app
        .state
        .integrations
        .ensure(IntegrationId::LiteLlm)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "litellm is not configured: set LITELLM_BASE_URL"
    );
    app.shutdown().await.unwrap();
}

/// LiteLLM's registered client, pointed at the stand-in: its breaker shows in the
/// listing, and an open circuit leaves health alone.
#[sqlx::test(migrations = false)]
async fn the_circuit_state_is_visible_in_the_admin_listing(db: PgPool) {
    let s = StandIn::default();
    let base = start(s.clone()).await;
    let app = TestApp::spawn_with(db, |env| {
        env.insert("LITELLM_BASE_URL".into(), base.clone());
        env.insert("LITELLM_API_KEY".into(), KEY.into());
    })
    .await;
    let admin = create_user(&app.state, Role::Admin).await.token;
    let gateway = app.state.integrations.http(IntegrationId::LiteLlm).unwrap();
    let threshold = gateway.policy().breaker_threshold as usize;
    for _ in 0..threshold {
        let err = call(gateway, Method::POST, &format!("{base}/flaky"))
            .await
            .unwrap_err();
        assert!(matches!(err, OutboundError::Status { .. }), "{err:?}");
    }
    let err = call(gateway, Method::POST, &format!("{base}/flaky"))
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::CircuitOpen { .. }), "{err:?}");
    assert_eq!(s.hits("POST", "/flaky"), threshold);

    let (_, body) = listing(&app, Some(&admin)).await;
    let circuit = &row(&body, "litellm")["circuit"];
    assert_eq!(circuit["state"], "open", "{body}");
    assert_eq!(circuit["consecutiveFailures"], threshold);
    assert_eq!(circuit["threshold"], threshold);
    assert!(circuit["retryInMs"].as_u64().unwrap() > 0, "{circuit}");
    assert_eq!(
        app.call(Method::GET, "/api/health", None, None).await.0,
        200
    );
    app.shutdown().await.unwrap();
}
