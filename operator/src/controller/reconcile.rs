//! One reconcile, one pass: observe → step (pure) → build (pure) → apply (one SSA layer) →
//! status. Side effects the step asks for (logs of failed pods, connection drains, events)
//! run around the apply, and the status is written last, once.

use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType as KubeEventType};
use kube::{Api, Resource};

use super::apply::{apply, apply_status, delete_unwanted};
use super::connections::{self, Request};
use super::diagnostics;
use super::observe::observe;
use super::{Context, Error};
use crate::crd::{MasBackend, MasBackendStatus, Reason};
use crate::desired::{self, BuildError, Owner, pod_selector_string, referenced};
use crate::rollout::{self, Action, EventType};

/// Events are limited to 1 kB of note.
const NOTE_LIMIT: usize = 1000;

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

type Note = (KubeEventType, Reason, String);

pub async fn reconcile(cached: Arc<MasBackend>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    ctx.metrics.reconcile_started();
    let (Some(ns), Some(name)) = (
        cached.metadata.namespace.as_deref(),
        cached.metadata.name.as_deref(),
    ) else {
        return Err(Error::Build(BuildError::MissingMetadata("namespace")));
    };
    // The watch cache can lag behind this operator's own last status write; stepping the state
    // machine from a stale status would repeat the previous step (duplicate events, extra gate
    // rounds). A direct read is consistent with every write that has returned.
    let Some(mb) = Api::<MasBackend>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(Error::kube("get"))?
    else {
        ctx.secrets.forget((ns, name));
        ctx.metrics.forget(ns, name);
        ctx.metrics.reconciled(started.elapsed());
        return Ok(Requeue::await_change());
    };
    let owner = Owner::of(&mb)?;
    let prev = mb.status.clone().unwrap_or_default();

    // Observe.
    let world = observe(&ctx, &mb, &owner, &prev).await;
    // Step.
    let decision = rollout::step(&mb.spec, &prev, &world.observed);
    let mut status = decision.status;
    status.active_selector = status
        .active_color
        .map(|c| pod_selector_string(&owner.name, c));
    // Build.
    let desired = desired::desired(&mb, &status, world.inputs())?;
    // Keep an existing pull Secret while its source cannot be read.
    status.pull_secret = !mb.spec.image_pull_secrets_from.is_empty()
        && (prev.pull_secret || world.pull_config.is_some());

    // Diagnostics before the apply scales the failed pods away.
    let mut notes: Vec<Note> = Vec::new();
    for action in &decision.actions {
        match action {
            Action::CaptureLogs { color } => {
                let text = diagnostics::color_logs(&ctx, &owner, *color).await;
                notes.push((KubeEventType::Warning, Reason::StandbyLogs, text));
            }
            Action::CaptureJobLogs { revision } => {
                let text = diagnostics::job_logs(&ctx, &owner, *revision).await;
                notes.push((KubeEventType::Warning, Reason::MigrationLogs, text));
            }
            _ => {}
        }
    }
    for missing in &desired.missing_releases {
        notes.push((
            KubeEventType::Warning,
            Reason::ReleaseSnapshotMissing,
            format!(
                "ControllerRevision {} is gone; its Deployment is left as it is",
                desired::revision_name(&owner, *missing)
            ),
        ));
    }

    // Apply, then delete what is no longer wanted.
    apply(&ctx.client, &ctx.applied, &ctx.stores, ns, &desired).await?;
    let gone = referenced(&owner, &mb, &prev).released_by(&referenced(&owner, &mb, &status));
    delete_unwanted(
        &ctx.client,
        &owner,
        &gone,
        &desired,
        &ctx.stores.services,
        &ctx.stores.ingresses,
    )
    .await?;

    // Side effects that need the applied state (traffic already switched).
    for action in &decision.actions {
        match action {
            Action::DrainConnections { color } | Action::ResumeConnections { color } => {
                let request = if matches!(action, Action::DrainConnections { .. }) {
                    Request::Drain
                } else {
                    Request::Resume
                };
                let summary = match world.control_token.as_deref() {
                    Some(token) => connections::tell(&ctx, &owner, &mb.spec, *color, token, request).await,
                    None => "the operator has no control key (MAS_OPERATOR_CONTROL_KEY): connections move when the color is scaled down".to_owned(),
                };
                tracing::info!(%ns, %name, %color, ?request, %summary, "connections");
                if request == Request::Drain {
                    notes.push((KubeEventType::Normal, Reason::ConnectionsDrained, summary));
                }
            }
            Action::SwitchTraffic { to } => {
                ctx.metrics.traffic_switch(ns, name);
                tracing::info!(%name, %ns, color = %to, "switched traffic");
            }
            Action::Recorded(release) => ctx.metrics.release_recorded(ns, name, release),
            Action::Event {
                type_,
                reason,
                note,
            } => {
                let t = match type_ {
                    EventType::Normal => KubeEventType::Normal,
                    EventType::Warning => KubeEventType::Warning,
                };
                notes.push((t, *reason, note.clone()));
            }
            Action::CaptureLogs { .. } | Action::CaptureJobLogs { .. } => {}
        }
    }
    publish(&ctx, &mb, notes).await;

    // Status last: once it shows a transition, the objects and events behind it exist. If this
    // write fails, the next reconcile recomputes the same step from the old status.
    if changed(&prev, &status)? {
        apply_status(&ctx.client, ns, name, &status).await?;
    }
    ctx.metrics.observe_backend(
        ns,
        name,
        &mb.spec,
        &status,
        world.observed.blue.as_ref(),
        world.observed.green.as_ref(),
    );
    ctx.metrics.reconciled(started.elapsed());
    let requeue = if mb.spec.secrets.is_empty() && mb.spec.image_pull_secrets_from.is_empty() {
        decision.requeue
    } else {
        decision.requeue.min(ctx.secrets_refresh)
    };
    Ok(Requeue::requeue(requeue))
}

fn changed(prev: &MasBackendStatus, next: &MasBackendStatus) -> Result<bool, Error> {
    Ok(serde_json::to_value(next).map_err(Error::Serialize)?
        != serde_json::to_value(prev).map_err(Error::Serialize)?)
}

/// The recorder folds events with the same reason and action into one series and keeps
/// the first note, so a later, different warning (the failing standby's body, after a
/// round that found a pod not listening yet) would show an old message. Warnings carry a
/// digest of their note in the action: repeats still fold, a new message is its own event.
fn event_action(type_: &KubeEventType, note: &str) -> String {
    use std::hash::{Hash, Hasher};
    if *type_ != KubeEventType::Warning {
        return "Release".into();
    }
    let mut hasher = std::hash::DefaultHasher::new();
    note.hash(&mut hasher);
    format!("Release-{:08x}", hasher.finish() as u32)
}

/// Events are best effort: a failed publish must not undo a completed reconcile.
async fn publish(ctx: &Context, mb: &MasBackend, notes: Vec<Note>) {
    let reference = mb.object_ref(&());
    for (type_, reason, note) in notes {
        let ev = Event {
            action: event_action(&type_, &note),
            type_,
            reason: reason.as_str().to_owned(),
            note: Some(truncate(&note)),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&ev, &reference).await {
            tracing::warn!(name = ?mb.metadata.name, %reason, error = %e, "publishing event failed");
        }
    }
}
