//! Real Socket.IO clients (socket.io-client on Node, python-socketio) as child
//! processes, driven over a JSON line protocol (tests/node/agent.mjs,
//! tests/python/sio_agent.py).

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::services::{node_dir, repo_root};
use super::wait::WAIT;

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
    /// socket.io-client on Node (tests/node/agent.mjs).
    pub async fn node(name: &str) -> Agent {
        let mut cmd = Command::new("node");
        cmd.arg(node_dir().join("agent.mjs"));
        Self::start(name, cmd).await
    }

    /// python-socketio (tests/python/sio_agent.py).
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
