//! Socket.IO event handlers: handshake auth, meetings, WebRTC signalling, chat,
//! recording state and presence announcements.
//!
//! Rooms: `user:{id}` (all sockets of a user), `meeting:{id}` (joined sockets),
//! and per-meeting peer rooms `meeting:{id}:user:{uid}` / `meeting:{id}:sid:{sid}`
//! so a signal addressed to a peer only reaches it inside that meeting, on any
//! replica (the Redis adapter fans rooms out across replicas).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::extract::{AckSender, Extension, SocketRef, State, TryData};
use socketioxide::socket::DisconnectReason;
use uuid::Uuid;

use super::{Ctx, SioAdapter};
use crate::auth::Claims;
use crate::auth::status::AccountStatus;
use crate::error::AppError;
use crate::services::realtime::members::Member;
use crate::services::realtime::{chat, meetings, recordings};

type Socket = SocketRef<SioAdapter>;
type Ack = AckSender<SioAdapter>;

/// Meetings this socket has joined (authorised), for leave-on-disconnect.
#[derive(Clone, Default)]
pub(crate) struct JoinedMeetings(Arc<Mutex<HashSet<Uuid>>>);

impl JoinedMeetings {
    fn insert(&self, id: Uuid) -> bool {
        self.0.lock().map(|mut s| s.insert(id)).unwrap_or(false)
    }
    fn remove(&self, id: Uuid) -> bool {
        self.0.lock().map(|mut s| s.remove(&id)).unwrap_or(false)
    }
    fn contains(&self, id: Uuid) -> bool {
        self.0.lock().map(|s| s.contains(&id)).unwrap_or(false)
    }
    fn snapshot(&self) -> Vec<Uuid> {
        self.0
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
    fn drain(&self) -> Vec<Uuid> {
        self.0
            .lock()
            .map(|mut s| s.drain().collect())
            .unwrap_or_default()
    }
}

/// When this socket's access token expires, and whether it has been told so.
#[derive(Clone, Default)]
pub(crate) struct SessionClock(Arc<Mutex<ClockState>>);

#[derive(Default)]
struct ClockState {
    /// `exp` of the token the socket authenticated with last (unix seconds).
    expires_at: i64,
    /// Set once `auth:expired` was sent: when the socket is disconnected.
    disconnect_at: Option<i64>,
}

/// What the session sweeper has to do with a socket now.
pub(crate) enum ClockDue {
    Nothing,
    /// Send `auth:expired`; disconnect at `disconnect_at` unless refreshed.
    Notify {
        expired_at: i64,
        disconnect_at: i64,
    },
    Disconnect,
}

impl SessionClock {
    fn new(expires_at: i64) -> Self {
        SessionClock(Arc::new(Mutex::new(ClockState {
            expires_at,
            disconnect_at: None,
        })))
    }

    fn renew(&self, expires_at: i64) {
        if let Ok(mut c) = self.0.lock() {
            c.expires_at = expires_at;
            c.disconnect_at = None;
        }
    }

    fn is_expired(&self, now: i64) -> bool {
        self.0.lock().map(|c| now >= c.expires_at).unwrap_or(true)
    }

    pub(crate) fn due(&self, now: i64, grace_secs: i64) -> ClockDue {
        let Ok(mut c) = self.0.lock() else {
            return ClockDue::Disconnect;
        };
        match c.disconnect_at {
            Some(at) if now >= at => ClockDue::Disconnect,
            Some(_) => ClockDue::Nothing,
            None if now >= c.expires_at => {
                let disconnect_at = now + grace_secs;
                c.disconnect_at = Some(disconnect_at);
                ClockDue::Notify {
                    expired_at: c.expires_at,
                    disconnect_at,
                }
            }
            None => ClockDue::Nothing,
        }
    }
}

fn iso(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Events other than `auth:refresh` need a token that has not expired.
fn require_session(clock: &SessionClock) -> Result<(), AppError> {
    if clock.is_expired(chrono::Utc::now().timestamp()) {
        Err(AppError::unauthorized(
            "access token expired: send auth:refresh {token} with a new one",
        ))
    } else {
        Ok(())
    }
}

pub(crate) fn meeting_room(id: Uuid) -> String {
    format!("meeting:{id}")
}
fn peer_user_room(meeting: Uuid, user: Uuid) -> String {
    format!("meeting:{meeting}:user:{user}")
}
fn peer_socket_room(meeting: Uuid, sid: &str) -> String {
    format!("meeting:{meeting}:sid:{sid}")
}
pub(crate) fn user_room(id: Uuid) -> String {
    format!("user:{id}")
}

/// Acks are `{ok: true, ...}` or `{ok: false, error: {code, message}}`.
fn ack_ok(ack: Ack, extra: Value) {
    let mut body = json!({ "ok": true });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    send_ack(ack, &body);
}

/// A reply the client waits for; when the socket's outgoing buffer is full
/// (`SOCKETIO_MAX_BUFFERED_PACKETS`) it is lost and the client's ack times out, so say so.
fn send_ack(ack: Ack, body: &Value) {
    if let Err(err) = ack.send(body) {
        tracing::warn!(error = %err, "could not send a Socket.IO ack");
    }
}

fn ack_err(ack: Ack, err: &AppError) {
    if let AppError::Internal(cause) = err {
        tracing::error!(error = format!("{cause:#}"), "socket handler failed");
    }
    send_ack(
        ack,
        &json!({
            "ok": false,
            "error": { "code": err.code(), "message": err.to_string() }
        }),
    );
}

fn parse<T>(data: Result<T, socketioxide::ParserError>) -> Result<T, AppError> {
    data.map_err(|e| AppError::validation(format!("invalid payload: {e}")))
}

// ---------------------------------------------------------------- handshake

#[derive(Deserialize)]
pub(crate) struct HandshakeAuth {
    token: Option<String>,
}

/// Rejection text the client receives as its `connect_error` message.
#[derive(Debug)]
pub(crate) struct ConnectRejected(String);

impl std::fmt::Display for ConnectRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Connect middleware: a valid access token in `auth: {token}` or no connection.
pub(crate) async fn authenticate(
    s: Socket,
    TryData(auth): TryData<HandshakeAuth>,
    State(ctx): State<Ctx>,
) -> Result<(), ConnectRejected> {
    let token = auth
        .ok()
        .and_then(|a| a.token)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            ConnectRejected("unauthorized: missing access token (auth: { token })".into())
        })?;
    let claims = crate::auth::authenticate(&ctx.app, token.trim())
        .await
        .map_err(|e| ConnectRejected(format!("unauthorized: {e}")))?;
    s.extensions.insert(SessionClock::new(claims.exp));
    s.join(user_room(claims.sub));
    s.extensions.insert(claims);
    s.extensions.insert(JoinedMeetings::default());
    register_handlers(&s);
    Ok(())
}

/// Runs once the socket is connected (socketioxide spawns it after sending CONNECT):
/// its handlers and its user room were set up by [`authenticate`] already.
pub(crate) async fn on_connect(
    s: Socket,
    Extension(claims): Extension<Claims>,
    State(ctx): State<Ctx>,
) {
    announce_online(s, claims.sub, ctx).await;
}

/// Registered in the connect middleware, which socketioxide awaits before it sends the
/// CONNECT packet: the connect handler is spawned after that packet, so under load a
/// client's first event (its `meeting:join` right after connecting) could be read before
/// a handler registered there exists, and be dropped with its ack never sent.
fn register_handlers(s: &Socket) {
    s.on("auth:refresh", auth_refresh);
    s.on("meeting:join", meeting_join);
    s.on("meeting:leave", meeting_leave);
    for event in ["signal:offer", "signal:answer", "signal:ice"] {
        s.on(event, signal);
    }
    s.on("chat:send", chat_send);
    s.on("recording:start", recording_start);
    s.on("recording:stop", recording_stop);
    s.on_disconnect(on_disconnect);
}

async fn announce_online(s: Socket, user: Uuid, ctx: Ctx) {
    match ctx.presence.socket_connected(user).await {
        Ok(true) => {
            let _ = s
                .broadcast()
                .emit("presence:online", &json!({ "userId": user }))
                .await;
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "presence update failed"),
    }
}

async fn on_disconnect(
    s: Socket,
    Extension(claims): Extension<Claims>,
    Extension(joined): Extension<JoinedMeetings>,
    State(ctx): State<Ctx>,
    reason: DisconnectReason,
) {
    tracing::debug!(sid = %s.id, ?reason, "socket disconnected");
    let _ = ctx.app.connections.take_upgrade(&s.id.to_string());
    for meeting in joined.drain() {
        let _ = ctx.members.remove(meeting, &s.id.to_string()).await;
        announce_left(&s, &claims, meeting).await;
    }
    match ctx.presence.socket_disconnected(claims.sub).await {
        Ok(true) => {
            let _ = s
                .broadcast()
                .emit("presence:offline", &json!({ "userId": claims.sub }))
                .await;
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "presence update failed"),
    }
}

// ---------------------------------------------------------------- session

#[derive(Deserialize)]
struct RefreshRequest {
    token: String,
}

/// `auth:refresh {token}`: a new access token of the same account extends the
/// session (and applies the account's current role); ack `{expiresAt, role}`.
async fn auth_refresh(
    s: Socket,
    TryData(req): TryData<RefreshRequest>,
    ack: Ack,
    Extension(claims): Extension<Claims>,
    Extension(clock): Extension<SessionClock>,
    State(ctx): State<Ctx>,
) {
    let result = async {
        let req = parse(req)?;
        let fresh = crate::auth::authenticate(&ctx.app, req.token.trim()).await?;
        if fresh.sub != claims.sub {
            return Err(AppError::forbidden(
                "the new token belongs to another account; reconnect instead",
            ));
        }
        Ok(fresh)
    }
    .await;
    match result {
        Ok(fresh) => {
            clock.renew(fresh.exp);
            let role = fresh.role;
            let expires_at = fresh.exp;
            if role != claims.role {
                apply_role(&s, &ctx, fresh).await;
            } else {
                s.extensions.insert(fresh);
            }
            ack_ok(ack, json!({ "expiresAt": iso(expires_at), "role": role }));
        }
        Err(e) => ack_err(ack, &e),
    }
}

/// The sweeper's notice: the token expired, `auth:refresh` before `disconnectAt`.
pub(crate) fn notify_expired(s: &Socket, expired_at: i64, disconnect_at: i64, grace_secs: i64) {
    let _ = s.emit(
        "auth:expired",
        &json!({
            "expiredAt": iso(expired_at),
            "disconnectAt": iso(disconnect_at),
            "graceSeconds": grace_secs,
        }),
    );
}

/// Ends the session: `auth:revoked {reason}`, then a server-side disconnect
/// (socket.io-client does not reconnect by itself after one).
pub(crate) fn revoke(s: Socket, reason: &str) {
    let _ = s.emit("auth:revoked", &json!({ "reason": reason }));
    if let Err(e) = s.disconnect() {
        tracing::warn!(error = %e, "could not disconnect a revoked socket");
    }
}

/// Makes the socket follow its account as it is now: gone → revoked; another
/// role → the new role, and out of the meetings it may no longer be in.
pub(crate) async fn apply_account(s: Socket, ctx: &Ctx, status: AccountStatus) {
    let Some(claims) = s.extensions.get::<Claims>() else {
        return;
    };
    match status {
        AccountStatus::Gone => revoke(s, "account_deactivated"),
        AccountStatus::Active(role) if role != claims.role => {
            apply_role(&s, ctx, Claims { role, ..claims }).await;
        }
        AccountStatus::Active(_) => {}
    }
}

async fn apply_role(s: &Socket, ctx: &Ctx, claims: Claims) {
    s.extensions.insert(claims.clone());
    let _ = s.emit("auth:updated", &json!({ "role": claims.role }));
    let Some(joined) = s.extensions.get::<JoinedMeetings>() else {
        return;
    };
    for meeting in joined.snapshot() {
        let reason = match meetings::authorize(&ctx.app.db, meeting, &claims).await {
            Ok(_) => continue,
            Err(AppError::Forbidden(_) | AppError::NotFound(_)) => "not_allowed",
            // Cannot tell now (database down): leave it; the next change re-checks.
            Err(e) => {
                tracing::warn!(error = %e, "could not re-check a meeting after a role change");
                continue;
            }
        };
        if !joined.remove(meeting) {
            continue;
        }
        s.leave([
            meeting_room(meeting),
            peer_user_room(meeting, claims.sub),
            peer_socket_room(meeting, &s.id.to_string()),
        ]);
        let _ = ctx.members.remove(meeting, &s.id.to_string()).await;
        announce_left(s, &claims, meeting).await;
        let _ = s.emit(
            "meeting:removed",
            &json!({ "meetingId": meeting, "reason": reason }),
        );
    }
}

// ---------------------------------------------------------------- meetings

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MeetingRef {
    meeting_id: Uuid,
}

fn participant(s: &Socket, claims: &Claims, meeting: Uuid) -> Value {
    json!({
        "meetingId": meeting,
        "userId": claims.sub,
        "role": claims.role,
        "socketId": s.id.to_string(),
    })
}

async fn meeting_join(
    s: Socket,
    TryData(req): TryData<MeetingRef>,
    ack: Ack,
    Extension(claims): Extension<Claims>,
    Extension(joined): Extension<JoinedMeetings>,
    Extension(clock): Extension<SessionClock>,
    State(ctx): State<Ctx>,
) {
    let result = async {
        require_session(&clock)?;
        let req = parse(req)?;
        meetings::authorize(&ctx.app.db, req.meeting_id, &claims)
            .await?
            .enter()
    }
    .await;
    let access = match result {
        Ok(access) => access,
        Err(e) => return ack_err(ack, &e),
    };
    let m = access.meeting_id;
    s.join([
        meeting_room(m),
        peer_user_room(m, claims.sub),
        peer_socket_room(m, &s.id.to_string()),
    ]);
    if joined.insert(m) {
        let _ = s
            .to(meeting_room(m))
            .emit("meeting:participant-joined", &participant(&s, &claims, m))
            .await;
    }
    let me = Member {
        user_id: claims.sub,
        role: claims.role,
        socket_id: s.id.to_string(),
        instance: ctx.presence.instance_id().to_string(),
    };
    // Who is already here (any replica), so the newcomer can address peers.
    let participants = match ctx.members.add(m, &me).await {
        Ok(()) => ctx.members.list(m, ctx.presence.store()).await,
        Err(e) => Err(e),
    }
    .unwrap_or_else(|e| {
        tracing::warn!(error = %e, "meeting member list unavailable");
        Vec::new()
    })
    .into_iter()
    .filter(|p| p.socket_id != me.socket_id)
    .collect::<Vec<_>>();
    ack_ok(
        ack,
        json!({
            "meetingId": m,
            "socketId": s.id.to_string(),
            "isHost": access.is_host,
            "participants": participants,
        }),
    );
}

async fn announce_left(s: &Socket, claims: &Claims, meeting: Uuid) {
    let _ = s
        .to(meeting_room(meeting))
        .emit("meeting:participant-left", &participant(s, claims, meeting))
        .await;
}

async fn meeting_leave(
    s: Socket,
    TryData(req): TryData<MeetingRef>,
    ack: Ack,
    Extension(claims): Extension<Claims>,
    Extension(joined): Extension<JoinedMeetings>,
    State(ctx): State<Ctx>,
) {
    let req = match parse(req) {
        Ok(req) => req,
        Err(e) => return ack_err(ack, &e),
    };
    let m = req.meeting_id;
    if !joined.remove(m) {
        return ack_err(ack, &AppError::conflict("you have not joined this meeting"));
    }
    s.leave([
        meeting_room(m),
        peer_user_room(m, claims.sub),
        peer_socket_room(m, &s.id.to_string()),
    ]);
    let _ = ctx.members.remove(m, &s.id.to_string()).await;
    announce_left(&s, &claims, m).await;
    ack_ok(ack, json!({ "meetingId": m }));
}

fn require_joined(joined: &JoinedMeetings, meeting: Uuid) -> Result<(), AppError> {
    if joined.contains(meeting) {
        Ok(())
    } else {
        Err(AppError::forbidden("join the meeting first (meeting:join)"))
    }
}

// ---------------------------------------------------------------- signalling

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignalRequest {
    meeting_id: Uuid,
    /// Deliver only to this user's sockets in the meeting.
    to_user_id: Option<Uuid>,
    /// Deliver only to this socket in the meeting.
    to_socket_id: Option<String>,
    /// SDP or ICE candidate, relayed untouched.
    payload: Value,
}

async fn signal(
    s: Socket,
    socketioxide::extract::Event(event): socketioxide::extract::Event,
    TryData(req): TryData<SignalRequest>,
    ack: Ack,
    Extension(claims): Extension<Claims>,
    Extension(joined): Extension<JoinedMeetings>,
    Extension(clock): Extension<SessionClock>,
) {
    let req = match require_session(&clock)
        .and_then(|()| parse(req))
        .and_then(|r| require_joined(&joined, r.meeting_id).map(|()| r))
    {
        Ok(req) => req,
        Err(e) => return ack_err(ack, &e),
    };
    let m = req.meeting_id;
    let room = match (&req.to_socket_id, req.to_user_id) {
        (Some(sid), _) => peer_socket_room(m, sid),
        (None, Some(user)) => peer_user_room(m, user),
        (None, None) => meeting_room(m),
    };
    let message = json!({
        "meetingId": m,
        "from": { "userId": claims.sub, "socketId": s.id.to_string() },
        "payload": req.payload,
    });
    match s.to(room).emit(&event, &message).await {
        Ok(()) => ack_ok(ack, json!({})),
        Err(e) => ack_err(ack, &AppError::unavailable(format!("relay failed: {e}"))),
    }
}

// ---------------------------------------------------------------- chat

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatSend {
    meeting_id: Uuid,
    body: String,
    /// The client's id for this message: a re-send after a reconnect returns the
    /// stored message instead of storing it twice.
    client_message_id: Option<String>,
}

async fn chat_send(
    s: Socket,
    TryData(req): TryData<ChatSend>,
    ack: Ack,
    Extension(claims): Extension<Claims>,
    Extension(joined): Extension<JoinedMeetings>,
    Extension(clock): Extension<SessionClock>,
    State(ctx): State<Ctx>,
) {
    let result = async {
        require_session(&clock)?;
        let req = parse(req)?;
        require_joined(&joined, req.meeting_id)?;
        chat::store(
            &ctx.app.db,
            req.meeting_id,
            claims.sub,
            &req.body,
            req.client_message_id.as_deref(),
        )
        .await
    }
    .await;
    match result {
        Ok(stored) => {
            // A re-send was broadcast the first time already.
            if stored.is_new {
                let _ = s
                    .to(meeting_room(stored.message.meeting_id))
                    .emit("chat:message", &stored.message)
                    .await;
            }
            ack_ok(ack, json!({ "message": stored.message }));
        }
        Err(e) => ack_err(ack, &e),
    }
}

// ---------------------------------------------------------------- recording

fn ctx_clock(s: &Socket) -> SessionClock {
    // Every authenticated socket has one; a missing one counts as expired.
    s.extensions
        .get::<SessionClock>()
        .unwrap_or_else(|| SessionClock::new(0))
}

async fn recording_change(
    s: Socket,
    req: Result<MeetingRef, socketioxide::ParserError>,
    ack: Ack,
    claims: Claims,
    joined: JoinedMeetings,
    ctx: Ctx,
    start: bool,
) {
    let result = async {
        require_session(&ctx_clock(&s))?;
        let req = parse(req)?;
        require_joined(&joined, req.meeting_id)?;
        let access = meetings::authorize(&ctx.app.db, req.meeting_id, &claims)
            .await?
            .enter()?;
        if !access.is_host {
            return Err(AppError::forbidden(
                "only the meeting host can control recording",
            ));
        }
        if start {
            recordings::start(&ctx.app.db, req.meeting_id, claims.sub).await
        } else {
            recordings::stop(&ctx.app.db, req.meeting_id, claims.sub).await
        }
    }
    .await;
    match result {
        Ok(recording) => {
            let event = if start {
                "recording:started"
            } else {
                "recording:stopped"
            };
            let _ = s
                .to(meeting_room(recording.meeting_id))
                .emit(event, &recording)
                .await;
            ack_ok(ack, json!({ "recording": recording }));
        }
        Err(e) => ack_err(ack, &e),
    }
}

async fn recording_start(
    s: Socket,
    TryData(req): TryData<MeetingRef>,
    ack: Ack,
    Extension(claims): Extension<Claims>,
    Extension(joined): Extension<JoinedMeetings>,
    State(ctx): State<Ctx>,
) {
    recording_change(s, req, ack, claims, joined, ctx, true).await;
}

async fn recording_stop(
    s: Socket,
    TryData(req): TryData<MeetingRef>,
    ack: Ack,
    Extension(claims): Extension<Claims>,
    Extension(joined): Extension<JoinedMeetings>,
    State(ctx): State<Ctx>,
) {
    recording_change(s, req, ack, claims, joined, ctx, false).await;
}
