//! The /admin/queues page in headless Chromium, driven over the DevTools protocol:
//! sign in through the form, read the counts, press "Clean failed".

use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mas_server::queues::QueueName;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::app::free_port;
use crate::support::queues as qs;
use crate::support::services::chromium;
use crate::support::wait::wait_for;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};

struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .expect("cdp send");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("cdp reply in time")
                .expect("cdp open")
                .expect("cdp frame");
            let Ok(text) = frame.to_text() else { continue };
            let v: Value = serde_json::from_str(text).expect("cdp json");
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return v["result"].clone();
            }
        }
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Evaluates `expression` until it returns `expected`.
    async fn wait_eval(&mut self, expression: &str, expected: Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.eval(expression).await;
            if got == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{expression} stayed {got}, wanted {expected}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[sqlx::test(migrations = false)]
async fn dashboard_works_in_headless_chromium(db: PgPool) {
    let port = free_port();
    let (app, prefix) = qs::spawn(db, |env| {
        env.insert("SMTP_HOST".into(), "127.0.0.1".into());
        env.insert("SMTP_PORT".into(), port.to_string());
        env.insert("SMTP_TLS".into(), "none".into());
        env.insert("QUEUE_JOB_ATTEMPTS".into(), "1".into());
        env.insert("LOGIN_WINDOW_SECONDS".into(), "5".into());
    })
    .await;
    app.state
        .queues
        .add(
            QueueName::Email,
            "otp_verification",
            json!({"to": "b@test.local", "template": "otp_verification", "payload": {"code": "1"}}),
            None,
        )
        .await
        .unwrap();
    let q = qs::queue(&prefix, "emailQueue").await;
    wait_for("a failed job", Duration::from_secs(20), || async {
        (q.get_failed_count().await.ok()? == 1).then_some(())
    })
    .await;

    let profile = std::env::temp_dir().join(format!("mas-chromium-{prefix}"));
    let chromium_bin = chromium();
    let mut chromium = tokio::process::Command::new(&chromium_bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
            "about:blank",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", chromium_bin.display()));
    let mut lines = BufReader::new(chromium.stderr.take().unwrap()).lines();
    let ws_url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                return url.trim().to_string();
            }
        }
        panic!("chromium exited without a DevTools endpoint");
    })
    .await
    .expect("chromium started");
    // Keep draining stderr so chromium never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .expect("cdp connect");
    let mut cdp = Cdp {
        ws,
        next_id: 0,
        session: None,
    };
    let target = cdp
        .call("Target.createTarget", json!({"url": "about:blank"}))
        .await;
    let attached = cdp
        .call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        )
        .await;
    cdp.session = Some(attached["sessionId"].as_str().unwrap().to_string());
    cdp.call("Runtime.enable", json!({})).await;
    cdp.call("Page.enable", json!({})).await;

    let page = app.url("/admin/queues");
    cdp.call("Page.navigate", json!({"url": page})).await;
    cdp.wait_eval("!!document.getElementById('login-form')", json!(true))
        .await;

    // Sign in through the form (a real POST + redirect + cookie).
    cdp.eval(&format!(
        "document.getElementById('email').value = {}; document.getElementById('password').value = {}; \
         document.getElementById('login-form').submit(); true",
        json!(ADMIN_EMAIL),
        json!(ADMIN_PASSWORD)
    ))
    .await;
    let failed_cell = "(document.querySelector('tr[data-queue=emailQueue] .count-failed') || {}).textContent || null";
    cdp.wait_eval(failed_cell, json!("1")).await;
    assert_eq!(cdp.eval("location.pathname").await, json!("/admin/queues"));
    // The token cookie is httpOnly: invisible to page scripts.
    assert_eq!(cdp.eval("document.cookie").await, json!(""));
    let reason = cdp
        .eval("document.querySelector('#failed .reason').textContent")
        .await;
    assert!(
        reason.as_str().unwrap().starts_with("SMTP delivery failed"),
        "{reason}"
    );

    // The button calls the JSON API with the cookie, then the page reloads.
    cdp.eval("document.querySelector('button[data-action=clean][data-state=failed][data-queue=emailQueue]').click(); true").await;
    cdp.wait_eval(failed_cell, json!("0")).await;
    assert_eq!(q.get_failed_count().await.unwrap(), 0);

    let _ = chromium.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    q.close().await;
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
