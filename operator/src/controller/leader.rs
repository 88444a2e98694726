//! Leader election on a `coordination.k8s.io` Lease (kube-lease-manager: server-side-apply
//! locking, renewal before expiry). Every replica keeps its watch caches warm; only the holder
//! runs the controller, so only the leader writes. Losing the lease stops the controller (it
//! finishes the reconcile in flight); a standby that acquires it starts at once.

use std::sync::Arc;
use std::time::Duration;

use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;

use super::{Context, FIELD_MANAGER};
use crate::config::LeaseConfig;

/// Runs the controller while this replica holds the lease, until `shutdown` is cancelled.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    lease: LeaseConfig,
    identity: String,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let duration = lease.duration_seconds;
    let manager = LeaseManagerBuilder::new(ctx.client.clone(), &lease.name)
        .with_namespace(&lease.namespace)
        .with_identity(&identity)
        .with_duration(duration)
        .with_grace((duration / 3).max(1))
        .with_field_manager(format!("{FIELD_MANAGER}-lease"))
        .build()
        .await?;
    let (mut leader, lease_task) = manager.watch().await;
    tracing::info!(lease = %format!("{}/{}", lease.namespace, lease.name), %identity, "waiting for leadership");
    loop {
        if !*leader.borrow_and_update() {
            ctx.metrics.set_leader(false);
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = leader.changed() => {
                    if changed.is_err() {
                        anyhow::bail!("the lease manager stopped");
                    }
                    continue;
                }
            }
        }
        ctx.metrics.set_leader(true);
        tracing::info!(%identity, "leading: starting the controller");
        let lost = CancellationToken::new();
        let stop = lost.clone();
        let watch_shutdown = shutdown.clone();
        let mut leader_rx = leader.clone();
        let stop_on = tokio::spawn(async move {
            tokio::select! {
                () = watch_shutdown.cancelled() => {}
                _ = async { while leader_rx.changed().await.is_ok() && *leader_rx.borrow() {} } => {}
            }
            stop.cancel();
        });
        super::run(
            ctx.clone(),
            namespace.clone(),
            lost.clone().cancelled_owned(),
        )
        .await?;
        stop_on.abort();
        ctx.metrics.set_leader(false);
        if shutdown.is_cancelled() {
            break;
        }
        tracing::warn!(%identity, "lost the lease: controller stopped");
        // Give the lease manager a beat to publish the new state.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Dropping the receiver releases the lease, so a standby takes over without waiting for
    // it to expire.
    drop(leader);
    let _ = tokio::time::timeout(Duration::from_secs(5), lease_task).await;
    Ok(())
}
