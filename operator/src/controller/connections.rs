//! Moving long-lived connections after a switch: the operator asks each pod of the old color,
//! on its internal port, to tell its Socket.IO and terminal-relay clients to reconnect (they
//! come back through the ingress, to the new color), spread over `reconnectWithinSeconds`;
//! and tells the pods of a color that goes live again to accept connections. The calls carry
//! the MasBackend's control token. Best effort: clients still move when the old color is
//! scaled down (SIGTERM drains them too).

use super::Context;
use super::observe::color_pods;
use crate::crd::{Color, MasBackendSpec};
use crate::desired::Owner;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Drain,
    Resume,
}

/// Calls every running pod of `color`; returns a summary for the Event.
pub async fn tell(
    ctx: &Context,
    owner: &Owner,
    spec: &MasBackendSpec,
    color: Color,
    token: &str,
    request: Request,
) -> String {
    let pods = color_pods(ctx, owner, color);
    let (path, body) = match request {
        Request::Drain => (
            "/internal/connections/drain",
            serde_json::json!({"reconnectWithinSeconds": spec.connections.reconnect_within_seconds}),
        ),
        Request::Resume => ("/internal/connections/resume", serde_json::json!({})),
    };
    let calls = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.clone()?;
            let name = p.metadata.name.clone().unwrap_or_default();
            let host = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip
            };
            let url = format!("http://{host}:{}{path}", spec.internal_port);
            let req = ctx.http.post(url).bearer_auth(token).json(&body);
            Some(async move {
                match req.send().await {
                    Ok(r) if r.status().is_success() => Ok(name),
                    Ok(r) => Err(format!("{name}: HTTP {}", r.status().as_u16())),
                    Err(e) => Err(format!("{name}: {}", crate::health::error_chain(&e))),
                }
            })
        });
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if failed.is_empty() {
        format!("{ok} {color} pod(s) told")
    } else {
        format!("{ok} {color} pod(s) told; failed: {}", failed.join("; "))
    }
}
