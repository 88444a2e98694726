//! Resume analysis end to end: API → resumeAnalysisQueue → worker → an
//! OpenAI-compatible gateway (a local axum server standing in for LiteLLM) → table.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use mas_server::auth::Role;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::support::app::free_port;
use crate::support::queues as qs;
use crate::support::standin::serve;
use crate::support::wait::wait_for;
use crate::support::{TestApp, create_user};

pub(crate) const KEY: &str = "sk-test-gateway-key";
pub(crate) const RESUME: &str =
    "Asha Rao. SQL, Power BI, Python. Built a churn dashboard for 20k users.";

#[derive(Clone, Copy)]
pub(crate) enum Mode {
    Ok,
    ServerError,
}

#[derive(Clone)]
pub(crate) struct Gateway {
    mode: Mode,
    delay: Duration,
    pub(crate) calls: Arc<AtomicUsize>,
    pub(crate) last_request: Arc<Mutex<Option<(String, Value)>>>,
}

async fn completions(
    State(g): State<Gateway>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    g.calls.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    *g.last_request.lock().await = Some((auth.clone(), body.clone()));
    tokio::time::sleep(g.delay).await;
    if auth != format!("Bearer {KEY}") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "bad key"}})),
        );
    }
    match g.mode {
        Mode::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "upstream exploded"}})),
        ),
        Mode::Ok => {
            let review = json!({
                "summary": "Solid analytics profile.",
                "score": 78,
                "strengths": ["SQL"],
                "weaknesses": ["No cloud"],
                "suggestions": ["Add metrics"],
                "skills": ["SQL", "Power BI", "Python"]
            });
            (
                StatusCode::OK,
                Json(json!({
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": review.to_string()}}]
                })),
            )
        }
    }
}

/// Starts the fake gateway on 127.0.0.1:0; returns its base URL and state.
pub(crate) async fn start_gateway(mode: Mode, delay: Duration) -> (String, Gateway) {
    let g = Gateway {
        mode,
        delay,
        calls: Arc::default(),
        last_request: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/resume.txt", get(|| async { RESUME }))
        .with_state(g.clone());
    let (base, _) = serve(app).await;
    (base, g)
}

pub(crate) fn llm_env(
    base: &str,
) -> impl FnOnce(&mut std::collections::HashMap<String, String>) + use<> {
    let base = format!("{base}/v1");
    move |env| {
        env.insert("LITELLM_BASE_URL".into(), base);
        env.insert("LITELLM_API_KEY".into(), KEY.into());
        env.insert("LITELLM_MODEL".into(), "test-model".into());
        // The fake "public" resume host is on loopback.
        env.insert("RESUME_URL_ALLOW_PRIVATE".into(), "true".into());
    }
}

pub(crate) async fn submit(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/resumes/analysis"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn wait_status(app: &TestApp, token: &str, id: &str, done: &[&str]) -> Value {
    wait_for("analysis to settle", Duration::from_secs(30), || async {
        let res = app
            .client
            .get(app.url(&format!("/api/resumes/analysis/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .ok()?;
        let body: Value = res.json().await.ok()?;
        done.contains(&body["data"]["status"].as_str()?)
            .then_some(body["data"].clone())
    })
    .await
}

#[sqlx::test(migrations = false)]
async fn analysis_is_queued_processed_and_visible_to_its_owner_only(db: PgPool) {
    let (base, gateway) = start_gateway(Mode::Ok, Duration::ZERO).await;
    let (app, prefix) = qs::spawn(db, llm_env(&base)).await;
    let student = create_user(&app.state, Role::Student).await.token;
    let other = create_user(&app.state, Role::Student).await.token;
    let mentor = create_user(&app.state, Role::Mentor).await.token;

    let res = submit(&app, &student, json!({"resumeText": RESUME})).await;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["status"], "queued");
    let id = body["data"]["id"].as_str().unwrap().to_string();

    let done = wait_status(&app, &student, &id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["score"], 78);
    assert_eq!(
        done["result"]["skills"],
        json!(["SQL", "Power BI", "Python"])
    );
    assert_eq!(done["attempts"], 1);

    let (auth, request) = gateway.last_request.lock().await.clone().unwrap();
    assert_eq!(auth, format!("Bearer {KEY}"));
    assert_eq!(request["model"], "test-model");
    assert_eq!(request["response_format"]["type"], "json_object");
    assert!(
        request["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains(RESUME)
    );

    // Owner only.
    let res = app
        .client
        .get(app.url(&format!("/api/resumes/analysis/{id}")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Students only may submit; input is validated.
    assert_eq!(
        submit(&app, &mentor, json!({"resumeText": RESUME}))
            .await
            .status(),
        403
    );
    assert_eq!(submit(&app, &student, json!({})).await.status(), 400);
    assert_eq!(
        submit(&app, &student, json!({"resumeUrl": "ftp://x"}))
            .await
            .status(),
        400
    );

    // A URL input is fetched by the worker.
    let res = submit(
        &app,
        &student,
        json!({"resumeUrl": format!("{base}/resume.txt")}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let id2 = res.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_status(&app, &student, &id2, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["resumeUrl"], format!("{base}/resume.txt"));
    let (_, request) = gateway.last_request.lock().await.clone().unwrap();
    assert!(
        request["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains(RESUME)
    );
    assert_eq!(gateway.calls.load(Ordering::SeqCst), 2);

    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn unset_gateway_answers_503(db: PgPool) {
    let (app, prefix) = qs::spawn(db, |_| {}).await;
    let student = create_user(&app.state, Role::Student).await.token;
    let res = submit(&app, &student, json!({"resumeText": RESUME})).await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INTEGRATION_DISABLED");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("LITELLM_BASE_URL"),
        "{body}"
    );
    let (n,): (i64,) = sqlx::query_as("select count(*) from resume_analyses")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn failing_gateway_is_retried_then_the_analysis_fails_with_the_reason(db: PgPool) {
    let (base, gateway) = start_gateway(Mode::ServerError, Duration::ZERO).await;
    let (app, prefix) = qs::spawn(db, llm_env(&base)).await;
    let student = create_user(&app.state, Role::Student).await.token;
    let res = submit(&app, &student, json!({"resumeText": RESUME})).await;
    let id = res.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_status(&app, &student, &id, &["failed"]).await;
    assert_eq!(done["attempts"], 3);
    let error = done["error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 500") && error.contains("upstream exploded"),
        "{error}"
    );
    assert!(!error.contains(KEY));
    assert_eq!(gateway.calls.load(Ordering::SeqCst), 3);

    let q = qs::queue(&prefix, "resumeAnalysisQueue").await;
    let job = q.get_job(&format!("resume-{id}")).await.unwrap().unwrap();
    assert_eq!(job.attempts_made(), 3);
    assert!(job.failed_reason().contains("HTTP 500"));
    q.close().await;
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn unreachable_gateway_fails_with_the_reason(db: PgPool) {
    let port = free_port();
    let (app, prefix) = qs::spawn(db, llm_env(&format!("http://127.0.0.1:{port}"))).await;
    let student = create_user(&app.state, Role::Student).await.token;
    let res = submit(&app, &student, json!({"resumeText": RESUME})).await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_status(&app, &student, &id, &["failed"]).await;
    assert_eq!(done["attempts"], 3);
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .starts_with("LLM gateway unreachable"),
        "{done}"
    );
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

/// Shutdown while the job waits on the gateway: the running job finishes within
/// the grace period, exactly once, and is not left active or re-run.
#[sqlx::test(migrations = false)]
async fn shutdown_during_a_job_lets_it_complete_once(db: PgPool) {
    let (base, gateway) = start_gateway(Mode::Ok, Duration::from_millis(1500)).await;
    // The server closes its pool on shutdown; check the outcome through another one.
    let check = PgPool::connect_with((*db.connect_options()).clone())
        .await
        .unwrap();
    let (app, prefix) = qs::spawn(db, llm_env(&base)).await;
    let state = app.state.clone();
    let student = create_user(&state, Role::Student).await.token;
    let res = submit(&app, &student, json!({"resumeText": RESUME})).await;
    let id = res.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let calls = gateway.calls.clone();
    wait_for("the gateway call to start", Duration::from_secs(20), || {
        let calls = calls.clone();
        async move { (calls.load(Ordering::SeqCst) == 1).then_some(()) }
    })
    .await;
    let started = std::time::Instant::now();
    app.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown waited {:?}",
        started.elapsed()
    );

    let (status, attempts): (String, i32) =
        sqlx::query_as("select status, attempts from resume_analyses where id = $1::uuid")
            .bind(&id)
            .fetch_one(&check)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("completed", 1));
    let q = qs::queue(&prefix, "resumeAnalysisQueue").await;
    let job_id = format!("resume-{id}");
    assert_eq!(
        q.get_job_state(&job_id).await.unwrap().as_str(),
        "completed"
    );
    let counts = q.get_job_counts().await.unwrap();
    assert_eq!(
        (counts.active, counts.waiting, counts.completed),
        (0, 0, 1),
        "{counts:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gateway.calls.load(Ordering::SeqCst), 1);
    q.close().await;
    qs::purge(&prefix).await;
}

/// Without RESUME_URL_ALLOW_PRIVATE a loopback URL is refused, and never fetched.
#[sqlx::test(migrations = false)]
async fn private_resume_urls_are_refused(db: PgPool) {
    let (base, gateway) = start_gateway(Mode::Ok, Duration::ZERO).await;
    let (app, prefix) = qs::spawn(db, |env| {
        llm_env(&base)(env);
        env.remove("RESUME_URL_ALLOW_PRIVATE");
    })
    .await;
    let student = create_user(&app.state, Role::Student).await.token;
    let res = submit(
        &app,
        &student,
        json!({"resumeUrl": format!("{base}/resume.txt")}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_status(&app, &student, &id, &["failed"]).await;
    assert_eq!(done["attempts"], 1, "not retried: {done}");
    assert_eq!(
        done["error"],
        "resumeUrl points at a private or local address"
    );
    assert_eq!(gateway.calls.load(Ordering::SeqCst), 0);
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
