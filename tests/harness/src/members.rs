//! Socket.IO clients in a meeting (tests/node/meeting-member.mjs, the real socket.io-client)
//! that follow the documented reconnect protocol and report what they lived through.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

fn script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../node/meeting-member.mjs"
    ))
}

pub struct Member {
    child: Child,
    stdin: ChildStdin,
    lines: Arc<Mutex<Vec<Value>>>,
    pub transport: String,
}

impl Member {
    pub async fn join(url: &str, token: &str, meeting: &str, transport: &str) -> Self {
        let opts = json!({"url": url, "token": token, "meetingId": meeting, "transport": transport, "everyMs": 200});
        let mut child = Command::new("node")
            .arg(script())
            .arg(opts.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node meeting-member.mjs (npm ci in tests/node)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let m = Self {
            child,
            stdin,
            lines,
            transport: transport.to_owned(),
        };
        // Generous: a busy CI machine starts Node slowly; still bounded.
        m.wait_for("joined", Duration::from_secs(60)).await;
        m
    }

    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["type"] == kind)
            .cloned()
            .collect()
    }

    async fn wait_for(&self, kind: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(v) = self.events(kind).into_iter().last() {
                return v;
            }
            if tokio::time::Instant::now() >= deadline {
                // Copied first: panicking while holding the lock would poison it for the reader.
                let seen = self.lines.lock().unwrap().clone();
                panic!("{} member: no {kind} event; saw {seen:?}", self.transport);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops sending, waits for outstanding acks and returns the summary.
    pub async fn stop(mut self) -> Value {
        let _ = self.stdin.write_all(b"stop\n").await;
        let summary = self.wait_for("summary", Duration::from_secs(30)).await;
        let _ = self.child.wait().await;
        summary
    }
}
