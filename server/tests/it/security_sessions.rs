//! Long-lived connections follow their session: real Socket.IO clients
//! (socket.io-client on Node, python-socketio) and relay WebSockets are told when
//! their access token expires, may send a new one (`auth:refresh`), and are
//! disconnected (deactivation) or downgraded (demotion) by an admin change made on
//! ANOTHER replica, through the `account:changed` channel. The same channel
//! invalidates the other replica's in-process account cache at once.

use std::time::{Duration, Instant};

use mas_server::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::agent::Agent;
use crate::support::realtime::{meeting, realtime_env, two_instances, unique_prefix};
use crate::support::relay::{closed_with, next, paired};
use crate::support::users::user_by_email;
use crate::support::{SUPERADMIN_EMAIL, TestApp, TestUser, create_user};

/// An access token of `user` that expires after `ttl`.
fn short_token(app: &TestApp, user: &TestUser, role: Role, ttl: Duration) -> String {
    app.state
        .jwt
        .issue(user.id, role, &user.email, ttl)
        .expect("issue short token")
}

async fn single(db: PgPool, test: &str, grace: &str) -> TestApp {
    let prefix = unique_prefix(test);
    TestApp::spawn_with(db, |env| {
        realtime_env(&prefix, env);
        env.insert("SESSION_REAUTH_GRACE_SECONDS".into(), grace.into());
    })
    .await
}

#[sqlx::test(migrations = false)]
async fn an_expired_socket_is_told_and_a_refresh_keeps_it(db: PgPool) {
    let app = single(db, "sess-refresh", "3").await;
    let m = meeting(&app).await;
    let token = short_token(&app, &m.student, Role::Student, Duration::from_secs(6));
    let mut student = Agent::node("student").await;
    student.connect_ok(&app.base, &token, &["websocket"]).await;
    let joined = student
        .emit("meeting:join", json!({"meetingId": m.meeting_id}))
        .await;
    assert_eq!(joined["ok"], true, "{joined}");

    let expired = student.event("auth:expired").await;
    assert_eq!(expired["graceSeconds"], 3, "{expired}");
    assert!(expired["disconnectAt"].is_string() && expired["expiredAt"].is_string());
    // While expired, events are refused until a new token comes.
    let refused = student
        .emit(
            "chat:send",
            json!({"meetingId": m.meeting_id, "body": "hi"}),
        )
        .await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["error"]["code"], "UNAUTHORIZED");

    // Another account's token is not accepted as a refresh.
    let wrong = student
        .emit("auth:refresh", json!({"token": m.mentor.token}))
        .await;
    assert_eq!(wrong["error"]["code"], "FORBIDDEN", "{wrong}");
    let renewed = student
        .emit("auth:refresh", json!({"token": m.student.token}))
        .await;
    assert_eq!(renewed["ok"], true, "{renewed}");
    assert_eq!(renewed["role"], "student");
    let sent = student
        .emit(
            "chat:send",
            json!({"meetingId": m.meeting_id, "body": "still here"}),
        )
        .await;
    assert_eq!(sent["ok"], true, "{sent}");
    // Past the grace window the socket is still connected.
    assert!(
        !student
            .sees(Duration::from_secs(4), |v| v["type"] == "disconnect")
            .await,
        "a refreshed session is not disconnected"
    );
    student.exit().await;
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn an_expired_socket_without_a_refresh_is_disconnected(db: PgPool) {
    let app = single(db, "sess-expire", "1").await;
    let user = create_user(&app.state, Role::Mentor).await;
    let token = short_token(&app, &user, Role::Mentor, Duration::from_secs(1));
    let mut client = Agent::python("mentor").await;
    client.connect_ok(&app.base, &token, &["websocket"]).await;
    let started = Instant::now();
    client.event("auth:expired").await;
    let revoked = client.event("auth:revoked").await;
    assert_eq!(revoked["reason"], "expired");
    client
        .expect("disconnect", |v| v["type"] == "disconnect")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    client.exit().await;
    app.shutdown().await.unwrap();
}

async fn patch_user(app: &TestApp, admin: &str, id: uuid::Uuid, body: Value) {
    let (status, reply) = app
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{id}"),
            Some(admin),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
}

#[sqlx::test(migrations = false)]
async fn changes_made_on_one_replica_reach_sockets_and_caches_on_the_other(db: PgPool) {
    let (a, b, _) = two_instances(db, "sess-accounts").await;
    let m = meeting(&a).await;
    let root = user_by_email(&a.state, SUPERADMIN_EMAIL).await;

    // Everyone sits on replica B; the mentor watches from replica A.
    let mut student = Agent::node("student").await;
    student
        .connect_ok(&b.base, &m.student.token, &["websocket"])
        .await;
    let mut admin = Agent::node("admin").await;
    admin
        .connect_ok(&b.base, &m.admin.token, &["polling"])
        .await;
    let mut mentor = Agent::python("mentor").await;
    mentor
        .connect_ok(&a.base, &m.mentor.token, &["websocket"])
        .await;
    for agent in [&mut student, &mut admin, &mut mentor] {
        let ack = agent
            .emit("meeting:join", json!({"meetingId": m.meeting_id}))
            .await;
        assert_eq!(ack["ok"], true, "[{}] {ack}", agent.name);
    }
    // B has the student cached as active now.
    let (status, _) = b
        .call(Method::GET, "/api/auth/me", Some(&m.student.token), None)
        .await;
    assert_eq!(status, 200);

    // Demotion on A: the admin's socket on B loses the meeting it only had as an admin.
    let started = Instant::now();
    patch_user(&a, &root.token, m.admin.id, json!({"role": "mentor"})).await;
    let updated = admin.event("auth:updated").await;
    assert_eq!(updated["role"], "mentor");
    let removed = admin.event("meeting:removed").await;
    assert_eq!(removed["meetingId"], m.meeting_id.to_string());
    let demoted_in = started.elapsed();
    let left = mentor.event("meeting:participant-left").await;
    assert_eq!(left["userId"], m.admin.id.to_string());
    let again = admin
        .emit("meeting:join", json!({"meetingId": m.meeting_id}))
        .await;
    assert_eq!(again["error"]["code"], "FORBIDDEN", "{again}");

    // Deactivation on A: the student's socket on B is revoked and disconnected, and
    // B refuses the student's token at once (its cache entry was dropped).
    let started = Instant::now();
    let (status, reply) = a
        .call(
            Method::POST,
            &format!("/api/admin/users/{}/deactivate", m.student.id),
            Some(&root.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let (status, _) = b
        .call(Method::GET, "/api/auth/me", Some(&m.student.token), None)
        .await;
    assert_eq!(status, 401, "replica B's cache was invalidated");
    let revoked = student.event("auth:revoked").await;
    assert_eq!(revoked["reason"], "account_deactivated");
    let gone = student
        .expect("disconnect", |v| v["type"] == "disconnect")
        .await;
    assert_eq!(gone["reason"], "io server disconnect");
    let deactivated_in = started.elapsed();
    let left = mentor.event("meeting:participant-left").await;
    assert_eq!(left["userId"], m.student.id.to_string());
    // Reconnecting with the old token is refused.
    let retry = student
        .connect(&b.base, Some(&m.student.token), &["websocket"])
        .await;
    assert_eq!(retry["type"], "connect_error", "{retry}");

    println!(
        "FIGURE sessions demotion_to_socket_ms={} deactivation_to_disconnect_ms={}",
        demoted_in.as_millis(),
        deactivated_in.as_millis()
    );
    assert!(demoted_in < Duration::from_secs(3) && deactivated_in < Duration::from_secs(3));
    for agent in [student, admin, mentor] {
        agent.exit().await;
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

async fn pairing(app: &TestApp, bearer: &str) -> String {
    let (status, body) = app
        .call(Method::POST, "/api/terminal/pairings", Some(bearer), None)
        .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["token"].as_str().unwrap().to_string()
}

fn json_frame(msg: tokio_tungstenite::tungstenite::Message) -> Value {
    match msg {
        tokio_tungstenite::tungstenite::Message::Text(t) => {
            serde_json::from_str(t.as_str()).expect("json frame")
        }
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[sqlx::test(migrations = false)]
async fn a_relay_follows_its_token_and_its_account(db: PgPool) {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let prefix = unique_prefix("sess-relay");
    let adjust = |env: &mut std::collections::HashMap<String, String>| {
        realtime_env(&prefix, env);
        env.insert("SESSION_REAUTH_GRACE_SECONDS".into(), "2".into());
    };
    let a = TestApp::spawn_with(db.clone(), adjust).await;
    let b = TestApp::spawn_with(db, adjust).await;
    let student = create_user(&a.state, Role::Student).await;
    let root = user_by_email(&a.state, SUPERADMIN_EMAIL).await;

    // A pairing asked for with a token that expires in 2 s.
    let short = short_token(&a, &student, Role::Student, Duration::from_secs(6));
    let token = pairing(&a, &short).await;
    let (mut browser, mut cli) = paired(&a, &b, &token).await;
    let expired = json_frame(next(&mut browser).await);
    assert_eq!(expired["type"], "auth:expired", "{expired}");
    assert_eq!(expired["graceSeconds"], 2);
    browser
        .send(Message::text(
            json!({"type": "auth:refresh", "token": student.token}).to_string(),
        ))
        .await
        .unwrap();
    let refreshed = json_frame(next(&mut browser).await);
    assert_eq!(refreshed["type"], "auth:refreshed", "{refreshed}");
    // The refresh was not forwarded: the CLI's next frame is the browser's keystroke.
    browser
        .send(Message::binary(b"pwd\r".to_vec()))
        .await
        .unwrap();
    assert_eq!(next(&mut cli).await, Message::binary(b"pwd\r".to_vec()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    browser
        .send(Message::binary(b"ls\r".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        next(&mut cli).await,
        Message::binary(b"ls\r".to_vec()),
        "still paired"
    );

    // Deactivated on replica B: both ends (on A and on B) close with 4012.
    let (status, _) = b
        .call(
            Method::POST,
            &format!("/api/admin/users/{}/deactivate", student.id),
            Some(&root.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (code, _) = closed_with(&mut browser).await;
    assert_eq!(code, 4012);
    let (code, _) = closed_with(&mut cli).await;
    assert!(code == 4012 || code == 1000, "cli closed with {code}");

    // An expired session that is not refreshed ends with 4011.
    let other = create_user(&a.state, Role::Student).await;
    let short = short_token(&a, &other, Role::Student, Duration::from_secs(1));
    let token = pairing(&a, &short).await;
    let (mut browser, mut cli) = paired(&b, &a, &token).await;
    assert_eq!(json_frame(next(&mut browser).await)["type"], "auth:expired");
    let (code, _) = closed_with(&mut browser).await;
    assert_eq!(code, 4011);
    let (code, _) = closed_with(&mut cli).await;
    assert_eq!(code, 1000, "the CLI side ends with the browser's session");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
