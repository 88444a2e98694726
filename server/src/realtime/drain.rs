//! Drain mode: moving this replica's long-lived connections elsewhere, asked for by the
//! operator on the internal port after a traffic switch, and by SIGTERM.
//!
//! While draining, new Engine.IO handshakes (a `/socket.io/` request without `sid`) get
//! 503, which socket.io-client retries (a namespace-middleware rejection it would not),
//! and new terminal relays are closed with 1012 before claiming a seat. Requests of
//! existing sessions keep working until their connection is moved.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::error::AppError;
use crate::net::ConnectionHandle;

/// Shared by the Socket.IO gate, the relays, the internal endpoints and shutdown.
#[derive(Clone, Default)]
pub struct Connections(Arc<Inner>);

#[derive(Default)]
struct Inner {
    draining: AtomicBool,
    /// Bumped by every drain and resume: a drain in progress stops when it changes.
    epoch: AtomicU64,
    next_relay: AtomicU64,
    relays: Mutex<HashMap<u64, CancellationToken>>,
    /// Engine.IO sessions upgraded from polling to websocket, by sid, with the
    /// connection carrying the websocket (their handshake's connection is another one).
    upgraded: Mutex<Upgraded>,
}

#[derive(Default)]
struct Upgraded {
    by_sid: HashMap<String, ConnectionHandle>,
    purge_above: usize,
}

impl Connections {
    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::SeqCst)
    }

    /// Enters drain mode; returns the epoch the caller's drain belongs to.
    pub fn begin_drain(&self) -> u64 {
        self.0.draining.store(true, Ordering::SeqCst);
        self.0.epoch.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Leaves drain mode and stops a drain in progress.
    pub fn resume(&self) {
        self.0.draining.store(false, Ordering::SeqCst);
        self.0.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// False once a later drain or a resume superseded the drain of `epoch`.
    pub fn is_current(&self, epoch: u64) -> bool {
        self.0.epoch.load(Ordering::SeqCst) == epoch
    }

    /// Registers a terminal relay; it ends (1012) when its token is cancelled.
    pub fn relay_started(&self) -> RelayGuard {
        let id = self.0.next_relay.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        if let Ok(mut relays) = self.0.relays.lock() {
            relays.insert(id, token.clone());
        }
        RelayGuard {
            connections: self.clone(),
            id,
            token,
        }
    }

    pub fn relays(&self) -> Vec<CancellationToken> {
        self.0
            .relays
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }

    fn track_upgrade(&self, sid: &str, connection: ConnectionHandle) {
        let Ok(mut up) = self.0.upgraded.lock() else {
            return;
        };
        up.by_sid.insert(sid.to_string(), connection);
        // Sessions that never reached a namespace have no disconnect to forget them:
        // drop closed connections now and then (amortised, not on every upgrade).
        if up.by_sid.len() > up.purge_above {
            up.by_sid.retain(|_, c| !c.is_closed());
            up.purge_above = (up.by_sid.len() * 2).max(1024);
        }
    }

    /// The connection a websocket-upgraded session runs on, if it was upgraded.
    pub(crate) fn take_upgrade(&self, sid: &str) -> Option<ConnectionHandle> {
        self.0.upgraded.lock().ok()?.by_sid.remove(sid)
    }
}

/// Unregisters its relay when dropped.
pub struct RelayGuard {
    connections: Connections,
    id: u64,
    token: CancellationToken,
}

impl RelayGuard {
    /// Resolves when the drain moves this relay.
    pub async fn moved(&self) {
        self.token.cancelled().await;
    }
}

impl Drop for RelayGuard {
    fn drop(&mut self) {
        if let Ok(mut relays) = self.connections.0.relays.lock() {
            relays.remove(&self.id);
        }
    }
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// In front of the Socket.IO service: refuses new sessions while draining and notes
/// which connection an upgraded websocket runs on.
pub async fn socketio_gate(
    State(connections): State<Connections>,
    req: Request,
    next: Next,
) -> Response {
    let query = req.uri().query().unwrap_or("");
    match query_param(query, "sid") {
        None if connections.is_draining() => {
            return AppError::unavailable("server is draining, reconnect").into_response();
        }
        Some(sid) if query_param(query, "transport") == Some("websocket") => {
            if let Some(connection) = req.extensions().get::<ConnectionHandle>() {
                connections.track_upgrade(sid, connection.clone());
            }
        }
        _ => {}
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_found_by_name() {
        let q = "EIO=4&transport=websocket&sid=abc";
        assert_eq!(query_param(q, "sid"), Some("abc"));
        assert_eq!(query_param(q, "transport"), Some("websocket"));
        assert_eq!(query_param("EIO=4&sid=", "sid"), None);
        assert_eq!(query_param("EIO=4&xsid=1", "sid"), None);
    }

    #[test]
    fn resume_supersedes_a_drain() {
        let c = Connections::default();
        let epoch = c.begin_drain();
        assert!(c.is_draining() && c.is_current(epoch));
        c.resume();
        assert!(!c.is_draining() && !c.is_current(epoch));
    }

    #[test]
    fn relays_unregister_when_they_end() {
        let c = Connections::default();
        let guard = c.relay_started();
        assert_eq!(c.relays().len(), 1);
        drop(guard);
        assert!(c.relays().is_empty());
    }
}
