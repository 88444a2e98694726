//! The terminal relay's two ends as raw WebSocket clients (tokio-tungstenite): open with a
//! pairing token, read frames, expect a notice or a close code.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::TestApp;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn open(app: &TestApp, token: &str, role: &str) -> Ws {
    let url = format!("ws://{}/api/terminal/relay", app.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connect");
    ws.send(Message::text(
        json!({ "token": token, "role": role }).to_string(),
    ))
    .await
    .unwrap();
    ws
}

pub async fn next(ws: &mut Ws) -> Message {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("timed out waiting for a frame")
            .expect("stream ended")
            .expect("ws error");
        if !matches!(msg, Message::Ping(_) | Message::Pong(_)) {
            return msg;
        }
    }
}

pub async fn notice(ws: &mut Ws) -> String {
    match next(ws).await {
        Message::Text(t) => serde_json::from_str::<Value>(t.as_str()).unwrap()["type"]
            .as_str()
            .unwrap()
            .to_string(),
        other => panic!("expected a notice, got {other:?}"),
    }
}

pub async fn closed_with(ws: &mut Ws) -> (u16, String) {
    match next(ws).await {
        Message::Close(Some(frame)) => (u16::from(frame.code), frame.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

pub async fn paired(a: &TestApp, b: &TestApp, token: &str) -> (Ws, Ws) {
    let mut browser = open(a, token, "browser").await;
    assert_eq!(notice(&mut browser).await, "waiting");
    let mut cli = open(b, token, "cli").await;
    assert_eq!(notice(&mut cli).await, "waiting");
    assert_eq!(notice(&mut cli).await, "paired");
    assert_eq!(notice(&mut browser).await, "paired");
    (browser, cli)
}
