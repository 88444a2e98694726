//! One reconcile: observe → probe (if gating) → step the state machine → diagnostics →
//! apply children → write status → publish events.

use std::sync::Arc;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::LogParams;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType as KubeEventType};
use kube::{Api, Resource, ResourceExt};

use std::time::Duration;

use super::apply::{apply_desired, apply_secret, apply_status, delete_orphans, delete_secret};
use super::observe::{deployment_facts, requests};
use super::{Context, Error};
use crate::aws_secrets;
use crate::build::{self, pod_selector_string};
use crate::crd::{Color, MasBackend, MasBackendStatus, Phase};
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
    let (Some(ns), Some(name)) = (
        cached.metadata.namespace.as_deref(),
        cached.metadata.name.as_deref(),
    ) else {
        return Err(Error::Build(build::BuildError::MissingMetadata(
            "namespace",
        )));
    };
    let Some(mb) = Api::<MasBackend>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await?
    else {
        return Ok(Requeue::await_change());
    };
    let owner = build::Owner::of(&mb)?;
    let (ns, name) = (owner.namespace.as_str(), owner.name.as_str());
    let client = &ctx.client;
    let mut prev = mb.status.clone().unwrap_or_default();

    // Secrets first: without their values nothing may change (no rollout, no traffic switch).
    let secrets_hash = if mb.spec.secrets.is_empty() {
        None
    } else {
        match aws_secrets::fetch(&ctx.secrets, &mb.spec.secrets).await {
            Ok(values) => {
                apply_secret(client, ns, &build::aws_secret(&owner, &values)).await?;
                Some(build::content_hash(&values))
            }
            Err(e) => return secrets_unavailable(&ctx, &mb, prev, &e.to_string()).await,
        }
    };
    if degraded_reason(&prev) == Some(SECRETS_UNAVAILABLE) {
        rollout::set_condition(
            &mut prev.conditions,
            rollout::DEGRADED,
            false,
            "AsExpected",
            "",
            mb.metadata.generation,
            Timestamp::now(),
        );
    }

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
        secrets_hash,
    };
    let decision = rollout::step(&mb.spec, &prev, &observed);
    let mut status = decision.status;
    status.active_selector = status.active_color.map(|c| pod_selector_string(name, c));

    // Diagnostics first: the failed color is scaled down by the apply below.
    let mut notes: Vec<(KubeEventType, String, String)> = Vec::new();
    for action in &decision.actions {
        match action {
            Action::CaptureLogs { color } => {
                notes.push((
                    KubeEventType::Warning,
                    "StandbyLogs".into(),
                    capture_logs(&ctx, ns, name, *color).await,
                ));
                Metrics::inc(&ctx.metrics.rollouts_failed);
            }
            Action::SwitchTraffic { to } => {
                Metrics::inc(&ctx.metrics.traffic_switches);
                tracing::info!(%name, %ns, color = %to, "switching traffic");
            }
            Action::Event {
                type_,
                reason,
                note,
            } => {
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
    // With spec.secrets emptied the Secret goes when the last running color stops reading it
    // (edge-triggered: no delete call on every reconcile of backends that never had secrets).
    // A scaled-down color may still reference it, harmlessly: a color is only scaled up again by
    // a rollout, which takes the current (empty) secrets. Status is written after this, so a
    // failed delete is retried by the next reconcile.
    if mb.spec.secrets.is_empty() && secret_in_use(&prev) && !secret_in_use(&status) {
        delete_secret(client, ns, &build::secret_name(&owner)).await?;
    }
    let reference = mb.object_ref(&());
    for (type_, reason, note) in notes {
        let ev = Event {
            type_,
            reason: reason.clone(),
            note: Some(truncate(&note)),
            action: "Rollout".into(),
            secondary: None,
        };
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
    let requeue = if mb.spec.secrets.is_empty() {
        decision.requeue
    } else {
        decision.requeue.min(ctx.secrets_refresh)
    };
    Ok(Requeue::requeue(requeue))
}

const SECRETS_UNAVAILABLE: &str = "SecretsUnavailable";

/// Some running color's pod template reads `<name>-aws-secrets`.
fn secret_in_use(status: &MasBackendStatus) -> bool {
    Color::ALL.iter().any(|c| {
        status
            .colors
            .get(*c)
            .is_some_and(|s| !s.scaled_down && s.secrets_hash.is_some())
    })
}

fn degraded_reason(status: &MasBackendStatus) -> Option<&str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == rollout::DEGRADED && c.status == "True")
        .map(|c| c.reason.as_str())
}

/// Fetching `spec.secrets` failed: children and traffic stay as they are; only the status says
/// why (the error names the secret id, never a value). Retries back off with the outage length.
async fn secrets_unavailable(
    ctx: &Context,
    mb: &MasBackend,
    prev: MasBackendStatus,
    error: &str,
) -> Result<Requeue, Error> {
    let (ns, name) = (
        mb.metadata.namespace.as_deref().unwrap_or_default(),
        mb.name_any(),
    );
    let now = Timestamp::now();
    let mut status = prev.clone();
    rollout::set_condition(
        &mut status.conditions,
        rollout::DEGRADED,
        true,
        SECRETS_UNAVAILABLE,
        error,
        mb.metadata.generation,
        now,
    );
    status.phase = Phase::Degraded;
    status.message = Some(error.to_owned());
    tracing::warn!(%name, %ns, %error, "AWS secrets unavailable; leaving children untouched");
    let ev = Event {
        type_: KubeEventType::Warning,
        reason: SECRETS_UNAVAILABLE.into(),
        note: Some(truncate(error)),
        action: "FetchSecrets".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &mb.object_ref(&())).await {
        tracing::warn!(%name, error = %e, "publishing event failed");
    }
    if serde_json::to_value(&status).map_err(Error::Serialize)?
        != serde_json::to_value(&prev).map_err(Error::Serialize)?
    {
        apply_status(&ctx.client, ns, &name, &status).await?;
    }
    // Outage length: since Degraded turned True, counted only if it was already for this reason
    // (a Degraded=True from a failed gate must not start the backoff at its maximum).
    let since = prev
        .conditions
        .iter()
        .find(|c| {
            c.type_ == rollout::DEGRADED && c.status == "True" && c.reason == SECRETS_UNAVAILABLE
        })
        .map_or(Duration::ZERO, |c| {
            Duration::from_millis(
                u64::try_from(now.duration_since(c.last_transition_time.0).as_millis())
                    .unwrap_or(0),
            )
        });
    // Capped at a minute: lastTransitionTime is kept when only the reason changes, so `since`
    // may overstate the outage.
    Ok(Requeue::requeue(
        since.clamp(Duration::from_secs(5), Duration::from_secs(60)),
    ))
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
    let lp = LogParams {
        tail_lines: Some(LOG_LINES),
        ..Default::default()
    };
    let mut parts = Vec::new();
    for pod in pods.iter().take(LOG_PODS) {
        let pod_name = pod.name_any();
        match api.logs(&pod_name, &lp).await {
            Ok(text) if text.trim().is_empty() => {
                parts.push(format!("{pod_name}: (no log output)"))
            }
            Ok(text) => parts.push(format!("{pod_name}:\n{}", text.trim_end())),
            Err(kube::Error::Api(status)) => {
                parts.push(format!("{pod_name}: logs unavailable ({})", status.message))
            }
            Err(e) => parts.push(format!("{pod_name}: logs unavailable ({e})")),
        }
    }
    parts.join("\n")
}
