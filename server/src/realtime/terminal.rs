//! Terminal relay: a browser terminal and the student's CLI each open a
//! WebSocket to `/api/terminal/relay` (on any replica) and send
//! `{"token": .., "role": "browser"|"cli"}` as the first frame. The two sides
//! meet over Redis pub/sub — each subscribes to its own channel and publishes to
//! its peer's — so no sticky sessions are needed. After pairing, text and binary
//! frames (terminal bytes, resize JSON) pass through untouched.
//!
//! Close codes: 4000 malformed handshake, 4001 unknown token, 4003 expired
//! token, 4009 token already used, 4008 peer never came, 4010 peer vanished
//! (both seats are freed: reconnect with the same token), 4011 the browser's
//! access token expired and no `auth:refresh` came in time, 4012 the account was
//! deactivated or is no longer a student, 1000 peer closed, 1012 server restarting
//! or draining (reconnect with the same token), 1011 Redis unavailable.
//!
//! The session follows the account: it lives as long as the access token that
//! created the pairing. Then the browser side gets `{"type":"auth:expired",
//! "expiredAt","disconnectAt","graceSeconds"}` and may send
//! `{"type":"auth:refresh","token":"<new access token>"}` (answered with
//! `{"type":"auth:refreshed","expiresAt"}` or `{"type":"auth:error","message"}`,
//! never forwarded to the CLI) within `SESSION_REAUTH_GRACE_SECONDS`. A
//! deactivation or role change on any replica closes both sides with 4012.

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::realtime::drain::RelayGuard;
use crate::services::realtime::terminal_pairing::{ClaimError, PairingStore, TerminalRole};
use crate::state::AppState;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const KEEPALIVE: Duration = Duration::from_secs(10);
/// Frames a side may send before its peer arrives.
const MAX_BUFFERED: usize = 256;

pub mod close {
    pub const MALFORMED: u16 = 4000;
    pub const UNKNOWN_TOKEN: u16 = 4001;
    pub const EXPIRED_TOKEN: u16 = 4003;
    pub const PEER_TIMEOUT: u16 = 4008;
    pub const TOKEN_USED: u16 = 4009;
    pub const PEER_LOST: u16 = 4010;
    pub const AUTH_EXPIRED: u16 = 4011;
    pub const ACCOUNT_REVOKED: u16 = 4012;
    pub const NORMAL: u16 = 1000;
    pub const UNAVAILABLE: u16 = 1011;
    pub const RESTART: u16 = 1012;
}

/// Frames exchanged between the two sides over pub/sub (first byte = kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Hello = 0,
    HelloAck = 1,
    Text = 2,
    Binary = 3,
    Close = 4,
    Restart = 5,
    Ping = 6,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::Hello,
            1 => Kind::HelloAck,
            2 => Kind::Text,
            3 => Kind::Binary,
            4 => Kind::Close,
            5 => Kind::Restart,
            6 => Kind::Ping,
            _ => return None,
        })
    }
}

fn frame(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 1);
    out.push(kind as u8);
    out.extend_from_slice(payload);
    out
}

#[derive(Deserialize)]
struct Handshake {
    token: String,
    role: TerminalRole,
}

pub async fn relay(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let max = state.config.realtime.ws_max_message;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            let mut socket = socket;
            if let Err((code, reason)) = run(&mut socket, state).await {
                close_with(&mut socket, code, reason).await;
            }
        })
}

async fn close_with(socket: &mut WebSocket, code: u16, reason: impl Into<String>) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.into()),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

type Closing = (u16, String);

fn closing(code: u16, reason: &str) -> Closing {
    (code, reason.to_string())
}

async fn read_handshake(socket: &mut WebSocket) -> Result<Handshake, Closing> {
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, socket.recv())
        .await
        .map_err(|_| closing(close::MALFORMED, "no pairing handshake received"))?;
    let text = match first {
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(Message::Binary(b))) => Utf8Bytes::try_from(b)
            .map_err(|_| closing(close::MALFORMED, "handshake must be UTF-8 JSON"))?,
        _ => {
            return Err(closing(
                close::MALFORMED,
                "expected {\"token\", \"role\"} as the first frame",
            ));
        }
    };
    serde_json::from_str::<Handshake>(text.as_str()).map_err(|_| {
        closing(
            close::MALFORMED,
            "expected {\"token\", \"role\": \"browser\"|\"cli\"}",
        )
    })
}

/// Runs one side until it ends; Err carries the close frame to send.
async fn run(socket: &mut WebSocket, state: AppState) -> Result<(), Closing> {
    let hello = read_handshake(socket).await?;
    // Registered before the check, so a drain starting right now still finds it; and
    // before claiming a seat: the client comes back with the same token, elsewhere.
    let relay = state.connections.relay_started();
    if state.connections.is_draining() {
        return Err(closing(
            close::RESTART,
            "server is draining, reconnect with the same token",
        ));
    }
    let store = PairingStore::new(state.redis.clone(), &state.config.realtime);
    let claimed = store.claim(&hello.token, hello.role).await.map_err(|e| {
        let code = match e {
            ClaimError::Unknown => close::UNKNOWN_TOKEN,
            ClaimError::Expired => close::EXPIRED_TOKEN,
            ClaimError::AlreadyUsed => close::TOKEN_USED,
            ClaimError::Unavailable => close::UNAVAILABLE,
        };
        (code, e.to_string())
    })?;
    let role = hello.role;
    let own = store.channel(&claimed.pairing_id, role);
    let peer = store.channel(&claimed.pairing_id, role.peer());

    let session = Session {
        store: store.clone(),
        pairing_id: claimed.pairing_id.clone(),
        role,
        peer_channel: peer,
        user_id: claimed.user_id,
    };
    // Records from before sessions followed their token: one access-token lifetime.
    let auth_expires_at = claimed
        .auth_expires_at
        .unwrap_or_else(|| chrono::Utc::now() + state.config.access_token_ttl);
    let result = session
        .relay(
            socket,
            &state,
            &own,
            claimed.expires_at,
            auth_expires_at,
            &relay,
        )
        .await;
    // A side that leaves before pairing (or is asked to reconnect) may come back.
    if matches!(
        result,
        Ok(Outcome::Unpaired) | Err((close::RESTART | close::PEER_TIMEOUT | close::PEER_LOST, _))
    ) {
        let _ = store.release(&claimed.pairing_id, role).await;
    }
    // A vanished peer (its replica died) cannot release its own seat.
    if matches!(result, Err((close::PEER_LOST, _))) {
        let _ = store.release(&claimed.pairing_id, role.peer()).await;
    }
    result.map(|_| ())
}

enum Outcome {
    Paired,
    Unpaired,
}

struct Session {
    store: PairingStore,
    pairing_id: String,
    role: TerminalRole,
    peer_channel: String,
    user_id: uuid::Uuid,
}

/// `{"type":"auth:refresh","token":..}` from the browser side.
fn refresh_token(msg: &Message) -> Option<String> {
    #[derive(Deserialize)]
    struct Refresh {
        #[serde(rename = "type")]
        kind: String,
        token: String,
    }
    let Message::Text(text) = msg else {
        return None;
    };
    // Cheap pre-check: terminal input never starts like this.
    if !text.as_str().trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<Refresh>(text.as_str())
        .ok()
        .filter(|r| r.kind == "auth:refresh")
        .map(|r| r.token)
}

fn tokio_deadline(at: chrono::DateTime<chrono::Utc>) -> tokio::time::Instant {
    tokio::time::Instant::now() + (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO)
}

fn iso(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Session {
    async fn publish(&self, kind: Kind, payload: &[u8]) -> Result<i64, Closing> {
        self.store
            .publish(&self.peer_channel, &frame(kind, payload))
            .await
            .map_err(|_| closing(close::UNAVAILABLE, "relay unavailable"))
    }

    /// The account may no longer use the relay: close, and tell the peer.
    async fn account_allows(&self, state: &AppState) -> Result<(), Closing> {
        use crate::auth::status::{self, AccountStatus};
        match status::current(state, self.user_id).await {
            Ok(AccountStatus::Active(crate::auth::Role::Student)) => Ok(()),
            Ok(_) => {
                let _ = self.publish(Kind::Close, b"").await;
                Err(closing(
                    close::ACCOUNT_REVOKED,
                    "the account was deactivated or is no longer a student",
                ))
            }
            // Cannot tell now; the next change or resync asks again.
            Err(_) => Ok(()),
        }
    }

    /// Handles `auth:refresh`: a new access token of the same student extends the session.
    async fn refresh(
        &self,
        socket: &mut WebSocket,
        state: &AppState,
        token: &str,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let checked = crate::auth::authenticate(state, token.trim())
            .await
            .and_then(|claims| {
                if claims.sub != self.user_id || claims.role != crate::auth::Role::Student {
                    Err(crate::error::AppError::forbidden(
                        "the token belongs to another account",
                    ))
                } else {
                    Ok(claims)
                }
            });
        match checked {
            Ok(claims) => {
                let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0)?;
                send_json(
                    socket,
                    json!({ "type": "auth:refreshed", "expiresAt": iso(expires_at) }),
                )
                .await;
                Some(expires_at)
            }
            Err(e) => {
                send_json(
                    socket,
                    json!({ "type": "auth:error", "message": e.to_string() }),
                )
                .await;
                None
            }
        }
    }

    async fn relay(
        &self,
        socket: &mut WebSocket,
        state: &AppState,
        own_channel: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
        auth_expires_at: chrono::DateTime<chrono::Utc>,
        relay: &RelayGuard,
    ) -> Result<Outcome, Closing> {
        let mut account_events = state.accounts.subscribe();
        let mut accounts_open = true;
        self.account_allows(state).await?;
        // Only the browser side holds an access token; the CLI side ends with it.
        let follows_token = self.role == TerminalRole::Browser;
        let grace = state.config.security.session_grace;
        let auth_timer = tokio::time::sleep_until(tokio_deadline(auth_expires_at));
        tokio::pin!(auth_timer);
        let mut auth_expired_notified = false;
        let mut auth_expires_at = auth_expires_at;

        let unavailable = |_| closing(close::UNAVAILABLE, "relay unavailable");
        let client = crate::startup::redis_client(&state.config, false)
            .map_err(|_| closing(close::UNAVAILABLE, "relay unavailable"))?;
        let mut pubsub = client.get_async_pubsub().await.map_err(unavailable)?;
        pubsub.subscribe(own_channel).await.map_err(unavailable)?;
        let mut inbox = pubsub.into_on_message();

        tracing::debug!(pairing = %&self.pairing_id[..8], role = self.role.as_str(), "relay side connected");
        self.publish(Kind::Hello, b"").await?;
        send_notice(socket, "waiting").await;

        let mut paired = false;
        let mut pending: VecDeque<Message> = VecDeque::new();
        let wait_for_peer = (expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        let peer_deadline = tokio::time::sleep(wait_for_peer);
        tokio::pin!(peer_deadline);
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;

        loop {
            tokio::select! {
                () = &mut auth_timer, if follows_token => {
                    if auth_expired_notified {
                        let _ = self.publish(Kind::Close, b"").await;
                        return Err(closing(close::AUTH_EXPIRED, "access token expired; send auth:refresh in time"));
                    }
                    auth_expired_notified = true;
                    let disconnect_at = chrono::Utc::now() + grace;
                    send_json(socket, json!({
                        "type": "auth:expired",
                        "expiredAt": iso(auth_expires_at),
                        "disconnectAt": iso(disconnect_at),
                        "graceSeconds": grace.as_secs(),
                    })).await;
                    auth_timer.as_mut().reset(tokio::time::Instant::now() + grace);
                }
                event = account_events.recv(), if accounts_open => {
                    use crate::auth::status::AccountEvent;
                    use tokio::sync::broadcast::error::RecvError;
                    let relevant = match event {
                        Ok(AccountEvent::Changed(user)) => user == self.user_id,
                        Ok(AccountEvent::Resync) | Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => { accounts_open = false; false }
                    };
                    if relevant {
                        self.account_allows(state).await?;
                    }
                }
                () = relay.moved() => {
                    let _ = self.publish(Kind::Restart, b"").await;
                    return Err(closing(close::RESTART, "service restart, reconnect with the same token"));
                }
                () = &mut peer_deadline, if !paired => {
                    return Err(closing(close::PEER_TIMEOUT, "the other side never connected"));
                }
                _ = keepalive.tick(), if paired => {
                    if self.publish(Kind::Ping, b"").await? == 0 {
                        return Err(closing(close::PEER_LOST, "the other side is gone"));
                    }
                }
                incoming = socket.recv() => match incoming {
                    Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                        if let Some(token) = refresh_token(&msg).filter(|_| follows_token) {
                            if let Some(renewed) = self.refresh(socket, state, &token).await {
                                auth_expired_notified = false;
                                auth_expires_at = renewed;
                                auth_timer.as_mut().reset(tokio_deadline(renewed));
                            }
                            continue;
                        }
                        if paired {
                            if self.forward(&msg).await? == 0 {
                                return Err(closing(close::PEER_LOST, "the other side is gone"));
                            }
                        } else if pending.len() < MAX_BUFFERED {
                            pending.push_back(msg);
                        } else {
                            return Err(closing(1008, "too many frames before the other side connected"));
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        let _ = self.publish(Kind::Close, b"").await;
                        return Ok(if paired { Outcome::Paired } else { Outcome::Unpaired });
                    }
                },
                delivered = inbox.next() => {
                    let Some(delivered) = delivered else {
                        return Err(closing(close::UNAVAILABLE, "relay unavailable"));
                    };
                    let bytes: Vec<u8> = delivered.get_payload_bytes().to_vec();
                    let Some((&kind, payload)) = bytes.split_first() else { continue };
                    match Kind::from_byte(kind) {
                        Some(Kind::Hello | Kind::HelloAck) => {
                            if Kind::from_byte(kind) == Some(Kind::Hello) {
                                self.publish(Kind::HelloAck, b"").await?;
                            }
                            if !paired {
                                paired = true;
                                send_notice(socket, "paired").await;
                                while let Some(msg) = pending.pop_front() {
                                    self.forward(&msg).await?;
                                }
                            }
                        }
                        Some(Kind::Text) => {
                            let text = Utf8Bytes::try_from(Bytes::copy_from_slice(payload))
                                .map_err(|_| closing(1007, "invalid text frame from peer"))?;
                            if socket.send(Message::Text(text)).await.is_err() {
                                let _ = self.publish(Kind::Close, b"").await;
                                return Ok(Outcome::Paired);
                            }
                        }
                        Some(Kind::Binary) => {
                            if socket.send(Message::Binary(Bytes::copy_from_slice(payload))).await.is_err() {
                                let _ = self.publish(Kind::Close, b"").await;
                                return Ok(Outcome::Paired);
                            }
                        }
                        Some(Kind::Close) => return Err(closing(close::NORMAL, "the other side disconnected")),
                        Some(Kind::Restart) => {
                            return Err(closing(close::RESTART, "the other side's server restarted, reconnect with the same token"));
                        }
                        Some(Kind::Ping) | None => {}
                    }
                }
            }
        }
    }

    async fn forward(&self, msg: &Message) -> Result<i64, Closing> {
        match msg {
            Message::Text(t) => self.publish(Kind::Text, t.as_str().as_bytes()).await,
            Message::Binary(b) => self.publish(Kind::Binary, b).await,
            _ => Ok(1),
        }
    }
}

async fn send_notice(socket: &mut WebSocket, kind: &str) {
    send_json(socket, json!({ "type": kind })).await;
}

async fn send_json(socket: &mut WebSocket, value: serde_json::Value) {
    let _ = socket
        .send(Message::Text(Utf8Bytes::from(value.to_string())))
        .await;
}
