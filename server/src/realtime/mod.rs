//! Realtime surface: Socket.IO at `/socket.io` (meetings, WebRTC signalling,
//! chat, recording state, presence) shared across replicas through the
//! socketioxide Redis adapter, and the raw WebSocket terminal relay.

mod adapter;
pub mod drain;
mod sessions;
mod socket;
pub mod terminal;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use futures::future::BoxFuture;
use rand::seq::SliceRandom;
use serde::Serialize;
use serde_json::json;
use socketioxide::extract::SocketRef;
use socketioxide::handler::ConnectHandler;
use socketioxide::{SocketIo, TransportType};
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::SocketIoAdapter;
use crate::net::ConnectionHandle;
use crate::services::realtime::members::MeetingMembers;
use crate::services::realtime::presence::{InstancePresence, PresenceStore};
use crate::state::AppState;

/// The Socket.IO adapter: rooms and broadcasts span every replica on the Redis (or, with
/// `SOCKETIO_ADAPTER=memory`, stay in this process).
pub type SioAdapter =
    socketioxide_redis::CustomRedisAdapter<socketioxide::adapter::Emitter, adapter::PubSub>;

/// Time between a client's `server:draining` notice and closing its transport: a
/// long-polling client only sees the event on its next poll round-trip.
const DRAIN_NOTICE: Duration = Duration::from_secs(1);
/// On SIGTERM the connections are moved within this window (the pod is going away).
const SHUTDOWN_RECONNECT_WITHIN: Duration = Duration::from_secs(1);

/// Ends one long-polling Engine.IO session, by sid.
type ClosePolling = Arc<dyn Fn(&str) -> BoxFuture<'static, ()> + Send + Sync>;

/// What a drain is moving.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DrainCounts {
    /// Socket.IO clients told to reconnect.
    pub sockets: usize,
    /// Terminal relay WebSockets closed with 1012.
    pub relays: usize,
}

enum Target {
    Socket(SocketRef<SioAdapter>),
    Relay(CancellationToken),
}

/// State handed to every Socket.IO handler.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub app: AppState,
    pub presence: InstancePresence,
    pub members: MeetingMembers,
}

/// One replica's Socket.IO server and presence registration.
#[derive(Clone)]
pub struct Realtime {
    io: SocketIo<SioAdapter>,
    router: Router<AppState>,
    presence: InstancePresence,
    connections: drain::Connections,
    close_polling: ClosePolling,
    /// Cancelled once the connections are gone at shutdown (stops the heartbeat).
    stopped: CancellationToken,
}

/// The adapter's pub/sub needs RESP3 (push messages).
#[cfg(test)]
fn resp3_url(url: &str) -> String {
    crate::startup::with_resp3(url)
}

impl Realtime {
    /// Connects the Redis adapter, registers the namespace and starts the
    /// presence heartbeat (stopped by `state.shutdown`).
    pub async fn start(state: &AppState) -> anyhow::Result<Realtime> {
        let cfg = &state.config.realtime;
        let driver = match cfg.socketio_adapter {
            SocketIoAdapter::Redis => {
                let client = crate::startup::redis_client(&state.config, true)
                    .context("Redis client for the Socket.IO adapter")?;
                adapter::PubSub::Redis(
                    adapter::ReconnectingDriver::new(client)
                        .await
                        .context("connecting the Socket.IO Redis adapter")?,
                )
            }
            SocketIoAdapter::Memory => adapter::PubSub::Local,
        };
        let adapter = RedisAdapterCtr::new_with_driver(
            driver,
            RedisAdapterConfig::new().with_prefix(format!("{}-sio", cfg.redis_prefix)),
        );

        let presence = InstancePresence::new(PresenceStore::new(state.redis.clone(), cfg));
        presence.heartbeat().await.context("registering presence")?;
        let ctx = Ctx {
            app: state.clone(),
            presence: presence.clone(),
            members: MeetingMembers::new(state.redis.clone(), &cfg.redis_prefix),
        };

        let (svc, io) = SocketIo::builder()
            .with_state(ctx.clone())
            .max_payload(cfg.socketio_max_payload)
            .max_buffer_size(cfg.socketio_max_buffered)
            .ws_max_message_size(cfg.ws_max_message)
            .ws_max_frame_size(cfg.ws_max_message)
            .with_adapter::<SioAdapter>(adapter)
            .build_svc();
        io.ns("/", socket::on_connect.with(socket::authenticate))
            .await
            .context("initialising the Socket.IO namespace")?;

        // Presence stays fresh until the connections are moved, not just until SIGTERM.
        let stopped = CancellationToken::new();
        tokio::spawn(heartbeat_loop(
            io.clone(),
            presence.clone(),
            stopped.clone(),
        ));
        // Sessions follow their token and their account (see `sessions`).
        tokio::spawn(sessions::expiry_sweeper(
            io.clone(),
            state.config.security.session_grace,
            stopped.clone(),
        ));
        tokio::spawn(sessions::account_watcher(
            io.clone(),
            ctx.clone(),
            state.accounts.subscribe(),
            stopped.clone(),
        ));

        // An Engine.IO close packet posted for the session ends it as if the client had
        // left; the client's next poll fails and it reconnects.
        let close_polling: ClosePolling = {
            let svc = svc.clone();
            Arc::new(move |sid: &str| {
                let svc = svc.clone();
                let req = axum::http::Request::post(format!(
                    "/socket.io/?EIO=4&transport=polling&sid={sid}"
                ))
                .header("content-type", "text/plain;charset=UTF-8")
                .body(axum::body::Body::from("1"));
                Box::pin(async move {
                    if let Ok(req) = req {
                        let _ = svc.oneshot(req).await;
                    }
                })
            })
        };

        let router = Router::new()
            .route_service("/socket.io", svc.clone())
            .route_service("/socket.io/", svc)
            .route_layer(axum::middleware::from_fn_with_state(
                state.connections.clone(),
                drain::socketio_gate,
            ));
        Ok(Realtime {
            io,
            router,
            presence,
            connections: state.connections.clone(),
            close_polling,
            stopped,
        })
    }

    /// Routes to merge into the application router (inside its CORS policy).
    pub fn routes(&self) -> Router<AppState> {
        self.router.clone()
    }

    /// Enters drain mode and moves every local Socket.IO client and terminal relay,
    /// spread evenly in random order over `window`: each client is told
    /// `server:draining {reconnect: true}` and its transport closed ("transport close":
    /// it reconnects by itself); relays close with 1012. Returns at once with what is
    /// being moved and the task doing it, which stops early on resume or a newer drain.
    pub fn drain(&self, window: Duration) -> (DrainCounts, JoinHandle<()>) {
        let epoch = self.connections.begin_drain();
        let sockets = self.local_sockets();
        let relays = self.connections.relays();
        let counts = DrainCounts {
            sockets: sockets.len(),
            relays: relays.len(),
        };
        let mut targets: Vec<Target> = sockets
            .into_iter()
            .map(Target::Socket)
            .chain(relays.into_iter().map(Target::Relay))
            .collect();
        targets.shuffle(&mut rand::rng());
        tracing::info!(
            sockets = counts.sockets,
            relays = counts.relays,
            ?window,
            "draining connections"
        );

        let this = self.clone();
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let n = targets.len().max(1) as u32;
            let mut moving = tokio::task::JoinSet::new();
            for (i, target) in targets.into_iter().enumerate() {
                tokio::time::sleep_until(start + window * i as u32 / n).await;
                if !this.connections.is_current(epoch) {
                    tracing::info!("connection drain stopped (resumed or superseded)");
                    break;
                }
                match target {
                    Target::Relay(relay) => relay.cancel(),
                    Target::Socket(socket) => {
                        let this = this.clone();
                        moving.spawn(async move { this.move_socket(socket).await });
                    }
                }
            }
            moving.join_all().await;
        });
        (counts, task)
    }

    fn local_sockets(&self) -> Vec<SocketRef<SioAdapter>> {
        self.io.of("/").map(|ns| ns.sockets()).unwrap_or_default()
    }

    /// Distinct rooms the local sockets are in (the metrics' `socketio_rooms`).
    pub fn local_rooms(&self) -> usize {
        let rooms: std::collections::HashSet<_> = self
            .local_sockets()
            .iter()
            .flat_map(|s| s.rooms())
            .collect();
        rooms.len()
    }

    /// What a drain would move now.
    pub fn counts(&self) -> DrainCounts {
        DrainCounts {
            sockets: self.local_sockets().len(),
            relays: self.connections.relays().len(),
        }
    }

    async fn move_socket(&self, socket: SocketRef<SioAdapter>) {
        let _ = socket.emit("server:draining", &json!({ "reconnect": true }));
        tokio::time::sleep(DRAIN_NOTICE).await;
        let sid = socket.id.to_string();
        if let Some(connection) = self.connections.take_upgrade(&sid) {
            connection.cut();
            return;
        }
        match socket.transport_type() {
            TransportType::Websocket => {
                // Opened as a websocket: its handshake request came on that connection.
                if let Some(connection) = socket.req_parts().extensions.get::<ConnectionHandle>() {
                    connection.cut();
                }
            }
            TransportType::Polling => (self.close_polling)(&sid).await,
        }
    }

    /// SIGTERM: moves every connection within a short window, withdraws this replica's
    /// presence while the adapter still reaches the others, then closes what is left.
    pub async fn shutdown(&self) {
        let (_, moving) = self.drain(SHUTDOWN_RECONNECT_WITHIN);
        if moving.await.is_err() {
            tracing::error!("connection drain task panicked");
        }
        self.stopped.cancel();
        match self.presence.withdraw().await {
            Ok(gone) => {
                for user in gone {
                    let _ = self
                        .io
                        .emit("presence:offline", &json!({ "userId": user }))
                        .await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not withdraw presence"),
        }
        self.io.close().await;
        for relay in self.connections.relays() {
            relay.cancel();
        }
    }
}

async fn heartbeat_loop(
    io: SocketIo<SioAdapter>,
    presence: InstancePresence,
    stopped: CancellationToken,
) {
    let period = (presence.store().ttl() / 3).max(Duration::from_millis(200));
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            () = stopped.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = presence.heartbeat().await {
            tracing::warn!(error = %e, "presence heartbeat failed");
            continue;
        }
        match presence.reap_dead_instances().await {
            Ok(gone) => {
                for user in gone {
                    let _ = io
                        .emit("presence:offline", &json!({ "userId": user }))
                        .await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "presence reaping failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::resp3_url;

    #[test]
    fn adapter_url_asks_for_resp3_once() {
        assert_eq!(resp3_url("redis://h:1/4"), "redis://h:1/4?protocol=resp3");
        assert_eq!(
            resp3_url("redis://h:1/4?x=1"),
            "redis://h:1/4?x=1&protocol=resp3"
        );
        assert_eq!(
            resp3_url("redis://h:1?protocol=resp3"),
            "redis://h:1?protocol=resp3"
        );
    }
}
