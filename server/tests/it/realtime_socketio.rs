//! Socket.IO against two server instances on one Redis, with real clients:
//! socket.io-client (Node) and python-socketio.

use std::time::Duration;

use mas_server::auth::Role;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::agent::Agent;
use crate::support::app::ServerProcess;
use crate::support::realtime::{
    meeting, realtime_env, two_instances, two_instances_with, unique_prefix,
};
use crate::support::{TestApp, create_user};

#[sqlx::test(migrations = false)]
async fn handshake_without_valid_token_gets_connect_error(db: PgPool) {
    let (a, b, _) = two_instances(db, "auth").await;

    let mut node = Agent::node("node").await;
    let outcome = node.connect(&a.base, None, &["websocket"]).await;
    assert_eq!(outcome["type"], "connect_error", "{outcome}");
    assert_eq!(
        outcome["message"],
        "unauthorized: missing access token (auth: { token })"
    );

    let mut node = Agent::node("node-bad").await;
    let outcome = node.connect(&b.base, Some("not-a-jwt"), &["polling"]).await;
    assert_eq!(outcome["type"], "connect_error", "{outcome}");
    assert_eq!(
        outcome["message"],
        "unauthorized: access token is malformed"
    );

    // A token signed with another secret.
    let other = mas_server::auth::JwtKeys::new(b"another-secret-another-secret-xyz");
    let forged = other
        .issue(
            uuid::Uuid::new_v4(),
            mas_server::auth::Role::Admin,
            "x@y.z",
            Duration::from_secs(60),
        )
        .unwrap();
    let mut py = Agent::python("python").await;
    let outcome = py.connect(&a.base, Some(&forged), &["polling"]).await;
    let text = outcome.to_string();
    assert!(
        text.contains("unauthorized: access token signature is invalid"),
        "python client should see the rejection reason: {text}"
    );
    node.exit().await;
    py.exit().await;
}

#[sqlx::test(migrations = false)]
async fn handshake_of_a_deactivated_account_is_refused(db: PgPool) {
    let (a, _b, _) = two_instances(db, "gone").await;
    let person = create_user(&a.state, Role::Student).await;
    sqlx::query("update users set is_active = false where id = $1")
        .bind(person.id)
        .execute(&a.state.db)
        .await
        .unwrap();
    let mut node = Agent::node("node-gone").await;
    let outcome = node
        .connect(&a.base, Some(&person.token), &["websocket"])
        .await;
    assert_eq!(outcome["type"], "connect_error", "{outcome}");
    assert_eq!(
        outcome["message"],
        "unauthorized: account not found or deactivated"
    );
    node.exit().await;
}

#[sqlx::test(migrations = false)]
async fn socketio_follows_the_http_cors_policy(db: PgPool) {
    let (a, _b, _) = two_instances(db, "cors").await;
    let url = a.url("/socket.io/?EIO=4&transport=polling");
    let denied = a
        .client
        .get(&url)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let allowed = a
        .client
        .get(&url)
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    // Engine.io handshake: `0{"sid":..}`
    let body = allowed.text().await.unwrap();
    assert!(body.starts_with("0{"), "{body}");
}

#[sqlx::test(migrations = false)]
async fn signalling_between_clients_on_different_instances(db: PgPool) {
    let (a, b, _) = two_instances(db, "signal").await;
    let f = meeting(&a).await;
    let m = f.meeting_id.to_string();

    let mut mentor = Agent::node("mentor").await;
    let mentor_sid = mentor
        .connect_ok(&a.base, &f.mentor.token, &["websocket"])
        .await;
    let mut student = Agent::python("student").await;
    let student_sid = student
        .connect_ok(&b.base, &f.student.token, &["polling"])
        .await;

    let ack = mentor.emit("meeting:join", json!({ "meetingId": m })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["isHost"], true);
    let ack = student
        .emit("meeting:join", json!({ "meetingId": m }))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["isHost"], false);
    // The newcomer learns who is already in the room (on the other instance).
    assert_eq!(
        ack["participants"],
        json!([{ "userId": f.mentor.id, "role": "mentor", "socketId": mentor_sid }]),
        "{ack}"
    );

    // The mentor (instance A) hears the student (instance B) join.
    let joined = mentor.event("meeting:participant-joined").await;
    assert_eq!(joined["userId"], f.student.id.to_string());
    assert_eq!(joined["socketId"], student_sid);

    // Offer addressed by user id crosses from A to B.
    let ack = mentor
        .emit("signal:offer", json!({ "meetingId": m, "toUserId": f.student.id, "payload": { "type": "offer", "sdp": "v=0 offer" } }))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let offer = student.event("signal:offer").await;
    assert_eq!(offer["payload"]["sdp"], "v=0 offer");
    assert_eq!(offer["from"]["userId"], f.mentor.id.to_string());
    assert_eq!(offer["from"]["socketId"], mentor_sid);

    // Answer addressed by socket id crosses from B to A.
    let ack = student
        .emit("signal:answer", json!({ "meetingId": m, "toSocketId": mentor_sid, "payload": { "type": "answer", "sdp": "v=0 answer" } }))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let answer = mentor.event("signal:answer").await;
    assert_eq!(answer["payload"]["sdp"], "v=0 answer");
    assert_eq!(answer["from"]["socketId"], student_sid);

    // ICE to the whole room.
    student
        .emit("signal:ice", json!({ "meetingId": m, "payload": { "candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host" } }))
        .await;
    let ice = mentor.event("signal:ice").await;
    assert_eq!(
        ice["payload"]["candidate"],
        "candidate:1 1 udp 1 10.0.0.1 9 typ host"
    );

    // An outsider can neither join nor signal into the meeting.
    let mut outsider = Agent::node("outsider").await;
    outsider
        .connect_ok(&b.base, &f.outsider.token, &["websocket"])
        .await;
    let refused = outsider
        .emit("meeting:join", json!({ "meetingId": m }))
        .await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["error"]["code"], "FORBIDDEN");
    assert_eq!(
        refused["error"]["message"],
        "you are not a participant of this meeting"
    );
    let refused = outsider
        .emit(
            "signal:offer",
            json!({ "meetingId": m, "toUserId": f.student.id, "payload": {} }),
        )
        .await;
    assert_eq!(refused["error"]["code"], "FORBIDDEN", "{refused}");
    assert!(
        !student
            .sees(Duration::from_millis(500), |v| v["event"] == "signal:offer")
            .await,
        "a signal from a non-member must not be delivered"
    );
    let unknown = outsider
        .emit("meeting:join", json!({ "meetingId": uuid::Uuid::new_v4() }))
        .await;
    assert_eq!(unknown["error"]["code"], "NOT_FOUND", "{unknown}");
    let malformed = outsider.emit("meeting:join", json!({ "meeting": 1 })).await;
    assert_eq!(
        malformed["error"]["code"], "VALIDATION_ERROR",
        "{malformed}"
    );

    // An admin may join any meeting.
    let mut admin = Agent::python("admin").await;
    admin
        .connect_ok(&a.base, &f.admin.token, &["websocket"])
        .await;
    let ack = admin.emit("meeting:join", json!({ "meetingId": m })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    let mut seen: Vec<String> = ack["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["socketId"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    let mut expected = vec![mentor_sid.clone(), student_sid.clone()];
    expected.sort();
    assert_eq!(seen, expected, "{ack}");

    // Leaving is announced to the others.
    let ack = student
        .emit("meeting:leave", json!({ "meetingId": m }))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let left = mentor.event("meeting:participant-left").await;
    assert_eq!(left["userId"], f.student.id.to_string());

    for agent in [mentor, student, outsider, admin] {
        agent.exit().await;
    }
}

async fn online_ids(app: &TestApp, token: &str) -> Vec<String> {
    let res = app
        .client
        .get(app.url("/api/presence/online"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["data"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userId"].as_str().unwrap().to_string())
        .collect()
}

#[sqlx::test(migrations = false)]
async fn presence_spans_instances_and_dead_replicas_expire(db: PgPool) {
    let (a, b, prefix) = two_instances(db, "presence").await;
    let f = meeting(&a).await;

    let unauth = a
        .client
        .get(a.url("/api/presence/online"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 401);

    let mut mentor = Agent::node("mentor").await;
    mentor
        .connect_ok(&a.base, &f.mentor.token, &["websocket"])
        .await;
    let mut student = Agent::python("student").await;
    student
        .connect_ok(&b.base, &f.student.token, &["websocket"])
        .await;
    // Second socket of the same student, on the other instance.
    let mut student2 = Agent::node("student-2").await;
    student2
        .connect_ok(&a.base, &f.student.token, &["polling"])
        .await;

    let online = mentor.event("presence:online").await;
    assert_eq!(online["userId"], f.student.id.to_string());

    for app in [&a, &b] {
        let ids = online_ids(app, &f.admin.token).await;
        assert!(
            ids.contains(&f.mentor.id.to_string()) && ids.contains(&f.student.id.to_string()),
            "{ids:?}"
        );
    }

    // One of two sockets closing keeps the student online.
    student.disconnect().await;
    student
        .expect("disconnect", |v| v["type"] == "disconnect")
        .await;
    assert!(
        !mentor
            .sees(Duration::from_millis(500), |v| v["event"]
                == "presence:offline")
            .await
    );
    assert!(
        online_ids(&b, &f.admin.token)
            .await
            .contains(&f.student.id.to_string())
    );

    // The last one closing takes them offline everywhere.
    student2.disconnect().await;
    let offline = mentor.event("presence:offline").await;
    assert_eq!(offline["userId"], f.student.id.to_string());
    assert!(
        !online_ids(&b, &f.admin.token)
            .await
            .contains(&f.student.id.to_string())
    );

    // A replica that stopped heartbeating (crashed) no longer counts, and a live
    // replica reaps it and announces its users offline.
    let ghost_user = uuid::Uuid::new_v4();
    let mut redis = a.state.redis.clone();
    let stale = chrono::Utc::now().timestamp_millis() - 60_000;
    let _: () = redis::pipe()
        .cmd("SELECT")
        .arg(4)
        .ignore()
        .cmd("ZADD")
        .arg(format!("{prefix}:presence:instances"))
        .arg(stale)
        .arg("crashed-replica")
        .ignore()
        .cmd("HSET")
        .arg(format!("{prefix}:presence:inst:crashed-replica"))
        .arg(ghost_user.to_string())
        .arg(1)
        .ignore()
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        !online_ids(&a, &f.admin.token)
            .await
            .contains(&ghost_user.to_string())
    );
    let reaped = mentor.event("presence:offline").await;
    assert_eq!(reaped["userId"], ghost_user.to_string());
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("{prefix}:presence:inst:crashed-replica"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(exists, 0, "the dead replica's hash is reaped");

    for agent in [mentor, student, student2] {
        agent.exit().await;
    }
}

async fn history(app: &TestApp, token: &str, meeting: &str, query: &str) -> (u16, Value) {
    let res = app
        .client
        .get(app.url(&format!("/api/meetings/{meeting}/messages{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[sqlx::test(migrations = false)]
async fn chat_is_persisted_broadcast_and_replayed(db: PgPool) {
    let (a, b, _) = two_instances(db, "chat").await;
    let f = meeting(&a).await;
    let m = f.meeting_id.to_string();

    let mut mentor = Agent::node("mentor").await;
    mentor
        .connect_ok(&a.base, &f.mentor.token, &["polling", "websocket"])
        .await;
    let mut student = Agent::python("student").await;
    student
        .connect_ok(&b.base, &f.student.token, &["websocket"])
        .await;

    // Sending before joining is refused.
    let refused = student
        .emit("chat:send", json!({ "meetingId": m, "body": "hi" }))
        .await;
    assert_eq!(refused["error"]["code"], "FORBIDDEN", "{refused}");

    mentor.emit("meeting:join", json!({ "meetingId": m })).await;
    student
        .emit("meeting:join", json!({ "meetingId": m }))
        .await;

    let empty = student
        .emit("chat:send", json!({ "meetingId": m, "body": "   " }))
        .await;
    assert_eq!(empty["error"]["code"], "VALIDATION_ERROR", "{empty}");

    let ack = student
        .emit(
            "chat:send",
            json!({ "meetingId": m, "body": "  hello mentor  " }),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let stored = &ack["message"];
    assert_eq!(stored["body"], "hello mentor");
    let id = stored["id"].as_str().unwrap().to_string();

    // Broadcast to the room on the other instance carries the stored id.
    let live = mentor.event("chat:message").await;
    assert_eq!(live["id"], id.as_str());
    assert_eq!(live["senderId"], f.student.id.to_string());

    let row: (String, uuid::Uuid) =
        sqlx::query_as("select body, sender_id from meeting_messages where id = $1")
            .bind(uuid::Uuid::parse_str(&id).unwrap())
            .fetch_one(&a.state.db)
            .await
            .unwrap();
    assert_eq!(row, ("hello mentor".to_string(), f.student.id));

    for i in 1..=4 {
        let ack = mentor
            .emit(
                "chat:send",
                json!({ "meetingId": m, "body": format!("reply {i}") }),
            )
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
    }

    // Replay with cursor pagination, from the other instance.
    let (status, page1) = history(&b, &f.student.token, &m, "?limit=2").await;
    assert_eq!(status, 200, "{page1}");
    let bodies = |p: &Value| -> Vec<String> {
        p["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["body"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(bodies(&page1), ["hello mentor", "reply 1"]);
    let cursor = page1["data"]["nextCursor"].as_i64().expect("next cursor");
    let (_, page2) = history(
        &b,
        &f.student.token,
        &m,
        &format!("?limit=2&after={cursor}"),
    )
    .await;
    assert_eq!(bodies(&page2), ["reply 2", "reply 3"]);
    let cursor = page2["data"]["nextCursor"].as_i64().expect("next cursor");
    let (_, page3) = history(&a, &f.admin.token, &m, &format!("?limit=2&after={cursor}")).await;
    assert_eq!(bodies(&page3), ["reply 4"]);
    assert!(page3["data"]["nextCursor"].is_null());

    let (status, body) = history(&a, &f.outsider.token, &m, "").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    let (status, _) = history(&a, &f.mentor.token, &m, "?limit=0").await;
    assert_eq!(status, 400);
    let (status, _) = history(&a, &f.mentor.token, &uuid::Uuid::new_v4().to_string(), "").await;
    assert_eq!(status, 404);
    let res = a
        .client
        .get(a.url(&format!("/api/meetings/{m}/messages")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // A cancelled meeting keeps its history but can no longer be entered.
    sqlx::query("update meetings set status = 'cancelled' where id = $1")
        .bind(f.meeting_id)
        .execute(&a.state.db)
        .await
        .unwrap();
    let (status, _) = history(&a, &f.student.token, &m, "").await;
    assert_eq!(status, 200);
    let mut late = Agent::node("late").await;
    late.connect_ok(&b.base, &f.student.token, &["websocket"])
        .await;
    let refused = late.emit("meeting:join", json!({ "meetingId": m })).await;
    assert_eq!(refused["error"]["code"], "CONFLICT", "{refused}");
    late.exit().await;

    mentor.exit().await;
    student.exit().await;
}

#[sqlx::test(migrations = false)]
async fn only_the_host_controls_recording(db: PgPool) {
    let (a, b, _) = two_instances(db, "rec").await;
    let f = meeting(&a).await;
    let m = f.meeting_id.to_string();

    let mut mentor = Agent::python("mentor").await;
    mentor
        .connect_ok(&a.base, &f.mentor.token, &["websocket"])
        .await;
    let mut student = Agent::node("student").await;
    student
        .connect_ok(&b.base, &f.student.token, &["websocket"])
        .await;
    mentor.emit("meeting:join", json!({ "meetingId": m })).await;
    student
        .emit("meeting:join", json!({ "meetingId": m }))
        .await;

    let refused = student
        .emit("recording:start", json!({ "meetingId": m }))
        .await;
    assert_eq!(refused["error"]["code"], "FORBIDDEN", "{refused}");
    let refused = mentor
        .emit("recording:stop", json!({ "meetingId": m }))
        .await;
    assert_eq!(refused["error"]["code"], "CONFLICT", "{refused}");

    let started = mentor
        .emit("recording:start", json!({ "meetingId": m }))
        .await;
    assert_eq!(started["ok"], true, "{started}");
    let seen = student.event("recording:started").await;
    assert_eq!(seen["id"], started["recording"]["id"]);
    assert_eq!(seen["startedBy"], f.mentor.id.to_string());

    let again = mentor
        .emit("recording:start", json!({ "meetingId": m }))
        .await;
    assert_eq!(again["error"]["code"], "CONFLICT", "{again}");

    let stopped = mentor
        .emit("recording:stop", json!({ "meetingId": m }))
        .await;
    assert_eq!(stopped["ok"], true, "{stopped}");
    let seen = student.event("recording:stopped").await;
    assert_eq!(seen["id"], started["recording"]["id"]);
    assert!(seen["stoppedAt"].is_string());

    let (started_at, stopped_at): (
        chrono::DateTime<chrono::Utc>,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = sqlx::query_as(
        "select started_at, stopped_at from meeting_recordings where meeting_id = $1",
    )
    .bind(f.meeting_id)
    .fetch_one(&a.state.db)
    .await
    .unwrap();
    assert!(stopped_at.is_some_and(|s| s >= started_at));

    mentor.exit().await;
    student.exit().await;
}

#[sqlx::test(migrations = false)]
async fn draining_tells_clients_to_reconnect(db: PgPool) {
    let (a, b, _) = two_instances(db, "drain").await;
    let f = meeting(&a).await;

    let mut node = Agent::node("node").await;
    node.connect_ok(&a.base, &f.mentor.token, &["websocket"])
        .await;
    let mut py = Agent::python("python").await;
    py.connect_ok(&a.base, &f.student.token, &["polling"]).await;
    let mut other = Agent::node("other-instance").await;
    other
        .connect_ok(&b.base, &f.admin.token, &["websocket"])
        .await;

    let stopping = tokio::spawn(a.shutdown());
    let draining = node.event("server:draining").await;
    assert_eq!(draining["reconnect"], true);
    // "transport close" is the reason socket.io clients auto-reconnect after.
    let gone = node
        .expect("disconnect", |v| v["type"] == "disconnect")
        .await;
    assert_eq!(gone["reason"], "transport close", "{gone}");
    py.event("server:draining").await;
    py.expect("disconnect", |v| v["type"] == "disconnect").await;
    stopping.await.unwrap().unwrap();

    // The other replica keeps serving, and the drained users went offline there.
    assert!(
        !other
            .sees(Duration::from_millis(300), |v| v["event"]
                == "server:draining")
            .await
    );
    let ids = online_ids(&b, &f.admin.token).await;
    assert!(!ids.contains(&f.mentor.id.to_string()), "{ids:?}");
    let mut again = Agent::node("reconnected").await;
    again
        .connect_ok(&b.base, &f.mentor.token, &["websocket"])
        .await;

    for agent in [node, py, other, again] {
        agent.exit().await;
    }
}

#[sqlx::test(migrations = false)]
async fn payload_limits_are_enforced(db: PgPool) {
    let prefix = unique_prefix("limits");
    let a = TestApp::spawn_with(db, |env| {
        realtime_env(&prefix, env);
        env.insert("SOCKETIO_MAX_PAYLOAD_BYTES".into(), "65536".into());
        env.insert("WS_MAX_MESSAGE_BYTES".into(), "65536".into());
    })
    .await;
    let f = meeting(&a).await;
    let m = f.meeting_id.to_string();

    let mut mentor = Agent::node("mentor").await;
    mentor
        .connect_ok(&a.base, &f.mentor.token, &["websocket"])
        .await;
    mentor.emit("meeting:join", json!({ "meetingId": m })).await;

    // Application limit: a chat message is at most 4000 characters.
    let long = mentor
        .emit(
            "chat:send",
            json!({ "meetingId": m, "body": "x".repeat(4001) }),
        )
        .await;
    assert_eq!(long["error"]["code"], "VALIDATION_ERROR", "{long}");

    // Transport limit: a frame above WS_MAX_MESSAGE_BYTES ends the connection.
    mentor
        .send(json!({ "cmd": "emit", "id": 99, "event": "chat:send", "data": { "meetingId": m, "body": "y".repeat(100_000) } }))
        .await;
    let gone = mentor
        .expect("disconnect", |v| v["type"] == "disconnect")
        .await;
    assert!(
        gone["reason"].as_str().unwrap().starts_with("transport"),
        "{gone}"
    );

    // Long-polling bodies above SOCKETIO_MAX_PAYLOAD_BYTES are refused too.
    let mut py = Agent::python("student").await;
    py.connect_ok(&a.base, &f.student.token, &["polling"]).await;
    py.send(json!({ "cmd": "emit", "id": 1, "event": "chat:send", "data": { "meetingId": m, "body": "z".repeat(100_000) }, "timeoutMs": 3000 }))
        .await;
    let outcome = py
        .expect("refusal", |v| {
            v["type"] == "disconnect" || v["type"] == "error" || v["type"] == "ack"
        })
        .await;
    assert_ne!(
        outcome["type"], "ack",
        "an oversized polling payload must not be processed: {outcome}"
    );
    let stored: i64 = sqlx::query_scalar("select count(*) from meeting_messages")
        .fetch_one(&a.state.db)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    mentor.exit().await;
    py.exit().await;
}

#[sqlx::test(migrations = false)]
async fn a_separate_server_process_behaves_as_one_with_this_one(db: PgPool) {
    let prefix = unique_prefix("process");
    let a = TestApp::spawn_with(db.clone(), |env| realtime_env(&prefix, env)).await;
    let mut b = ServerProcess::spawn(&db, |env| realtime_env(&prefix, env)).await;
    let f = meeting(&a).await;
    let m = f.meeting_id.to_string();

    let mut mentor = Agent::node("mentor").await;
    mentor
        .connect_ok(&a.base, &f.mentor.token, &["websocket"])
        .await;
    let mut student = Agent::python("student").await;
    student
        .connect_ok(&b.base, &f.student.token, &["websocket"])
        .await;
    mentor.emit("meeting:join", json!({ "meetingId": m })).await;
    student
        .emit("meeting:join", json!({ "meetingId": m }))
        .await;

    mentor
        .emit("signal:offer", json!({ "meetingId": m, "toUserId": f.student.id, "payload": { "sdp": "cross-process" } }))
        .await;
    assert_eq!(
        student.event("signal:offer").await["payload"]["sdp"],
        "cross-process"
    );
    let ack = student
        .emit(
            "chat:send",
            json!({ "meetingId": m, "body": "from the other process" }),
        )
        .await;
    let live = mentor.event("chat:message").await;
    assert_eq!(live["id"], ack["message"]["id"]);
    let online = online_ids(&a, &f.admin.token).await;
    assert!(online.contains(&f.student.id.to_string()), "{online:?}");

    // SIGTERM: the process drains its clients and exits cleanly.
    let pid = b.child.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    assert_eq!(student.event("server:draining").await["reconnect"], true);
    let status = tokio::time::timeout(Duration::from_secs(20), b.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let offline = mentor.event("presence:offline").await;
    assert_eq!(offline["userId"], f.student.id.to_string());

    mentor.exit().await;
    student.exit().await;
}

/// `SOCKETIO_ADAPTER=memory`: one replica's rooms work as before, and nothing crosses to
/// another replica on the same Redis and prefix (no pub/sub at all).
#[sqlx::test(migrations = false)]
async fn memory_adapter_keeps_rooms_in_one_process(db: PgPool) {
    let (a, b, _) = two_instances_with(db, "memory", |env| {
        env.insert("SOCKETIO_ADAPTER".into(), "memory".into());
    })
    .await;
    let f = meeting(&a).await;
    let m = f.meeting_id.to_string();

    let mut mentor = Agent::node("mentor-mem").await;
    mentor
        .connect_ok(&a.base, &f.mentor.token, &["websocket"])
        .await;
    let mut student = Agent::python("student-mem").await;
    student
        .connect_ok(&a.base, &f.student.token, &["polling", "websocket"])
        .await;
    let mut admin = Agent::node("admin-mem").await;
    admin
        .connect_ok(&b.base, &f.admin.token, &["websocket"])
        .await;
    for agent in [&mut mentor, &mut student, &mut admin] {
        let joined = agent.emit("meeting:join", json!({ "meetingId": m })).await;
        assert_eq!(joined["ok"], true, "{joined}");
    }

    let ack = mentor
        .emit(
            "chat:send",
            json!({ "meetingId": m, "body": "same process" }),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let live = student.event("chat:message").await;
    assert_eq!(live["body"], "same process");
    // The admin's replica never hears of it: the message stays in the process.
    let crossed = admin
        .sees(Duration::from_secs(2), |v| {
            v["type"] == "event" && v["event"] == "chat:message"
        })
        .await;
    assert!(!crossed, "a broadcast left the process in memory mode");

    mentor.exit().await;
    student.exit().await;
    admin.exit().await;
}
