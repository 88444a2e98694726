//! One reconcile: observe → probe (if gating) → step the state machine → diagnostics →
//! apply children → write status → publish events.

use std::sync::Arc;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::LogParams;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType as KubeEventType};
use kube::{Api, Resource, ResourceExt};

use super::apply::{apply_desired, apply_status, delete_orphans};
use super::observe::{deployment_facts, requests};
use super::{Context, Error};
use crate::build::{self, pod_selector_string};
use crate::crd::{Color, MasBackend};
use crate::health;
use crate::metrics::Metrics;
use crate::rollout::{self, Action, EventType, Observed};

/// Events are limited to 1 kB of note.
const NOTE_LIMIT: usize = 1000;
const LOG_PODS: usize = 3;
const LOG_LINES: i64 = 20;

fn truncate(s: &str) -> String {
    if s.len() <= NOTE_LIMIT {
        return s.to_owned();
    }
    let mut end = NOTE_LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub async fn reconcile(cached: Arc<MasBackend>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    Metrics::inc(&ctx.metrics.reconciles);
    // The watch cache can lag behind this operator's own last status write; stepping the state
    // machine from a stale status would repeat the previous step (duplicate events, extra gate
    // rounds). A direct read is consistent with every write that has returned.
    let (Some(ns), Some(name)) = (cached.metadata.namespace.as_deref(), cached.metadata.name.as_deref()) else {
        return Err(Error::Build(build::BuildError::MissingMetadata("namespace")));
    };
    let Some(mb) = Api::<MasBackend>::namespaced(ctx.client.clone(), ns).get_opt(name).await? else {
        return Ok(Requeue::await_change());
    };
    let owner = build::Owner::of(&mb)?;
    let (ns, name) = (owner.namespace.as_str(), owner.name.as_str());
    let client = &ctx.client;
    let prev = mb.status.clone().unwrap_or_default();

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let blue = deployment_facts(&deployments, &owner.color_name(Color::Blue)).await?;
    let green = deployment_facts(&deployments, &owner.color_name(Color::Green)).await?;
    let now = Timestamp::now();
    let gate = match rollout::gate_target(&mb.spec, &prev, now) {
        Some((color, image)) if !mb.spec.paused => {
            let res = health::probe_color(client, ns, name, color, &image, &mb.spec).await;
            if matches!(res, rollout::GateResult::Fail { .. }) {
                Metrics::inc(&ctx.metrics.gate_failures);
            }
            Some(res)
        }
        _ => None,
    };
    let observed = Observed {
        now,
        generation: mb.metadata.generation,
        blue,
        green,
        gate,
        requests: requests(&mb),
    };
    let decision = rollout::step(&mb.spec, &prev, &observed);
    let mut status = decision.status;
    status.active_selector = status.active_color.map(|c| pod_selector_string(name, c));

    // Diagnostics first: the failed color is scaled down by the apply below.
    let mut notes: Vec<(KubeEventType, String, String)> = Vec::new();
    for action in &decision.actions {
        match action {
            Action::CaptureLogs { color } => {
                notes.push((KubeEventType::Warning, "StandbyLogs".into(), capture_logs(&ctx, ns, name, *color).await));
                Metrics::inc(&ctx.metrics.rollouts_failed);
            }
            Action::SwitchTraffic { to } => {
                Metrics::inc(&ctx.metrics.traffic_switches);
                tracing::info!(%name, %ns, color = %to, "switching traffic");
            }
            Action::Event { type_, reason, note } => {
                let t = match type_ {
                    EventType::Normal => KubeEventType::Normal,
                    EventType::Warning => KubeEventType::Warning,
                };
                notes.push((t, (*reason).to_owned(), note.clone()));
            }
            Action::Deploy { .. } | Action::ScaleDown { .. } => {}
        }
    }

    let desired = build::desired(&mb, &status)?;
    apply_desired(client, ns, &desired).await?;
    delete_orphans(client, ns, name, &desired).await?;
    let reference = mb.object_ref(&());
    for (type_, reason, note) in notes {
        let ev = Event { type_, reason: reason.clone(), note: Some(truncate(&note)), action: "Rollout".into(), secondary: None };
        // Events are best effort: a failed publish must not undo a completed reconcile.
        if let Err(e) = ctx.recorder.publish(&ev, &reference).await {
            tracing::warn!(%name, %reason, error = %e, "publishing event failed");
        }
    }
    // Status last: once it shows a transition, the events explaining it already exist. If this
    // write fails, the next reconcile recomputes the same step and the recorder folds the
    // repeated events into a series.
    let changed = serde_json::to_value(&status).map_err(Error::Serialize)?
        != serde_json::to_value(&prev).map_err(Error::Serialize)?;
    if changed {
        apply_status(client, ns, name, &status).await?;
    }
    tracing::debug!(name = %mb.name_any(), phase = ?status.phase, "reconciled");
    Ok(Requeue::requeue(decision.requeue))
}

/// Last lines of up to three pods of the failed color. Fake (kwok) pods have no kubelet
/// serving logs; that is reported in the note instead of failing the reconcile.
async fn capture_logs(ctx: &Context, ns: &str, name: &str, color: Color) -> String {
    let pods = match health::list_color_pods(&ctx.client, ns, name, color).await {
        Ok(p) => p,
        Err(e) => return format!("{color} pod logs unavailable: listing pods: {e}"),
    };
    if pods.is_empty() {
        return format!("{color} pod logs unavailable: no pods");
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let lp = LogParams { tail_lines: Some(LOG_LINES), ..Default::default() };
    let mut parts = Vec::new();
    for pod in pods.iter().take(LOG_PODS) {
        let pod_name = pod.name_any();
        match api.logs(&pod_name, &lp).await {
            Ok(text) if text.trim().is_empty() => parts.push(format!("{pod_name}: (no log output)")),
            Ok(text) => parts.push(format!("{pod_name}:\n{}", text.trim_end())),
            Err(kube::Error::Api(status)) => parts.push(format!("{pod_name}: logs unavailable ({})", status.message)),
            Err(e) => parts.push(format!("{pod_name}: logs unavailable ({e})")),
        }
    }
    parts.join("\n")
}
