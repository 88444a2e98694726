//! Shared helpers of the realtime tests: two server instances on one Redis
//! (db 4, unique key/channel prefix per test), seeded meeting parties, and
//! real Socket.IO clients (socket.io-client on Node, python-socketio) driven
//! over a JSON line protocol (tests/node/agent.mjs, tests/python/sio_agent.py).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use mas_server::auth::Role;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::common::TestApp;

pub const WAIT: Duration = Duration::from_secs(10);

/// REDIS_URL pointed at the realtime database number (4).
pub fn realtime_redis_url() -> String {
    let url = std::env::var("REDIS_URL")
        .expect("REDIS_URL is not set: run the tests through scripts/test");
    let (scheme, rest) = url.split_once("://").expect("REDIS_URL has a scheme");
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}/4")
}

pub fn unique_prefix(test: &str) -> String {
    format!(
        "test-rt-{test}-{}",
        &Uuid::new_v4().simple().to_string()[..8]
    )
}

pub fn realtime_env(prefix: &str, env: &mut HashMap<String, String>) {
    env.insert("REDIS_URL".into(), realtime_redis_url());
    env.insert("REALTIME_REDIS_PREFIX".into(), prefix.into());
    env.insert("PRESENCE_TTL_SECONDS".into(), "2".into());
}

/// Two replicas sharing the database, Redis and prefix.
pub async fn two_instances(db: PgPool, test: &str) -> (TestApp, TestApp, String) {
    let prefix = unique_prefix(test);
    // Each replica gets its own pool on the same database, as in production:
    // shutting one down closes its pool, which must not break the other.
    let db_b = sqlx::postgres::PgPoolOptions::new()
        .connect_with((*db.connect_options()).clone())
        .await
        .expect("second pool");
    let a = TestApp::spawn_with(db, |env| realtime_env(&prefix, env)).await;
    let b = TestApp::spawn_with(db_b, |env| realtime_env(&prefix, env)).await;
    (a, b, prefix)
}

#[derive(Debug, Clone)]
pub struct Person {
    pub id: Uuid,
    pub role: Role,
    pub token: String,
}

/// A meeting between `mentor` and `student`, plus an `outsider` student and an admin.
pub struct MeetingFixture {
    pub meeting_id: Uuid,
    pub mentor: Person,
    pub student: Person,
    pub outsider: Person,
    pub admin: Person,
}

pub async fn person(app: &TestApp, role: Role) -> Person {
    let id = Uuid::new_v4();
    let email = format!(
        "{}-{}@test.local",
        role.as_str(),
        &id.simple().to_string()[..8]
    );
    sqlx::query(
        "insert into users (id, email, password_hash, name, role) values ($1, $2, 'x', $3, $4)",
    )
    .bind(id)
    .bind(&email)
    .bind(format!("Test {}", role.as_str()))
    .bind(role.as_str())
    .execute(&app.state.db)
    .await
    .expect("insert user");
    let token = app
        .state
        .jwt
        .issue(id, role, &email, Duration::from_secs(3600))
        .expect("issue token");
    Person { id, role, token }
}

pub async fn meeting(app: &TestApp) -> MeetingFixture {
    let mentor = person(app, Role::Mentor).await;
    let student = person(app, Role::Student).await;
    let outsider = person(app, Role::Student).await;
    let admin = person(app, Role::Admin).await;
    let db = &app.state.db;
    let (slot, booking, meeting_id) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    sqlx::query("insert into mentor_slots (id, mentor_id, starts_at, ends_at, status) values ($1, $2, now(), now() + interval '1 hour', 'booked')")
        .bind(slot)
        .bind(mentor.id)
        .execute(db)
        .await
        .expect("slot");
    sqlx::query("insert into bookings (id, slot_id, student_id) values ($1, $2, $3)")
        .bind(booking)
        .bind(slot)
        .bind(student.id)
        .execute(db)
        .await
        .expect("booking");
    sqlx::query("insert into meetings (id, booking_id, mentor_id, student_id, starts_at, ends_at) values ($1, $2, $3, $4, now(), now() + interval '1 hour')")
        .bind(meeting_id)
        .bind(booking)
        .bind(mentor.id)
        .bind(student.id)
        .execute(db)
        .await
        .expect("meeting");
    MeetingFixture {
        meeting_id,
        mentor,
        student,
        outsider,
        admin,
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A real Socket.IO client process.
pub struct Agent {
    pub name: String,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
    next_id: u64,
}

impl Agent {
    pub async fn node(name: &str) -> Agent {
        let root = repo_root();
        assert!(
            root.join("tests/node/node_modules/socket.io-client")
                .exists(),
            "socket.io-client is not installed: run `npm install` in tests/node (scripts/test does it)"
        );
        let mut cmd = Command::new("node");
        cmd.arg(root.join("tests/node/agent.mjs"));
        Self::start(name, cmd).await
    }

    pub async fn python(name: &str) -> Agent {
        let mut cmd = Command::new("python3");
        cmd.arg(repo_root().join("tests/python/sio_agent.py"));
        Self::start(name, cmd).await
    }

    async fn start(name: &str, mut cmd: Command) -> Agent {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn client agent");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        let label = name.to_string();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("[{label}] {line}"),
                }
            }
        });
        let mut agent = Agent {
            name: name.to_string(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
            next_id: 0,
        };
        agent.expect("ready", |v| v["type"] == "ready").await;
        agent
    }

    pub async fn send(&mut self, cmd: Value) {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to agent");
        self.stdin.flush().await.expect("flush agent");
    }

    /// Waits for (and consumes) the first output matching `pred`.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(pos) = self.seen.iter().position(&pred) {
            return self.seen.remove(pos);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) if pred(&v) => return v,
                Ok(Some(v)) => self.seen.push(v),
                Ok(None) => panic!(
                    "[{}] agent exited while waiting for {what}; saw {:?}",
                    self.name, self.seen
                ),
                Err(_) => panic!(
                    "[{}] timed out waiting for {what}; saw {:?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// True if some output matching `pred` arrives within `within`.
    pub async fn sees(&mut self, within: Duration, pred: impl Fn(&Value) -> bool) -> bool {
        if self.seen.iter().any(&pred) {
            return true;
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) if pred(&v) => return true,
                Ok(Some(v)) => self.seen.push(v),
                _ => return false,
            }
        }
    }

    pub async fn event(&mut self, event: &str) -> Value {
        let name = event.to_string();
        self.expect(event, move |v| {
            v["type"] == "event" && v["event"] == name.as_str()
        })
        .await["data"]
            .clone()
    }

    pub async fn connect(&mut self, base: &str, token: Option<&str>, transports: &[&str]) -> Value {
        self.send(
            json!({ "cmd": "connect", "url": base, "token": token, "transports": transports }),
        )
        .await;
        self.expect("connect outcome", |v| {
            matches!(
                v["type"].as_str(),
                Some("connected" | "connect_error" | "connect_failed")
            )
        })
        .await
    }

    /// Connects and returns the socket id.
    pub async fn connect_ok(&mut self, base: &str, token: &str, transports: &[&str]) -> String {
        let outcome = self.connect(base, Some(token), transports).await;
        assert_eq!(outcome["type"], "connected", "[{}] {outcome}", self.name);
        outcome["sid"].as_str().expect("sid").to_string()
    }

    /// Emits with an acknowledgement and returns the ack payload.
    pub async fn emit(&mut self, event: &str, data: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({ "cmd": "emit", "id": id, "event": event, "data": data }))
            .await;
        let reply = self
            .expect("ack", move |v| {
                (v["type"] == "ack" || v["type"] == "error") && v["id"] == id
            })
            .await;
        assert_eq!(
            reply["type"], "ack",
            "[{}] {event} failed: {reply}",
            self.name
        );
        reply["data"].clone()
    }

    pub async fn disconnect(&mut self) {
        self.send(json!({ "cmd": "disconnect" })).await;
    }

    pub async fn exit(mut self) {
        self.send(json!({ "cmd": "exit" })).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// The second replica is a separate `mas-server` process, not an in-process instance.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub base: String,
}

pub async fn spawn_process(db: &PgPool, prefix: &str) -> ServerProcess {
    let database = db
        .connect_options()
        .get_database()
        .expect("test database name")
        .to_string();
    let root = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the tests through scripts/test");
    let (server, _) = root
        .rsplit_once('/')
        .expect("DATABASE_URL has a database path");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut env = crate::common::test_env();
    realtime_env(prefix, &mut env);
    env.insert("DATABASE_URL".into(), format!("{server}/{database}"));
    env.insert("HOST".into(), "127.0.0.1".into());
    env.insert("PORT".into(), port.to_string());
    env.insert("RUST_LOG".into(), "warn".into());
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mas-server"))
        .envs(env)
        .kill_on_drop(true)
        .spawn()
        .expect("start mas-server");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client
            .get(format!("{base}/api/health/live"))
            .send()
            .await
            .is_ok()
        {
            return ServerProcess { child, base };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("mas-server process did not come up");
}
