//! The real `mas-terminal` binary paired with a browser-side WebSocket through
//! two server instances: shell output reaches the browser, keystrokes reach the
//! shell, and the shell exiting closes the browser side.

use std::collections::HashMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mas_server::auth::Role;
use mas_server::config::Config;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn env_for(prefix: &str) -> HashMap<String, String> {
    let redis = std::env::var("REDIS_URL")
        .expect("REDIS_URL is not set: run the tests through scripts/test");
    let database = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the tests through scripts/test");
    let host = redis
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1:6379")
        .to_string();
    [
        ("APP_ENV", "test".to_string()),
        ("DATABASE_URL", database),
        ("REDIS_URL", format!("redis://{host}/4")),
        (
            "JWT_SECRET",
            "cli-test-secret-cli-test-secret-cli!!".to_string(),
        ),
        ("ADMIN_EMAIL", "admin@test.local".to_string()),
        ("ADMIN_PASSWORD", "admin-password-1".to_string()),
        ("SUPERADMIN_EMAIL", "root@test.local".to_string()),
        ("SUPERADMIN_PASSWORD", "root-password-1".to_string()),
        ("REALTIME_REDIS_PREFIX", prefix.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn start(
    db: PgPool,
    prefix: &str,
) -> (String, mas_server::state::AppState, CancellationToken) {
    let config = Config::from_map(&env_for(prefix)).unwrap();
    mas_server::startup::migrate(&db).await.unwrap();
    mas_server::startup::seed(&db, &config).await.unwrap();
    let redis = mas_server::startup::connect_redis(&config).await.unwrap();
    let stop = CancellationToken::new();
    let state = mas_server::build_state(config, db, redis, CancellationToken::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stopped = stop.clone();
    tokio::spawn(mas_server::serve(listener, state.clone(), async move {
        stopped.cancelled().await
    }));
    (base, state, stop)
}

#[sqlx::test(migrations = false)]
async fn cli_shell_is_driven_from_the_browser_side(db: PgPool) {
    let prefix = format!("test-rt-cli-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let (a, state, _stop_a) = start(db.clone(), &prefix).await;
    let (b, _, _stop_b) = start(db, &prefix).await;

    let student = Uuid::new_v4();
    sqlx::query("insert into users (id, email, password_hash, name, role) values ($1, $2, 'x', 'S', 'student')")
        .bind(student)
        .bind(format!("s-{student}@test.local"))
        .execute(&state.db)
        .await
        .unwrap();
    let bearer = state
        .jwt
        .issue(
            student,
            Role::Student,
            "s@test.local",
            Duration::from_secs(600),
        )
        .unwrap();
    let body: Value = reqwest::Client::new()
        .post(format!("{a}/api/terminal/pairings"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["data"]["token"].as_str().unwrap().to_string();

    let mut cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_mas-terminal"))
        .args(["--url", &a, "--token", &token, "--shell", "/bin/sh"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let relay = format!("{}/api/terminal/relay", b.replace("http://", "ws://"));
    let (mut browser, _) = tokio_tungstenite::connect_async(relay).await.unwrap();
    browser
        .send(Message::text(
            json!({ "token": token, "role": "browser" }).to_string(),
        ))
        .await
        .unwrap();
    browser
        .send(Message::text(r#"{"type":"resize","cols":100,"rows":30}"#))
        .await
        .unwrap();
    browser
        .send(Message::binary(
            b"stty size; echo hello-$((6*7))\n".to_vec(),
        ))
        .await
        .unwrap();

    let mut screen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !(screen.contains("hello-42") && screen.contains("30 100")) {
        let frame = tokio::time::timeout_at(deadline, browser.next())
            .await
            .unwrap_or_else(|_| panic!("no shell output; screen so far: {screen:?}"))
            .expect("open")
            .expect("frame");
        if let Message::Binary(bytes) = frame {
            screen.push_str(&String::from_utf8_lossy(&bytes));
        }
    }

    browser
        .send(Message::binary(b"exit\n".to_vec()))
        .await
        .unwrap();
    let close = loop {
        match tokio::time::timeout_at(deadline, browser.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("unexpected end: {other:?}"),
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1000));
    let status = tokio::time::timeout(Duration::from_secs(10), cli.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}
