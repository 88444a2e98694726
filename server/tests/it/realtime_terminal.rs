//! Terminal relay: browser and CLI ends (tokio-tungstenite) on different
//! server instances, paired through Redis pub/sub.

use std::time::Duration;

use futures::SinkExt;
use mas_server::auth::Role;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;

use crate::support::app::ServerProcess;
use crate::support::realtime::{realtime_env, unique_prefix};
use crate::support::relay::{closed_with, next, notice, open, paired};
use crate::support::{TestApp, create_user};

async fn instances(db: PgPool, test: &str, ttl: &str) -> (TestApp, TestApp) {
    let prefix = unique_prefix(test);
    let adjust = |env: &mut std::collections::HashMap<String, String>| {
        realtime_env(&prefix, env);
        env.insert("TERMINAL_PAIRING_TTL_SECONDS".into(), ttl.into());
    };
    let a = TestApp::spawn_with(db.clone(), adjust).await;
    let b = TestApp::spawn_with(db, adjust).await;
    (a, b)
}

async fn pairing_token(app: &TestApp, bearer: &str) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/api/terminal/pairings"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[sqlx::test(migrations = false)]
async fn browser_and_cli_on_different_instances_relay_both_ways(db: PgPool) {
    let (a, b) = instances(db, "term-relay", "300").await;
    let student = create_user(&a.state, Role::Student).await;
    let mentor = create_user(&a.state, Role::Mentor).await;

    let (status, _) = pairing_token(&a, &mentor.token).await;
    assert_eq!(status, 403, "only students pair terminals");
    let res = a
        .client
        .post(a.url("/api/terminal/pairings"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let (status, body) = pairing_token(&a, &student.token).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["relayPath"], "/api/terminal/relay");
    let token = body["data"]["token"].as_str().unwrap().to_string();

    let (mut browser, mut cli) = paired(&a, &b, &token).await;

    // Keystrokes browser → CLI (binary), resize as text JSON.
    browser
        .send(Message::binary(b"ls -la\r".to_vec()))
        .await
        .unwrap();
    browser
        .send(Message::text(r#"{"type":"resize","cols":120,"rows":40}"#))
        .await
        .unwrap();
    assert_eq!(next(&mut cli).await, Message::binary(b"ls -la\r".to_vec()));
    assert_eq!(
        next(&mut cli).await,
        Message::text(r#"{"type":"resize","cols":120,"rows":40}"#)
    );

    // PTY output CLI → browser, including non-UTF-8 bytes.
    let output: Vec<u8> = vec![0x1b, b'[', b'3', b'2', b'm', 0xff, 0x00, b'o', b'k'];
    cli.send(Message::binary(output.clone())).await.unwrap();
    assert_eq!(next(&mut browser).await, Message::binary(output));
    let big = vec![b'x'; 256 * 1024];
    cli.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(next(&mut browser).await, Message::binary(big));

    // The token was used: a third party cannot take either seat.
    let mut intruder = open(&b, &token, "browser").await;
    assert_eq!(closed_with(&mut intruder).await.0, 4009);
    let mut intruder = open(&a, &token, "cli").await;
    let (code, reason) = closed_with(&mut intruder).await;
    assert_eq!(
        (code, reason.as_str()),
        (4009, "pairing token already used")
    );

    // One side going away closes the other cleanly.
    cli.close(None).await.unwrap();
    let (code, reason) = closed_with(&mut browser).await;
    assert_eq!(
        (code, reason.as_str()),
        (1000, "the other side disconnected")
    );
}

#[sqlx::test(migrations = false)]
async fn bad_expired_and_malformed_tokens_are_refused(db: PgPool) {
    let (a, b) = instances(db, "term-bad", "1").await;
    let student = create_user(&a.state, Role::Student).await;

    let mut ws = open(&a, "0000not-a-real-token", "cli").await;
    assert_eq!(
        closed_with(&mut ws).await,
        (4001, "unknown pairing token".into())
    );

    let url = format!("ws://{}/api/terminal/relay", a.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(closed_with(&mut ws).await.0, 4000);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::text(r#"{"token":"x","role":"server"}"#))
        .await
        .unwrap();
    assert_eq!(closed_with(&mut ws).await.0, 4000);

    // Nobody on the other end: the lone side is told when the token runs out.
    let (_, body) = pairing_token(&a, &student.token).await;
    let lonely = body["data"]["token"].as_str().unwrap().to_string();
    let mut ws = open(&b, &lonely, "browser").await;
    assert_eq!(notice(&mut ws).await, "waiting");
    assert_eq!(closed_with(&mut ws).await.0, 4008);

    let (_, body) = pairing_token(&a, &student.token).await;
    let token = body["data"]["token"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut ws = open(&b, &token, "cli").await;
    assert_eq!(
        closed_with(&mut ws).await,
        (4003, "pairing token expired".into())
    );
}

#[sqlx::test(migrations = false)]
async fn draining_replica_asks_both_sides_to_reconnect(db: PgPool) {
    let (a, b) = instances(db, "term-drain", "300").await;
    let student = create_user(&a.state, Role::Student).await;
    let (_, body) = pairing_token(&a, &student.token).await;
    let token = body["data"]["token"].as_str().unwrap().to_string();

    let (mut browser, mut cli) = paired(&a, &b, &token).await;
    let stopping = tokio::spawn(a.shutdown());
    assert_eq!(
        closed_with(&mut browser).await.0,
        1012,
        "service restart on the draining replica"
    );
    assert_eq!(
        closed_with(&mut cli).await.0,
        1012,
        "the peer is told to reconnect too"
    );
    stopping.await.unwrap().unwrap();

    // Both reconnect with the same token to the surviving replica.
    let (mut browser, mut cli) = paired(&b, &b, &token).await;
    cli.send(Message::binary(b"$ ".to_vec())).await.unwrap();
    assert_eq!(next(&mut browser).await, Message::binary(b"$ ".to_vec()));
}

#[sqlx::test(migrations = false)]
async fn a_side_dropping_or_its_replica_dying_ends_the_other_side(db: PgPool) {
    let prefix = unique_prefix("term-drop");
    let a = TestApp::spawn_with(db.clone(), |env| realtime_env(&prefix, env)).await;
    let student = create_user(&a.state, Role::Student).await;

    // The CLI's TCP connection just vanishes (no close frame).
    let (_, body) = pairing_token(&a, &student.token).await;
    let token = body["data"]["token"].as_str().unwrap().to_string();
    let (mut browser, cli) = paired(&a, &a, &token).await;
    drop(cli);
    assert_eq!(
        closed_with(&mut browser).await,
        (1000, "the other side disconnected".into())
    );

    // The CLI's whole replica dies (SIGKILL, nothing is announced): the browser
    // learns it as soon as it sends (no subscriber on the peer channel).
    let mut b = ServerProcess::spawn(&db, |env| realtime_env(&prefix, env)).await;
    let b_app_base = b.base.clone();
    let (_, body) = pairing_token(&a, &student.token).await;
    let token = body["data"]["token"].as_str().unwrap().to_string();
    let mut browser = open(&a, &token, "browser").await;
    assert_eq!(notice(&mut browser).await, "waiting");
    let relay = format!(
        "{}/api/terminal/relay",
        b_app_base.replace("http://", "ws://")
    );
    let (mut cli, _) = tokio_tungstenite::connect_async(relay).await.unwrap();
    cli.send(Message::text(
        json!({ "token": token, "role": "cli" }).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(notice(&mut cli).await, "waiting");
    assert_eq!(notice(&mut cli).await, "paired");
    assert_eq!(notice(&mut browser).await, "paired");
    b.child.start_kill().unwrap();
    b.child.wait().await.unwrap();
    browser
        .send(Message::binary(b"anyone there?".to_vec()))
        .await
        .unwrap();
    assert_eq!(closed_with(&mut browser).await.0, 4010);

    // Both seats were freed: the pair resumes on a surviving replica.
    let (mut browser, mut cli) = paired(&a, &a, &token).await;
    browser
        .send(Message::binary(b"back".to_vec()))
        .await
        .unwrap();
    assert_eq!(next(&mut cli).await, Message::binary(b"back".to_vec()));
}
