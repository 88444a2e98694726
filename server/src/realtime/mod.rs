//! Realtime surface: Socket.IO at `/socket.io` (meetings, WebRTC signalling,
//! chat, recording state, presence) shared across replicas through the
//! socketioxide Redis adapter, and the raw WebSocket terminal relay.

mod socket;
pub mod terminal;

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use serde_json::json;
use socketioxide::SocketIo;
use socketioxide::handler::ConnectHandler;
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};

use crate::services::realtime::members::MeetingMembers;
use crate::services::realtime::presence::{InstancePresence, PresenceStore};
use crate::state::AppState;

/// The Socket.IO adapter: rooms and broadcasts span every replica on the Redis.
pub type SioAdapter = socketioxide_redis::RedisAdapter<socketioxide::adapter::Emitter>;

/// Time between the `server:draining` notice and closing the transports.
const DRAIN_NOTICE: Duration = Duration::from_secs(1);

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
}

/// The adapter's pub/sub needs RESP3 (push messages).
fn resp3_url(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

impl Realtime {
    /// Connects the Redis adapter, registers the namespace and starts the
    /// presence heartbeat (stopped by `state.shutdown`).
    pub async fn start(state: &AppState) -> anyhow::Result<Realtime> {
        let cfg = &state.config.realtime;
        let client = redis::Client::open(resp3_url(state.config.redis_url.expose()))
            .context("parsing REDIS_URL for the Socket.IO adapter")?;
        let adapter = RedisAdapterCtr::new_with_redis_config(
            &client,
            RedisAdapterConfig::new().with_prefix(format!("{}-sio", cfg.redis_prefix)),
        )
        .await
        .context("connecting the Socket.IO Redis adapter")?;

        let presence = InstancePresence::new(PresenceStore::new(state.redis.clone(), cfg));
        presence.heartbeat().await.context("registering presence")?;
        let ctx = Ctx {
            app: state.clone(),
            presence: presence.clone(),
            members: MeetingMembers::new(state.redis.clone(), &cfg.redis_prefix),
        };

        let (svc, io) = SocketIo::builder()
            .with_state(ctx)
            .max_payload(cfg.socketio_max_payload)
            .ws_max_message_size(cfg.ws_max_message)
            .ws_max_frame_size(cfg.ws_max_message)
            .with_adapter::<SioAdapter>(adapter)
            .build_svc();
        io.ns("/", socket::on_connect.with(socket::authenticate))
            .await
            .context("initialising the Socket.IO namespace")?;

        tokio::spawn(heartbeat_loop(
            io.clone(),
            presence.clone(),
            state.shutdown.clone(),
        ));

        let router = Router::new()
            .route_service("/socket.io", svc.clone())
            .route_service("/socket.io/", svc);
        Ok(Realtime {
            io,
            router,
            presence,
        })
    }

    /// Routes to merge into the application router (inside its CORS policy).
    pub fn routes(&self) -> Router<AppState> {
        self.router.clone()
    }

    /// Tells local Socket.IO clients to reconnect elsewhere, then closes their
    /// transports (clients see "transport close" and reconnect on their own).
    pub async fn drain(&self) {
        let _ = self
            .io
            .local()
            .emit("server:draining", &json!({ "reconnect": true }))
            .await;
        // Let the event reach clients before closing: a long-polling client only
        // sees it on its next poll round-trip.
        tokio::time::sleep(DRAIN_NOTICE).await;
        // Announce departures while the adapter still reaches other replicas.
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
    }
}

async fn heartbeat_loop(
    io: SocketIo<SioAdapter>,
    presence: InstancePresence,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let period = (presence.store().ttl() / 3).max(Duration::from_millis(200));
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
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
