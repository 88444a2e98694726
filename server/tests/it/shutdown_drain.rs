//! SIGTERM and the endpoint-propagation race, on the real binary: `/api/health`
//! turns 503 at once while every other request keeps succeeding for
//! `SHUTDOWN_DRAIN_SECONDS` (the ingress may still send them), then the process
//! stops accepting and exits 0.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;

use crate::support::app::free_port;

const WINDOW: Duration = Duration::from_secs(3);

#[derive(Debug)]
struct Sent {
    started: Instant,
    ok: bool,
    detail: String,
}

/// Requests `url` back to back until `stop`; `fresh` opens a new connection each time
/// (as a client arriving through the ingress would), otherwise keep-alive.
async fn hammer(url: String, fresh: bool, stop: Arc<AtomicBool>) -> Vec<Sent> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(5));
    if fresh {
        builder = builder.pool_max_idle_per_host(0);
    }
    let client = builder.build().unwrap();
    let mut sent = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let (ok, detail) = match client.get(&url).send().await {
            Ok(res) => (res.status().is_success(), res.status().to_string()),
            Err(e) => (false, e.to_string()),
        };
        sent.push(Sent {
            started,
            ok,
            detail,
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sent
}

#[sqlx::test(migrations = false)]
async fn sigterm_keeps_serving_through_the_drain_window_then_exits_0(db: PgPool) {
    mas_server::startup::migrate(&db).await.unwrap();
    let name = db.connect_options().get_database().unwrap().to_string();
    let root = std::env::var("DATABASE_URL").expect("DATABASE_URL is not set");
    let port = free_port();
    let mut env = crate::support::app::test_env();
    env.insert(
        "DATABASE_URL".into(),
        format!("{}/{name}", root.rsplit_once('/').unwrap().0),
    );
    env.insert("HOST".into(), "127.0.0.1".into());
    env.insert("PORT".into(), port.to_string());
    env.insert("RUST_LOG".into(), "warn".into());
    env.insert(
        "SHUTDOWN_DRAIN_SECONDS".into(),
        WINDOW.as_secs().to_string(),
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mas-server"))
        .env_clear()
        .envs(&env)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let health = |client: reqwest::Client| {
        let url = format!("{base}/api/health");
        async move {
            let res = client.get(url).send().await.ok()?;
            let status = res.status().as_u16();
            let body: Value = res.json().await.ok()?;
            Some((status, body))
        }
    };
    let mut up = false;
    for _ in 0..150 {
        if matches!(health(client.clone()).await, Some((200, _))) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server did not come up");

    let stop = Arc::new(AtomicBool::new(false));
    let loops = [
        tokio::spawn(hammer(format!("{base}/api/colleges"), false, stop.clone())),
        tokio::spawn(hammer(
            format!("{base}/api/health/live"),
            true,
            stop.clone(),
        )),
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;

    let pid = child.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let term = Instant::now();

    // Health fails at once and keeps failing through the window.
    let mut health_checks = 0;
    while term.elapsed() < WINDOW - Duration::from_millis(500) {
        let (status, body) = health(client.clone())
            .await
            .expect("health answers during the drain window");
        if term.elapsed() > Duration::from_millis(200) {
            assert_eq!(status, 503, "{body}");
            assert_eq!(body["status"], "draining");
            assert_eq!(body["success"], false);
            health_checks += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(health_checks >= 10, "{health_checks}");

    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after the window and the grace period")
        .unwrap();
    let exited = term.elapsed();
    stop.store(true, Ordering::SeqCst);
    assert!(status.success(), "{status}");
    assert!(
        exited >= WINDOW,
        "kept serving for SHUTDOWN_DRAIN_SECONDS: exited after {exited:?}"
    );

    for (i, handle) in loops.into_iter().enumerate() {
        let sent = handle.await.unwrap();
        // Requests started inside the window (minus a margin for the one in flight
        // when it closes) all succeeded.
        let in_window: Vec<&Sent> = sent
            .iter()
            .filter(|s| s.started >= term && s.started < term + WINDOW - Duration::from_millis(300))
            .collect();
        let failed: Vec<String> = in_window
            .iter()
            .filter(|s| !s.ok)
            .map(|s| format!("{} at {:?}", s.detail, s.started - term))
            .collect();
        assert!(
            failed.is_empty(),
            "loop {i}: failures in the window: {failed:?}"
        );
        assert!(
            in_window.len() >= 20,
            "loop {i}: only {} requests in the window",
            in_window.len()
        );
        eprintln!(
            "loop {i}: {} requests succeeded during the {WINDOW:?} drain window ({} in total)",
            in_window.len(),
            sent.len()
        );
        // After the exit nothing answers.
        let last = sent.last().unwrap();
        assert!(
            !last.ok || last.started < term + WINDOW + Duration::from_secs(1),
            "{last:?}"
        );
    }
    assert!(
        client
            .get(format!("{base}/api/health/live"))
            .send()
            .await
            .is_err(),
        "the listener is closed"
    );
}
