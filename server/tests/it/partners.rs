//! Partner proxies. Graphy is replaced by a local stand-in for its Public API v1
//! (`mid` + `key` query parameters on GETs, form fields on POSTs); mr-hire-backend and
//! the class agent by stand-ins speaking their JSON contract (bearer / `X-API-Key`,
//! the caller in `X-MAS-User-Id` / `X-MAS-User-Role`). A second local server plays the
//! "other host" an open relay would reach; it must never see a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mas_server::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::standin::{Recorder, serve};
use crate::support::{TestApp, create_user, logs};

const GRAPHY_KEY: &str = "graphy-api-key-secret";
const AGENT_KEY: &str = "class-agent-key-secret";
const HIRE_KEY: &str = "mr-hire-key-secret";

#[derive(Clone, Default)]
struct Upstream {
    /// `GET /learners` answers 503 this many times first.
    learners_failures: Arc<AtomicUsize>,
    other_host: Arc<std::sync::Mutex<String>>,
}

fn graphy_authorized(pairs: &[(String, String)]) -> bool {
    pairs.contains(&("mid".into(), "masmerchant".into()))
        && pairs.contains(&("key".into(), GRAPHY_KEY.into()))
}

async fn graphy_learners(State(s): State<Upstream>, uri: Uri) -> Response {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    if !graphy_authorized(&pairs) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid key"})),
        )
            .into_response();
    }
    if s.learners_failures.load(Ordering::SeqCst) > 0 {
        s.learners_failures.fetch_sub(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
    }
    Json(json!({"data": [{"email": "learner@example.com", "name": "Learner"}], "total": 1}))
        .into_response()
}

async fn graphy_create_learner(body: axum::body::Bytes) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    if !graphy_authorized(&form) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid key"})),
        )
            .into_response();
    }
    if form
        .iter()
        .any(|(k, v)| k == "email" && v == "taken@example.com")
    {
        return (StatusCode::CONFLICT, Json(json!({"error": "exists"}))).into_response();
    }
    (
        StatusCode::CREATED,
        Json(json!({"created": true, "fields": form.len()})),
    )
        .into_response()
}

async fn graphy_products(State(s): State<Upstream>) -> Response {
    // Redirects to another host: a proxy following it would be an open relay.
    let to = s.other_host.lock().unwrap().clone();
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("{to}/stolen"))],
    )
        .into_response()
}

async fn graphy_transactions() -> Response {
    // Far more than PARTNER_PROXY_MAX_RESPONSE_BYTES.
    Json(json!({"data": "x".repeat(64 * 1024)})).into_response()
}

async fn hire_jobs(headers: HeaderMap) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {HIRE_KEY}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!({"jobs": [{"id": "42", "title": "Data Analyst"}],
                "seenUser": headers.get("x-mas-user-role").and_then(|v| v.to_str().ok())}))
    .into_response()
}

async fn hire_job(axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    if id == "slow" {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    if id == "missing" {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "no such job"}))).into_response();
    }
    Json(json!({"id": id})).into_response()
}

async fn agent_messages(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(AGENT_KEY) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if body["fail"] == true {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("agent crashed; key was {AGENT_KEY}"),
        )
            .into_response();
    }
    Json(json!({"reply": format!("You asked: {}", body["message"].as_str().unwrap_or(""))}))
        .into_response()
}

struct Fixture {
    app: TestApp,
    upstream: Upstream,
    graphy: Recorder,
    hire: Recorder,
    agent: Recorder,
    other: Recorder,
}

async fn fixture(db: PgPool) -> Fixture {
    let upstream = Upstream::default();
    let (other_base, other) =
        serve(axum::Router::new().fallback(|| async { "you should never see this" })).await;
    *upstream.other_host.lock().unwrap() = other_base;
    let (graphy_base, graphy) = serve(
        axum::Router::new()
            .route(
                "/public/v1/learners",
                get(graphy_learners).post(graphy_create_learner),
            )
            .route("/public/v1/products", get(graphy_products))
            .route("/public/v1/transactions", get(graphy_transactions))
            .with_state(upstream.clone()),
    )
    .await;
    let (hire_base, hire) = serve(
        axum::Router::new()
            .route("/jobs", get(hire_jobs))
            .route("/jobs/{id}", get(hire_job)),
    )
    .await;
    let (agent_base, agent) =
        serve(axum::Router::new().route("/sessions/{id}/messages", post(agent_messages))).await;
    let app = TestApp::spawn_with(db, move |env| {
        env.insert("GRAPHY_API_URL".into(), format!("{graphy_base}/public/v1"));
        env.insert("GRAPHY_MID".into(), "masmerchant".into());
        env.insert("GRAPHY_API_KEY".into(), GRAPHY_KEY.into());
        env.insert("MR_HIRE_BACKEND_URL".into(), hire_base);
        env.insert("MR_HIRE_API_KEY".into(), HIRE_KEY.into());
        env.insert("CLASS_AGENT_URL".into(), agent_base);
        env.insert("CLASS_AGENT_API_KEY".into(), AGENT_KEY.into());
        env.insert("PARTNER_PROXY_MAX_RESPONSE_BYTES".into(), "16384".into());
        env.insert("PARTNER_PROXY_MAX_REQUEST_BYTES".into(), "1024".into());
        env.insert("INTEGRATIONS_HTTP_TIMEOUT_MS".into(), "800".into());
    })
    .await;
    Fixture {
        app,
        upstream,
        graphy,
        hire,
        agent,
        other,
    }
}

#[sqlx::test(migrations = false)]
async fn proxies_pass_allow_listed_calls_with_our_credentials(db: PgPool) {
    let logs = logs::capture();
    let f = fixture(db).await;
    let app = &f.app;
    let sales = create_user(&app.state, Role::Sales).await;
    let student = create_user(&app.state, Role::Student).await;

    // Graphy: our mid/key added; a client-supplied key is dropped, other params pass.
    let (s, body) = app
        .call(
            Method::GET,
            "/api/partners/graphy/learners?limit=5&key=client-chosen",
            Some(&sales.token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"]["data"][0]["email"], "learner@example.com");
    let q = f
        .graphy
        .matching("GET", "/public/v1/learners")
        .pop()
        .unwrap()
        .query_pairs();
    assert!(q.contains(&("limit".into(), "5".into())), "{q:?}");
    assert!(!q.iter().any(|(_, v)| v == "client-chosen"), "{q:?}");

    // POST: JSON in, Graphy's form out, upstream status kept; upstream 409 stays 409.
    let (s, body) = app
        .call(
            Method::POST,
            "/api/partners/graphy/learners",
            Some(&sales.token),
            Some(json!({"email": "new@example.com", "name": "New", "sendEmail": true})),
        )
        .await;
    assert_eq!(
        (s, body["data"]["created"].clone()),
        (201, json!(true)),
        "{body}"
    );
    let form = f
        .graphy
        .matching("POST", "/public/v1/learners")
        .pop()
        .unwrap()
        .form();
    assert!(
        form.contains(&("sendEmail".into(), "true".into())),
        "{form:?}"
    );
    let (s, _) = app
        .call(
            Method::POST,
            "/api/partners/graphy/learners",
            Some(&sales.token),
            Some(json!({"email": "taken@example.com"})),
        )
        .await;
    assert_eq!(s, 409);

    // Students cannot use Graphy; the job board names them upstream.
    let (s, _) = app
        .call(
            Method::GET,
            "/api/partners/graphy/learners",
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, body) = app
        .call(
            Method::GET,
            "/api/partners/mr-hire/jobs",
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(
        (s, body["data"]["seenUser"].clone()),
        (200, json!("student")),
        "{body}"
    );
    let seen = f.hire.matching("GET", "/jobs").pop().unwrap();
    assert_eq!(
        seen.header("x-mas-user-id"),
        Some(student.id.to_string().as_str())
    );
    let (s, _) = app
        .call(
            Method::GET,
            "/api/partners/mr-hire/jobs/missing",
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(s, 404, "an upstream 404 stays a 404");

    // The class agent, with its key.
    let (s, body) = app
        .call(
            Method::POST,
            "/api/partners/class-agent/sessions/s1/messages",
            Some(&student.token),
            Some(json!({"message": "What is a JOIN?"})),
        )
        .await;
    assert_eq!(
        (s, body["data"]["reply"].clone()),
        (200, json!("You asked: What is a JOIN?")),
        "{body}"
    );

    // Unauthenticated callers get nothing.
    let (s, _) = app
        .call(Method::GET, "/api/partners/mr-hire/jobs", None, None)
        .await;
    assert_eq!(s, 401);

    let text = logs.text();
    for key in [GRAPHY_KEY, AGENT_KEY, HIRE_KEY] {
        assert!(!text.contains(key), "{key} in the logs");
    }
}

#[sqlx::test(migrations = false)]
async fn proxies_are_never_an_open_relay(db: PgPool) {
    let f = fixture(db).await;
    let app = &f.app;
    let admin = crate::support::users::seeded_admin(&app.state).await;
    let before = (
        f.graphy.all().len(),
        f.hire.all().len(),
        f.agent.all().len(),
    );

    // Paths off the allow-list, traversal, encoded separators, other hosts or schemes.
    for path in [
        "/api/partners/graphy/admin",
        "/api/partners/graphy/learners%2F..%2Fadmin",
        "/api/partners/graphy/learners%2Ftransactions",
        "/api/partners/graphy/http:%2F%2F127.0.0.1:1%2Fx",
        "/api/partners/graphy/@127.0.0.1/learners",
        "/api/partners/mr-hire/jobs/42/internal",
        "/api/partners/mr-hire//jobs",
        "/api/partners/class-agent/sessions",
    ] {
        let res = app
            .client
            .get(app.url(path))
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!(
            matches!(status, 400 | 404),
            "{path}: {status} {}",
            res.text().await.unwrap()
        );
    }
    // Dot segments sent as-is (HTTP clients would resolve them, so a raw request).
    for raw in [
        "/api/partners/graphy/learners/../transactions",
        "/api/partners/graphy/../graphy/learners",
    ] {
        assert_eq!(raw_get_status(app, raw, &admin.token).await, 404, "{raw}");
    }
    let (s, _) = app
        .call(
            Method::DELETE,
            "/api/partners/graphy/learners",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, 405, "only GET and POST are proxied");
    assert_eq!(
        (
            f.graphy.all().len(),
            f.hire.all().len(),
            f.agent.all().len()
        ),
        before,
        "nothing reached the upstreams"
    );

    // A redirect to another host is not followed.
    let (s, body) = app
        .call(
            Method::GET,
            "/api/partners/graphy/products",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (502, json!("BAD_GATEWAY")),
        "{body}"
    );
    assert!(
        f.other.all().is_empty(),
        "the other host never saw a request"
    );

    // Size bounds both ways.
    let (s, body) = app
        .call(
            Method::GET,
            "/api/partners/graphy/transactions",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, 502, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 16384 bytes"),
        "{body}"
    );
    let (s, _) = app
        .call(
            Method::POST,
            "/api/partners/graphy/learners",
            Some(&admin.token),
            Some(json!({"name": "x".repeat(2000)})),
        )
        .await;
    assert_eq!(s, 413);
}

#[sqlx::test(migrations = false)]
async fn proxy_failures_retry_only_idempotent_calls_and_time_out(db: PgPool) {
    let logs = logs::capture();
    let f = fixture(db).await;
    let app = &f.app;
    let sales = create_user(&app.state, Role::Sales).await;
    let student = create_user(&app.state, Role::Student).await;

    // A GET answered 503 once is retried and succeeds.
    f.upstream.learners_failures.store(1, Ordering::SeqCst);
    let (s, body) = app
        .call(
            Method::GET,
            "/api/partners/graphy/learners",
            Some(&sales.token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(f.graphy.count("GET", "/public/v1/learners"), 2);

    // A POST answered 500 is not retried, and the upstream's echo of the key is scrubbed.
    let (s, body) = app
        .call(
            Method::POST,
            "/api/partners/class-agent/sessions/s1/messages",
            Some(&student.token),
            Some(json!({"fail": true})),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (502, json!("BAD_GATEWAY")),
        "{body}"
    );
    assert_eq!(f.agent.count("POST", "/sessions/s1/messages"), 1);
    assert!(!body.to_string().contains(AGENT_KEY));

    // Too slow: 504.
    let (s, body) = app
        .call(
            Method::GET,
            "/api/partners/mr-hire/jobs/slow",
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (504, json!("GATEWAY_TIMEOUT")),
        "{body}"
    );

    assert!(
        !logs.text().contains(AGENT_KEY),
        "the echoed key is scrubbed from the logs"
    );
}

#[sqlx::test(migrations = false)]
async fn proxies_are_disabled_without_their_variables(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = crate::support::users::seeded_admin(&app.state).await;
    for (path, message) in [
        (
            "/api/partners/graphy/learners",
            "graphy is not configured: set GRAPHY_MID, GRAPHY_API_KEY",
        ),
        (
            "/api/partners/mr-hire/jobs",
            "mr-hire is not configured: set MR_HIRE_BACKEND_URL",
        ),
        (
            "/api/partners/class-agent/sessions/x",
            "class-agent is not configured: set CLASS_AGENT_URL, CLASS_AGENT_API_KEY",
        ),
    ] {
        let (s, body) = app.call(Method::GET, path, Some(&admin.token), None).await;
        assert_eq!(
            (s, body["error"]["message"].clone()),
            (503, json!(message)),
            "{path}: {body}"
        );
    }
}

/// The status of a GET sent byte for byte (no client-side path normalisation).
async fn raw_get_status(app: &TestApp, path: &str, token: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
