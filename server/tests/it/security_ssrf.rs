//! SSRF through the resume URL, including DNS rebinding: the server resolves a name
//! once, checks every address and connects to exactly those (`services::outbound`).
//!
//! The name is served by a scripted DNS server on loopback (`OUTBOUND_DNS_SERVER`)
//! that answers a public address first and 127.0.0.1 to any later query, the classic
//! rebinding. So that no traffic ever leaves loopback, the public address is dialled
//! as 127.0.0.2 (`OUTBOUND_CONNECT_TO`, applied after the check) where a stand-in for
//! the public resume host listens on the same port as the "internal" service on
//! 127.0.0.1. A second resolution would reach the internal service; the test proves
//! there is none.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use mas_server::auth::Role;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::queues_resume::{Mode, RESUME, llm_env, start_gateway, submit, wait_status};
use crate::support::create_user;
use crate::support::net::ScriptedDns;
use crate::support::queues as qs;

/// A public address (example.com's) that is never contacted: it is dialled as 127.0.0.2.
const PUBLIC: &str = "93.184.215.14";

/// Serves `body` (or a redirect) on `addr`, counting requests.
async fn host(
    addr: SocketAddr,
    body: &'static str,
    redirect_to: Option<String>,
) -> Arc<AtomicUsize> {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(get(move || {
        let counter = counter.clone();
        let redirect_to = redirect_to.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            match redirect_to {
                Some(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
                None => body.into_response(),
            }
        }
    }));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind host");
    tokio::spawn(async move { axum::serve(listener, app).await });
    hits
}

/// The internal service on 127.0.0.1 and, on the same port, the public stand-in on 127.0.0.2.
async fn hosts(public_redirect: Option<&str>) -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let internal = host(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "INTERNAL-ONLY: cloud credentials",
        None,
    )
    .await;
    let public = host(
        SocketAddr::from(([127, 0, 0, 2], port)),
        RESUME,
        public_redirect.map(|p| format!("http://127.0.0.1:{port}{p}")),
    )
    .await;
    (port, internal, public)
}

async fn guarded_app(
    db: PgPool,
    gateway: &str,
    dns: &ScriptedDns,
) -> (crate::support::TestApp, String) {
    let dns_addr = dns.addr.to_string();
    let base = gateway.to_string();
    qs::spawn(db, move |env| {
        llm_env(&base)(env);
        env.remove("RESUME_URL_ALLOW_PRIVATE");
        env.insert("OUTBOUND_DNS_SERVER".into(), dns_addr);
        env.insert(
            "OUTBOUND_CONNECT_TO".into(),
            format!("{PUBLIC}:0=127.0.0.2:0"),
        );
    })
    .await
}

async fn analyse(app: &crate::support::TestApp, url: String, done: &[&str]) -> Value {
    let student = create_user(&app.state, Role::Student).await.token;
    let res = submit(app, &student, json!({ "resumeUrl": url })).await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(app, &student, &id, done).await
}

#[sqlx::test(migrations = false)]
async fn a_name_rebinding_to_loopback_is_fetched_from_the_checked_address_only(db: PgPool) {
    let (port, internal, public) = hosts(None).await;
    let dns = ScriptedDns::start(vec![
        PUBLIC.parse::<IpAddr>().unwrap(),
        "127.0.0.1".parse().unwrap(),
    ])
    .await;
    let (gateway_base, gateway) = start_gateway(Mode::Ok, Duration::ZERO).await;
    let (app, prefix) = guarded_app(db, &gateway_base, &dns).await;

    let done = analyse(
        &app,
        format!("http://resume.rebind.test:{port}/cv.txt"),
        &["completed", "failed"],
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        dns.a_queries(),
        vec!["resume.rebind.test".to_string()],
        "resolved exactly once"
    );
    assert_eq!(
        public.load(Ordering::SeqCst),
        1,
        "fetched from the checked address"
    );
    assert_eq!(
        internal.load(Ordering::SeqCst),
        0,
        "the rebound address (127.0.0.1) was never contacted"
    );
    let (_, request) = gateway.last_request.lock().await.clone().unwrap();
    let prompt = request["messages"][1]["content"].as_str().unwrap();
    assert!(
        prompt.contains(RESUME) && !prompt.contains("INTERNAL-ONLY"),
        "{prompt}"
    );
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn a_name_resolving_to_loopback_is_refused_at_connect_time(db: PgPool) {
    let (port, internal, public) = hosts(None).await;
    let dns = ScriptedDns::start(vec!["127.0.0.1".parse().unwrap()]).await;
    let (gateway_base, gateway) = start_gateway(Mode::Ok, Duration::ZERO).await;
    let (app, prefix) = guarded_app(db, &gateway_base, &dns).await;

    let done = analyse(
        &app,
        format!("http://internal.rebind.test:{port}/cv.txt"),
        &["completed", "failed"],
    )
    .await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(
        done["error"],
        "resumeUrl points at a private or local address"
    );
    assert_eq!(done["attempts"], 1, "a refusal is not retried: {done}");
    assert_eq!(
        internal.load(Ordering::SeqCst) + public.load(Ordering::SeqCst),
        0
    );
    assert_eq!(gateway.calls.load(Ordering::SeqCst), 0);
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn redirects_to_internal_addresses_are_not_followed(db: PgPool) {
    let (port, internal, public) = hosts(Some("/latest/meta-data/")).await;
    let dns = ScriptedDns::start(vec![PUBLIC.parse().unwrap()]).await;
    let (gateway_base, gateway) = start_gateway(Mode::Ok, Duration::ZERO).await;
    let (app, prefix) = guarded_app(db, &gateway_base, &dns).await;

    let done = analyse(
        &app,
        format!("http://redirect.rebind.test:{port}/cv.txt"),
        &["completed", "failed"],
    )
    .await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed"),
        "{done}"
    );
    assert_eq!(public.load(Ordering::SeqCst), 1);
    assert_eq!(
        internal.load(Ordering::SeqCst),
        0,
        "the redirect target was not fetched"
    );
    assert_eq!(gateway.calls.load(Ordering::SeqCst), 0);
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
