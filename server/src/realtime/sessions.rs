//! Long-lived Socket.IO sessions follow their access token and their account.
//!
//! - Token expiry: a sweeper looks at every local socket; once its token has expired
//!   the socket gets `auth:expired {expiredAt, disconnectAt, graceSeconds}` and has
//!   `SESSION_REAUTH_GRACE_SECONDS` to send `auth:refresh {token}`, else it gets
//!   `auth:revoked {reason: "expired"}` and is disconnected. Meanwhile its other
//!   events are refused with `UNAUTHORIZED`.
//! - Account changes (any replica's admin update or deactivation, delivered by
//!   `auth::status`): the local sockets of that user re-check the account and are
//!   revoked (deactivated) or downgraded (new role, out of meetings they may no
//!   longer join). After the subscription was down, every local socket re-checks.

use std::collections::HashMap;
use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::socket::{self, ClockDue, SessionClock};
use super::{Ctx, SioAdapter};
use crate::auth::Claims;
use crate::auth::status::{self, AccountEvent};

/// Attempts to read an account whose change arrived while PostgreSQL is down.
const RECHECK_ATTEMPTS: u32 = 20;
const RECHECK_BACKOFF: Duration = Duration::from_millis(500);

pub(super) async fn expiry_sweeper(
    io: SocketIo<SioAdapter>,
    grace: Duration,
    stopped: CancellationToken,
) {
    let period = (grace / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let grace_secs = grace.as_secs() as i64;
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            () = stopped.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = chrono::Utc::now().timestamp();
        let sockets = io.of("/").map(|ns| ns.sockets()).unwrap_or_default();
        for s in sockets {
            let Some(clock) = s.extensions.get::<SessionClock>() else {
                continue;
            };
            match clock.due(now, grace_secs) {
                ClockDue::Nothing => {}
                ClockDue::Notify {
                    expired_at,
                    disconnect_at,
                } => {
                    if grace_secs == 0 {
                        socket::revoke(s, "expired");
                    } else {
                        socket::notify_expired(&s, expired_at, disconnect_at, grace_secs);
                    }
                }
                ClockDue::Disconnect => socket::revoke(s, "expired"),
            }
        }
    }
}

pub(super) async fn account_watcher(
    io: SocketIo<SioAdapter>,
    ctx: Ctx,
    mut events: broadcast::Receiver<AccountEvent>,
    stopped: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            () = stopped.cancelled() => return,
            event = events.recv() => event,
        };
        let users: Vec<Uuid> = match event {
            Ok(AccountEvent::Changed(user)) => vec![user],
            Ok(AccountEvent::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                local_users(&io)
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        for user in users {
            tokio::spawn(recheck(io.clone(), ctx.clone(), user));
        }
    }
}

fn local_users(io: &SocketIo<SioAdapter>) -> Vec<Uuid> {
    let mut users: HashMap<Uuid, ()> = HashMap::new();
    for s in io.of("/").map(|ns| ns.sockets()).unwrap_or_default() {
        if let Some(claims) = s.extensions.get::<Claims>() {
            users.insert(claims.sub, ());
        }
    }
    users.into_keys().collect()
}

fn sockets_of(io: &SocketIo<SioAdapter>, user: Uuid) -> Vec<SocketRef<SioAdapter>> {
    io.within(socket::user_room(user)).sockets()
}

/// Applies the account's current status to its local sockets, retrying while the
/// database cannot say.
async fn recheck(io: SocketIo<SioAdapter>, ctx: Ctx, user: Uuid) {
    if sockets_of(&io, user).is_empty() {
        return;
    }
    for attempt in 1..=RECHECK_ATTEMPTS {
        match status::current(&ctx.app, user).await {
            Ok(account) => {
                for s in sockets_of(&io, user) {
                    socket::apply_account(s, &ctx, account).await;
                }
                return;
            }
            Err(e) if attempt == RECHECK_ATTEMPTS => {
                tracing::error!(%user, error = %e, "could not re-check an account's sockets");
            }
            Err(_) => tokio::time::sleep(RECHECK_BACKOFF).await,
        }
    }
}
