//! The operator's connection drain on the internal listener, with real clients:
//! socket.io-client (Node) and python-socketio over both transports, terminal relays
//! (tokio-tungstenite), and chat re-sends with `clientMessageId` across a reconnect.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::agent::Agent;
use crate::support::create_user;
use crate::support::realtime::{meeting, realtime_env, unique_prefix};
use futures::SinkExt;
use mas_server::auth::Role;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;

use crate::support::TestApp;
use crate::support::app::with_internal_listener;
use crate::support::relay::{closed_with, next, open, paired};

const CONTROL_TOKEN: &str = "control-token-for-tests-0123456789";

/// A server with its internal listener on loopback; returns it and the internal base URL.
async fn spawn(
    db: PgPool,
    prefix: &str,
    adjust: impl FnOnce(&mut HashMap<String, String>),
) -> (TestApp, String) {
    with_internal_listener(db, |env| {
        realtime_env(prefix, env);
        adjust(env);
    })
    .await
}

async fn control(
    app: &TestApp,
    internal: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.post(format!("{internal}{path}"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

async fn drain(app: &TestApp, internal: &str, seconds: u64) -> Value {
    let (status, body) = control(
        app,
        internal,
        "/internal/connections/drain",
        Some(CONTROL_TOKEN),
        Some(json!({ "reconnectWithinSeconds": seconds })),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body
}

async fn resume(app: &TestApp, internal: &str) {
    let (status, body) = control(
        app,
        internal,
        "/internal/connections/resume",
        Some(CONTROL_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "success": true, "data": { "draining": false } })
    );
}

/// A new Engine.IO handshake (no sid), as socket.io-client's polling transport sends it.
async fn handshake(app: &TestApp) -> (u16, String) {
    let res = app
        .client
        .get(app.url("/socket.io/?EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn health(app: &TestApp) -> u16 {
    app.client
        .get(app.url("/api/health"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Connects with socket.io-client's own reconnection on (fast backoff).
async fn connect_reconnecting(agent: &mut Agent, app: &TestApp, token: &str, transports: &[&str]) {
    agent
        .send(json!({ "cmd": "connect", "url": app.base, "token": token, "transports": transports, "reconnection": true }))
        .await;
    let outcome = agent
        .expect("connected", |v| {
            v["type"] == "connected" || v["type"] == "connect_error"
        })
        .await;
    assert_eq!(outcome["type"], "connected", "[{}] {outcome}", agent.name);
}

#[sqlx::test(migrations = false)]
async fn control_endpoints_need_the_control_token(db: PgPool) {
    let prefix = unique_prefix("ctl-off");
    let db_b = sqlx::postgres::PgPoolOptions::new()
        .connect_with((*db.connect_options()).clone())
        .await
        .unwrap();
    let (off, off_internal) = spawn(db, &prefix, |_| {}).await;
    for path in [
        "/internal/connections/drain",
        "/internal/connections/resume",
    ] {
        let (status, body) = control(&off, &off_internal, path, Some("anything"), None).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(
            body["error"]["message"],
            "control endpoints are disabled: CONTROL_TOKEN is not set"
        );
        assert_eq!(body["success"], false);
    }

    let (app, internal) = spawn(db_b, &unique_prefix("ctl-on"), |env| {
        env.insert("CONTROL_TOKEN".into(), CONTROL_TOKEN.into());
    })
    .await;
    let drain_path = "/internal/connections/drain";
    for token in [None, Some("wrong"), Some(&CONTROL_TOKEN[1..])] {
        let (status, body) = control(&app, &internal, drain_path, token, None).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    }
    let (status, _) = control(&app, &internal, "/internal/connections/resume", None, None).await;
    assert_eq!(status, 401);
    for bad in [
        json!({ "reconnectWithinSeconds": 0 }),
        json!({ "reconnectWithinSeconds": 601 }),
    ] {
        let (status, body) =
            control(&app, &internal, drain_path, Some(CONTROL_TOKEN), Some(bad)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    }
    // Nothing connected: nothing to move; the default window applies to an empty body.
    let (status, body) = control(&app, &internal, drain_path, Some(CONTROL_TOKEN), None).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body,
        json!({ "success": true, "data": { "sockets": 0, "relays": 0 } })
    );
    resume(&app, &internal).await;

    // The internal listener serves only these two: the API is not reachable there.
    let res = app
        .client
        .get(format!("{internal}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // And the public port does not serve the control endpoints.
    let res = app
        .client
        .post(app.url(drain_path))
        .bearer_auth(CONTROL_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn pairing(app: &TestApp, bearer: &str) -> String {
    let res = app
        .client
        .post(app.url("/api/terminal/pairings"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["data"]["token"].as_str().unwrap().to_string()
}

#[sqlx::test(migrations = false)]
async fn drain_moves_clients_and_relays_then_resume_reopens(db: PgPool) {
    let prefix = unique_prefix("drain");
    let db_b = sqlx::postgres::PgPoolOptions::new()
        .connect_with((*db.connect_options()).clone())
        .await
        .unwrap();
    let with_token = |env: &mut HashMap<String, String>| {
        env.insert("CONTROL_TOKEN".into(), CONTROL_TOKEN.into());
    };
    let (a, internal) = spawn(db, &prefix, with_token).await;
    // The other color's replica: untouched by A's drain.
    let (b, _) = spawn(db_b, &prefix, with_token).await;
    let f = meeting(&a).await;

    let mut ws_client = Agent::node("node-websocket").await;
    connect_reconnecting(&mut ws_client, &a, &f.mentor.token, &["websocket"]).await;
    let mut poll_client = Agent::node("node-polling").await;
    connect_reconnecting(&mut poll_client, &a, &f.student.token, &["polling"]).await;
    // Upgraded from polling to websocket: its websocket runs on a second connection.
    let mut upgraded = Agent::python("python-upgraded").await;
    upgraded
        .connect_ok(&a.base, &f.admin.token, &["polling", "websocket"])
        .await;
    let mut elsewhere = Agent::node("on-b").await;
    elsewhere
        .connect_ok(&b.base, &f.outsider.token, &["websocket"])
        .await;

    let student = create_user(&a.state, Role::Student).await;
    let token = pairing(&a, &student.token).await;
    let (mut browser, mut cli) = paired(&a, &b, &token).await;

    let started = Instant::now();
    let body = drain(&a, &internal, 2).await;
    assert_eq!(
        body,
        json!({ "success": true, "data": { "sockets": 3, "relays": 1 } })
    );

    // Drained, A stays healthy (the instant-rollback target) but refuses new sessions.
    assert_eq!(health(&a).await, 200);
    let (status, text) = handshake(&a).await;
    assert_eq!(status, 503, "{text}");
    let refusal: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        refusal,
        json!({ "success": false, "error": { "code": "SERVICE_UNAVAILABLE", "message": "server is draining, reconnect" } })
    );
    assert_eq!(
        handshake(&b).await.0,
        200,
        "the other replica takes new sessions"
    );

    // Each client is told, then its transport closes ("transport …": it reconnects itself).
    for agent in [&mut ws_client, &mut poll_client, &mut upgraded] {
        assert_eq!(agent.event("server:draining").await["reconnect"], true);
        let gone = agent
            .expect("disconnect", |v| v["type"] == "disconnect")
            .await;
        let reason = gone["reason"].as_str().unwrap_or_default().to_string();
        assert!(reason.starts_with("transport"), "[{}] {gone}", agent.name);
    }
    // Spread over the window, not all at once: 4 targets start at 0, ½, 1 and 1½ s,
    // so the last socket goes after at least 1 s plus its notice.
    let sockets_moved = started.elapsed();
    assert!(
        sockets_moved >= Duration::from_millis(1800),
        "moved too early for a 2 s spread: {sockets_moved:?}"
    );
    assert_eq!(
        closed_with(&mut browser).await.0,
        1012,
        "relay on the drained replica"
    );
    assert_eq!(closed_with(&mut cli).await.0, 1012, "its peer is told too");
    let moved_in = started.elapsed();
    assert!(
        moved_in < Duration::from_secs(2 + 1 + 3),
        "everything moved within the window (+ notice): {moved_in:?}"
    );
    assert!(
        !elsewhere
            .sees(Duration::from_millis(300), |v| v["event"]
                == "server:draining")
            .await,
        "the other replica's clients stay"
    );

    // socket.io-client keeps retrying the refused handshake (503) by itself.
    ws_client
        .expect("retry refused", |v| v["type"] == "connect_error")
        .await;
    assert!(
        !ws_client
            .sees(Duration::from_millis(700), |v| v["type"] == "connected")
            .await,
        "no new session on a drained replica"
    );
    // New relays are sent away before they claim a seat.
    let mut late = open(&a, &token, "browser").await;
    assert_eq!(
        closed_with(&mut late).await,
        (
            1012,
            "server is draining, reconnect with the same token".into()
        )
    );
    // The relay's seats were released: both sides come back elsewhere with the token.
    let (mut browser, mut cli) = paired(&b, &b, &token).await;
    cli.send(Message::binary(b"$ ".to_vec())).await.unwrap();
    assert_eq!(next(&mut browser).await, Message::binary(b"$ ".to_vec()));

    // Resume (the color goes live again): the retrying clients get in.
    resume(&a, &internal).await;
    for agent in [&mut ws_client, &mut poll_client] {
        agent
            .expect("reconnected", |v| v["type"] == "connected")
            .await;
    }
    assert_eq!(handshake(&a).await.0, 200);
    let ack = ws_client
        .emit("meeting:join", json!({ "meetingId": f.meeting_id }))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");

    for agent in [ws_client, poll_client, upgraded, elsewhere] {
        agent.exit().await;
    }
}

#[sqlx::test(migrations = false)]
async fn chat_resent_after_a_reconnect_is_stored_and_broadcast_once(db: PgPool) {
    let prefix = unique_prefix("resend");
    let db_b = sqlx::postgres::PgPoolOptions::new()
        .connect_with((*db.connect_options()).clone())
        .await
        .unwrap();
    let with_token = |env: &mut HashMap<String, String>| {
        env.insert("CONTROL_TOKEN".into(), CONTROL_TOKEN.into());
    };
    let (a, internal) = spawn(db, &prefix, with_token).await;
    // The mentor sits on another replica, which is not drained.
    let (b, _) = spawn(db_b, &prefix, with_token).await;
    let f = meeting(&a).await;
    let m = f.meeting_id.to_string();

    let mut mentor = Agent::python("mentor").await;
    mentor
        .connect_ok(&b.base, &f.mentor.token, &["websocket"])
        .await;
    mentor.emit("meeting:join", json!({ "meetingId": m })).await;
    let mut student = Agent::node("student").await;
    connect_reconnecting(&mut student, &a, &f.student.token, &["websocket"]).await;
    student
        .emit("meeting:join", json!({ "meetingId": m }))
        .await;

    let first = student
        .emit(
            "chat:send",
            json!({ "meetingId": m, "body": "hello", "clientMessageId": "msg-1" }),
        )
        .await;
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["message"]["clientMessageId"], "msg-1");
    let live = mentor.event("chat:message").await;
    assert_eq!(live["id"], first["message"]["id"]);
    assert_eq!(live["clientMessageId"], "msg-1");

    // The connection drops before the client saw an ack (here: a drain), it comes
    // back, rejoins and re-sends the unacked message with the same id.
    drain(&a, &internal, 1).await;
    student.event("server:draining").await;
    student
        .expect("disconnect", |v| v["type"] == "disconnect")
        .await;
    resume(&a, &internal).await;
    student
        .expect("reconnected", |v| v["type"] == "connected")
        .await;
    student
        .emit("meeting:join", json!({ "meetingId": m }))
        .await;
    let again = student
        .emit(
            "chat:send",
            json!({ "meetingId": m, "body": "hello", "clientMessageId": "msg-1" }),
        )
        .await;
    assert_eq!(again["ok"], true, "{again}");
    assert_eq!(
        again["message"], first["message"],
        "the stored message, unchanged"
    );
    assert!(
        !mentor
            .sees(Duration::from_millis(700), |v| v["event"] == "chat:message")
            .await,
        "a re-send is not broadcast again"
    );

    // The id is per sender: the mentor's own "msg-1" is another message.
    let mentors = mentor
        .emit(
            "chat:send",
            json!({ "meetingId": m, "body": "hi", "clientMessageId": "msg-1" }),
        )
        .await;
    assert_ne!(mentors["message"]["id"], first["message"]["id"]);
    // Without an id every send is a new message.
    for _ in 0..2 {
        let ack = student
            .emit("chat:send", json!({ "meetingId": m, "body": "no id" }))
            .await;
        assert!(ack["message"]["clientMessageId"].is_null(), "{ack}");
    }
    for bad in ["", "has space", &"x".repeat(65)] {
        let ack = student
            .emit(
                "chat:send",
                json!({ "meetingId": m, "body": "x", "clientMessageId": bad }),
            )
            .await;
        assert_eq!(ack["error"]["code"], "VALIDATION_ERROR", "{bad:?}: {ack}");
    }

    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "select body, client_message_id from meeting_messages where meeting_id = $1 order by seq",
    )
    .bind(f.meeting_id)
    .fetch_all(&a.state.db)
    .await
    .unwrap();
    let with_id = |id: &str| {
        rows.iter()
            .filter(|(_, c)| c.as_deref() == Some(id))
            .count()
    };
    assert_eq!(with_id("msg-1"), 2, "one per sender: {rows:?}");
    assert_eq!(rows.len(), 4, "{rows:?}");

    // History carries the client id too.
    let res = a
        .client
        .get(a.url(&format!("/api/meetings/{m}/messages")))
        .bearer_auth(&f.student.token)
        .send()
        .await
        .unwrap();
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["data"]["items"][0]["clientMessageId"], "msg-1");
    assert_eq!(page["data"]["items"][0]["id"], first["message"]["id"]);

    mentor.exit().await;
    student.exit().await;
}

#[sqlx::test(migrations = false)]
async fn concurrent_resends_store_one_message(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let f = meeting(&app).await;
    let sends = (0..8).map(|_| {
        mas_server::services::realtime::chat::store(
            &app.state.db,
            f.meeting_id,
            f.student.id,
            "same",
            Some("dup-1"),
        )
    });
    let results = futures::future::join_all(sends).await;
    let stored: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(stored.iter().filter(|s| s.is_new).count(), 1);
    assert!(stored.iter().all(|s| s.message.id == stored[0].message.id));
}
