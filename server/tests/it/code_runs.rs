//! Code runs on Judge0. Judge0 is replaced by a local stand-in for Judge0 CE's API
//! (https://ce.judge0.com/): `GET /languages`, `POST /submissions?base64_encoded=true
//! &wait=…` answering the result (wait) or a token, `GET /submissions/{token}`,
//! base64 fields with Ruby-style line breaks, `X-Auth-Token` authentication.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mas_server::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::standin::{Recorder, serve};
use crate::support::{TestApp, create_user, logs};

const KEY: &str = "judge0-auth-token-secret";

#[derive(Clone, Default)]
struct Judge0 {
    /// Answers `/languages` with 500 this many times first.
    languages_failures: Arc<AtomicUsize>,
    /// `POST /submissions` answers this status instead (0: normal).
    submit_status: Arc<AtomicUsize>,
    /// `POST /submissions` sleeps this many ms first.
    submit_delay_ms: Arc<AtomicUsize>,
    polls: Arc<AtomicUsize>,
}

fn b64_lines(text: &str) -> String {
    // Judge0 (Ruby's Base64.encode64) breaks lines every 60 characters.
    let raw = STANDARD.encode(text);
    raw.as_bytes()
        .chunks(60)
        .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
        .collect()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("x-auth-token").and_then(|v| v.to_str().ok()) == Some(KEY)
}

fn denied() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "Authentication failed"})),
    )
        .into_response()
}

/// What "running" a program means here: Python 3 (id 71) prints its stdin upper-cased;
/// a source containing `syntax error` fails to compile; `while True` exceeds the limit.
fn result_for(body: &Value) -> Value {
    let source = String::from_utf8(
        STANDARD
            .decode(body["source_code"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let stdin = String::from_utf8(
        STANDARD
            .decode(body["stdin"].as_str().unwrap_or(""))
            .unwrap(),
    )
    .unwrap();
    if source.contains("syntax error") {
        json!({"stdout": null, "stderr": null, "compile_output": b64_lines("SyntaxError: invalid syntax\n"),
               "message": null, "status": {"id": 6, "description": "Compilation Error"}, "time": null, "memory": null})
    } else if source.contains("while True") {
        json!({"stdout": null, "stderr": null, "compile_output": null, "message": b64_lines("Time limit exceeded"),
               "status": {"id": 5, "description": "Time Limit Exceeded"}, "time": body["cpu_time_limit"].to_string(), "memory": 3200})
    } else {
        json!({"stdout": b64_lines(&format!("{}\n", stdin.to_uppercase())), "stderr": null, "compile_output": null,
               "message": null, "status": {"id": 3, "description": "Accepted"}, "time": "0.012", "memory": 3100})
    }
}

async fn languages(State(s): State<Judge0>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return denied();
    }
    if s.languages_failures.load(Ordering::SeqCst) > 0 {
        s.languages_failures.fetch_sub(1, Ordering::SeqCst);
        return (StatusCode::INTERNAL_SERVER_ERROR, "busy").into_response();
    }
    Json(json!([{"id": 71, "name": "Python (3.8.1)"}, {"id": 54, "name": "C++ (GCC 9.2.0)"}]))
        .into_response()
}

async fn submit(
    State(s): State<Judge0>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&headers) {
        return denied();
    }
    let delay = s.submit_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    let status = s.submit_status.load(Ordering::SeqCst);
    if status != 0 {
        return (
            StatusCode::from_u16(status as u16).unwrap(),
            Json(json!({"error": format!("echo {KEY}")})),
        )
            .into_response();
    }
    assert_eq!(q.get("base64_encoded").map(String::as_str), Some("true"));
    let token = format!("tok-{}", uuid::Uuid::new_v4());
    if q.get("wait").map(String::as_str) == Some("true") {
        let mut r = result_for(&body);
        r["token"] = json!(token);
        (StatusCode::CREATED, Json(r)).into_response()
    } else {
        (StatusCode::CREATED, Json(json!({"token": token}))).into_response()
    }
}

async fn poll(State(s): State<Judge0>, headers: HeaderMap, Path(_token): Path<String>) -> Response {
    if !authorized(&headers) {
        return denied();
    }
    // The first poll still finds it processing.
    if s.polls.fetch_add(1, Ordering::SeqCst) == 0 {
        return Json(json!({"status": {"id": 2, "description": "Processing"}})).into_response();
    }
    let fake = json!({"source_code": STANDARD.encode("print(input().upper())"), "stdin": STANDARD.encode("polled")});
    Json(result_for(&fake)).into_response()
}

async fn judge0(state: Judge0) -> (String, Recorder) {
    serve(
        axum::Router::new()
            .route("/languages", get(languages))
            .route("/submissions", post(submit))
            .route("/submissions/{token}", get(poll))
            .with_state(state),
    )
    .await
}

async fn app(db: PgPool, base: &str, extra: &[(&str, &str)]) -> TestApp {
    let base = base.to_string();
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TestApp::spawn_with(db, move |env| {
        env.insert("JUDGE0_URL".into(), base);
        env.insert("JUDGE0_API_KEY".into(), KEY.into());
        env.insert("INTEGRATIONS_HTTP_TIMEOUT_MS".into(), "800".into());
        env.extend(extra);
    })
    .await
}

fn run(source: &str, stdin: &str) -> Value {
    json!({"languageId": 71, "source": source, "stdin": stdin})
}

#[sqlx::test(migrations = false)]
async fn runs_return_results_within_the_limits(db: PgPool) {
    let logs = logs::capture();
    let j = Judge0::default();
    let (base, rec) = judge0(j.clone()).await;
    let app = app(
        db,
        &base,
        &[
            ("CODE_RUN_MAX_SOURCE_BYTES", "200"),
            ("CODE_RUN_CPU_SECONDS", "2"),
            ("CODE_RUN_MEMORY_KB", "64000"),
        ],
    )
    .await;
    let student = create_user(&app.state, Role::Student).await;

    // Languages: fetched once, then cached.
    for _ in 0..2 {
        let (s, body) = app
            .call(
                Method::GET,
                "/api/code/languages",
                Some(&student.token),
                None,
            )
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["data"][0], json!({"id": 71, "name": "Python (3.8.1)"}));
    }
    assert_eq!(rec.count("GET", "/languages"), 1);

    // wait=true: the result in the answer, decoded.
    let (s, body) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("print(input().upper())", "hello judge")),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let r = &body["data"];
    assert_eq!(r["status"], "completed");
    assert_eq!(r["verdict"], "Accepted");
    assert_eq!(r["stdout"], "HELLO JUDGE\n");
    assert_eq!(r["memoryKb"], 3100);
    assert_eq!(r["cpuTimeLimitSeconds"], 2.0);
    // The limits went to Judge0 as its own limits.
    let sent = rec.matching("POST", "/submissions").pop().unwrap();
    let sent_body = sent.json();
    assert_eq!(sent_body["cpu_time_limit"], 2.0);
    assert_eq!(sent_body["memory_limit"], 64000);
    assert_eq!(sent_body["language_id"], 71);
    assert_eq!(sent.header("x-auth-token"), Some(KEY));

    // Verdicts other than Accepted are results, not errors.
    let (s, body) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("syntax error(", "")),
        )
        .await;
    assert_eq!(
        (s, body["data"]["verdict"].clone()),
        (201, json!("Compilation Error")),
        "{body}"
    );
    assert_eq!(
        body["data"]["compileOutput"],
        "SyntaxError: invalid syntax\n"
    );
    let (_, body) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("while True: pass", "")),
        )
        .await;
    assert_eq!(body["data"]["verdict"], "Time Limit Exceeded");

    // Oversized source, unknown language: refused before Judge0 sees them.
    let posts = rec.count("POST", "/submissions");
    let (s, body) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run(&"x".repeat(201), "")),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 200 bytes")
    );
    let (s, _) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(json!({"languageId": 9999, "source": "x"})),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(rec.count("POST", "/submissions"), posts);

    // Only students run code; only the owner (or an admin) reads a run.
    let mentor = create_user(&app.state, Role::Mentor).await;
    let (s, _) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&mentor.token),
            Some(run("print(1)", "")),
        )
        .await;
    assert_eq!(s, 403);
    let id = r["id"].as_str().unwrap();
    let other = create_user(&app.state, Role::Student).await;
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/code/runs/{id}"),
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, body) = app
        .call(
            Method::GET,
            &format!("/api/code/runs/{id}"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(
        (s, body["data"]["stdout"].clone()),
        (200, json!("HELLO JUDGE\n"))
    );

    assert!(
        !logs.text().contains(KEY),
        "the Judge0 key never reaches the logs"
    );
}

#[sqlx::test(migrations = false)]
async fn runs_without_wait_are_polled(db: PgPool) {
    let (base, rec) = judge0(Judge0::default()).await;
    let app = app(db, &base, &[("JUDGE0_WAIT", "false")]).await;
    let student = create_user(&app.state, Role::Student).await;
    let (s, body) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("print(input().upper())", "x")),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["data"]["status"], "processing");
    let id = body["data"]["id"].as_str().unwrap().to_string();
    let (_, body) = app
        .call(
            Method::GET,
            &format!("/api/code/runs/{id}"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(body["data"]["status"], "processing");
    let (_, body) = app
        .call(
            Method::GET,
            &format!("/api/code/runs/{id}"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(body["data"]["status"], "completed", "{body}");
    assert_eq!(body["data"]["stdout"], "POLLED\n");
    // Finished runs are served from the database.
    let (_, _) = app
        .call(
            Method::GET,
            &format!("/api/code/runs/{id}"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(rec.count("GET", "/submissions/"), 2);
    assert!(
        rec.matching("POST", "/submissions")[0]
            .query
            .contains("wait=false")
    );
}

/// `RATE_LIMIT_CODE_RUN`, the shared limiter's rule, wins over `CODE_RUN_PER_MINUTE`.
#[sqlx::test(migrations = false)]
async fn the_shared_code_run_rule_wins_over_code_run_per_minute(db: PgPool) {
    let (base, _rec) = judge0(Judge0::default()).await;
    let app = app(
        db,
        &base,
        &[
            ("CODE_RUN_PER_MINUTE", "5"),
            ("RATE_LIMIT_CODE_RUN", "user=1/1m"),
        ],
    )
    .await;
    let student = create_user(&app.state, Role::Student).await;
    let (s, body) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("print(1)", "")),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("print(1)", "")),
        )
        .await;
    assert_eq!(s, 429, "{body}");
    assert_eq!(body["error"]["code"], "TOO_MANY_REQUESTS");
}

#[sqlx::test(migrations = false)]
async fn runs_are_rate_limited_per_user(db: PgPool) {
    let (base, _rec) = judge0(Judge0::default()).await;
    // The harness turns every RATE_LIMIT_* off; unset, CODE_RUN_PER_MINUTE is the rule.
    let app = app(
        db,
        &base,
        &[("CODE_RUN_PER_MINUTE", "2"), ("RATE_LIMIT_CODE_RUN", "")],
    )
    .await;
    let student = create_user(&app.state, Role::Student).await;
    for _ in 0..2 {
        let (s, body) = app
            .call(
                Method::POST,
                "/api/code/runs",
                Some(&student.token),
                Some(run("print(1)", "")),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    let res = app
        .send(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("print(1)", "")),
        )
        .await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another student has their own budget.
    let other = create_user(&app.state, Role::Student).await;
    let (s, _) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&other.token),
            Some(run("print(1)", "")),
        )
        .await;
    assert_eq!(s, 201);
}

#[sqlx::test(migrations = false)]
async fn judge0_failures_map_to_gateway_errors_and_open_the_circuit(db: PgPool) {
    let logs = logs::capture();
    let j = Judge0::default();
    let (base, rec) = judge0(j.clone()).await;
    let app = app(
        db,
        &base,
        &[
            ("INTEGRATIONS_BREAKER_THRESHOLD", "3"),
            ("INTEGRATIONS_BREAKER_COOLDOWN_MS", "400"),
        ],
    )
    .await;
    let student = create_user(&app.state, Role::Student).await;

    // GET /languages is idempotent: a 500 is retried and the second answer used.
    j.languages_failures.store(1, Ordering::SeqCst);
    let (s, body) = app
        .call(
            Method::GET,
            "/api/code/languages",
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(rec.count("GET", "/languages"), 2);

    // A 4xx from Judge0 (e.g. a limit it rejects): 502, not retried, run marked failed.
    j.submit_status.store(422, Ordering::SeqCst);
    let (s, body) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("print(1)", "")),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (502, json!("BAD_GATEWAY")),
        "{body}"
    );
    assert_eq!(
        body["error"]["message"],
        "judge0 answered HTTP 422 Unprocessable Entity"
    );
    assert_eq!(rec.count("POST", "/submissions"), 1);
    let failed: String =
        sqlx::query_scalar("select status from code_runs order by created_at desc limit 1")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(failed, "failed");

    // A 5xx on the POST: never retried (it would run the program again).
    j.submit_status.store(503, Ordering::SeqCst);
    let (s, _) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("print(1)", "")),
        )
        .await;
    assert_eq!(s, 502);
    assert_eq!(rec.count("POST", "/submissions"), 2, "a POST is sent once");

    // Too slow: 504 after the timeout.
    j.submit_status.store(0, Ordering::SeqCst);
    j.submit_delay_ms.store(1500, Ordering::SeqCst);
    let (s, body) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("print(1)", "")),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (504, json!("GATEWAY_TIMEOUT")),
        "{body}"
    );

    // Two server-side failures in a row (503, timeout) plus one more open the circuit.
    j.submit_delay_ms.store(0, Ordering::SeqCst);
    j.submit_status.store(500, Ordering::SeqCst);
    let (s, _) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("print(1)", "")),
        )
        .await;
    assert_eq!(s, 502);
    let before = rec.count("POST", "/submissions");
    let (s, body) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("print(1)", "")),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (503, json!("SERVICE_UNAVAILABLE")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("judge0 is temporarily unavailable")
    );
    assert_eq!(
        rec.count("POST", "/submissions"),
        before,
        "an open circuit fails fast"
    );
    let admin = crate::support::users::seeded_admin(&app.state).await;
    let (_, list) = app
        .call(
            Method::GET,
            "/api/admin/integrations",
            Some(&admin.token),
            None,
        )
        .await;
    let row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "judge0")
        .unwrap()
        .clone();
    assert_eq!(row["circuit"]["state"], "open", "{row}");
    let (s, _) = app.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(s, 200, "an open circuit leaves health alone");

    // After the cool-down a probe goes through; its success closes the circuit.
    j.submit_status.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, body) = app
        .call(
            Method::POST,
            "/api/code/runs",
            Some(&student.token),
            Some(run("print(input())", "ok")),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (_, list) = app
        .call(
            Method::GET,
            "/api/admin/integrations",
            Some(&admin.token),
            None,
        )
        .await;
    let row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "judge0")
        .unwrap()
        .clone();
    assert_eq!(row["circuit"]["state"], "closed", "{row}");

    assert!(
        !logs.text().contains(KEY),
        "the echoed key is scrubbed from the logs"
    );
    assert!(!list.to_string().contains(KEY));
}

#[sqlx::test(migrations = false)]
async fn code_runs_are_disabled_without_judge0(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let student = create_user(&app.state, Role::Student).await;
    for (method, path, body) in [
        (Method::GET, "/api/code/languages", None),
        (Method::POST, "/api/code/runs", Some(run("print(1)", ""))),
        (
            Method::GET,
            "/api/code/runs/00000000-0000-0000-0000-000000000001",
            None,
        ),
    ] {
        let (s, body) = app.call(method, path, Some(&student.token), body).await;
        assert_eq!(s, 503, "{path}: {body}");
        assert_eq!(body["error"]["code"], "INTEGRATION_DISABLED");
        assert_eq!(
            body["error"]["message"],
            "judge0 is not configured: set JUDGE0_URL"
        );
    }
}
