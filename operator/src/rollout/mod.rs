//! The rollout state machine. Pure: (spec, previous status, observed facts) → next status and
//! the actions the I/O layer must perform. Every bit of progress is recorded in the status, so an
//! operator restart resumes exactly where the previous process stopped.
//!
//! A release is an immutable snapshot (image, secrets, pod template) with a revision number.
//! Blue/green: the live color keeps serving while the other color runs the new release (after
//! its migration Job, if any); every standby pod passes the health gate `successThreshold`
//! rounds in a row; only then the stable Service selector flips (one write); the new color is
//! then verified for `verification.durationSeconds` while the old one stays warm, so a failure
//! switches straight back; the old color's connections are drained, and it is scaled down
//! `scaleDownDelaySeconds` later. A failed release is rejected until the spec changes (or a
//! retry request).
//!
//! Recreate: one Deployment (blue) updated in place and gated; on failure the live release is
//! redeployed.
//!
//! By concern: `lifecycle` (start, end, promote, revert, scale-down), `requests` (annotations),
//! `progress` (advancing a rollout and the post-switch timers), `derive` (conditions, phase).

mod derive;
mod lifecycle;
mod progress;
mod requests;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::crd::{
    Color, MasBackendSpec, MasBackendStatus, Reason, Release, Stage, conditions,
    conditions::ConditionType,
};

/// Requeue before a gate's or verification's first probe round.
const FIRST_PROBE: Duration = Duration::from_millis(100);

/// What the cluster says about one color's Deployment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentFacts {
    /// Revision annotation of the pod template.
    pub revision: Option<i64>,
    pub replicas: i32,
    pub ready_replicas: i32,
    pub updated_replicas: i32,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
}

/// Result of one probe round over every pod of a color.
#[derive(Clone, Debug, PartialEq)]
pub enum GateResult {
    /// Every expected pod answered 2xx with the JSON field `true`.
    Pass,
    /// At least one pod failed; `detail` names the pod, status and a body snippet.
    Fail { detail: String },
    /// Not enough probe-able pods yet (e.g. no pod IPs); not counted either way.
    Pending { reason: String },
}

/// State of the migration Job of the rollout's release.
#[derive(Clone, Debug, PartialEq)]
pub enum JobFacts {
    Running,
    Succeeded,
    Failed { reason: String },
}

/// The release the current spec describes.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub image: String,
    pub secrets_hash: Option<String>,
    pub template_hash: String,
}

/// Annotation values currently on the object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requests {
    pub rollback: Option<String>,
    pub promote: Option<String>,
    pub abort: Option<String>,
    pub retry: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub now: Timestamp,
    pub generation: Option<i64>,
    pub blue: Option<DeploymentFacts>,
    pub green: Option<DeploymentFacts>,
    /// The spec's release, or why it cannot be known (its secrets cannot be read).
    pub candidate: Result<Candidate, String>,
    /// Revisions whose snapshot (ControllerRevision) exists.
    pub releases: BTreeSet<i64>,
    /// Probe of the rollout's color; only gathered while the stage is Gating.
    pub gate: Option<GateResult>,
    /// Probe of the live color during the post-switch verification.
    pub verification: Option<GateResult>,
    /// The rollout's migration Job, while the stage is Migrating.
    pub migration: Option<JobFacts>,
    pub requests: Requests,
}

impl Observed {
    fn facts(&self, c: Color) -> Option<&DeploymentFacts> {
        match c {
            Color::Blue => self.blue.as_ref(),
            Color::Green => self.green.as_ref(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The stable Service selector now points at `to` (the write itself is in the desired state).
    SwitchTraffic { to: Color },
    /// Recent logs of the color's pods into a `StandbyLogs` Event (failure diagnostics).
    CaptureLogs { color: Color },
    /// Logs of the migration Job's pod into a `MigrationLogs` Event.
    CaptureJobLogs { revision: i64 },
    /// Ask the color's pods to move their long-lived connections (they reconnect through the
    /// ingress, to the live color).
    DrainConnections { color: Color },
    /// Undo a drain (the color is live again).
    ResumeConnections { color: Color },
    /// A history entry was written (metrics: outcomes and durations).
    Recorded(Release),
    Event {
        type_: EventType,
        reason: Reason,
        note: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: MasBackendStatus,
    pub actions: Vec<Action>,
    pub requeue: Duration,
}

/// Whether a round of probes is due: at most once per `health.periodSeconds`, however often
/// reconciles are triggered.
fn probe_due(
    last: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime>,
    period: i32,
    now: Timestamp,
) -> bool {
    last.is_none_or(|t| now >= plus_secs(t.0, period))
}

/// Color and revision the I/O layer must probe for the gate before the next `step`.
pub fn gate_target(
    spec: &MasBackendSpec,
    status: &MasBackendStatus,
    now: Timestamp,
) -> Option<(Color, i64)> {
    status
        .rollout
        .as_ref()
        .filter(|r| r.stage == Stage::Gating)
        .filter(|r| probe_due(r.last_probe.as_ref(), spec.health.period_seconds, now))
        .map(|r| (r.color, r.release.revision))
}

/// Color and revision to probe for the post-switch verification.
pub fn verification_target(
    spec: &MasBackendSpec,
    status: &MasBackendStatus,
    now: Timestamp,
) -> Option<(Color, i64)> {
    status
        .verifying
        .as_ref()
        .filter(|v| probe_due(v.last_probe.as_ref(), spec.health.period_seconds, now))
        .map(|v| (v.color, v.revision))
}

/// Revision whose migration Job the I/O layer must look at.
pub fn migration_target(status: &MasBackendStatus) -> Option<i64> {
    status
        .rollout
        .as_ref()
        .filter(|r| r.stage == Stage::Migrating)
        .map(|r| r.release.revision)
}

/// Annotation value not yet acknowledged in status.
fn fresh<'a>(value: &'a Option<String>, acked: &Option<String>) -> Option<&'a String> {
    value.as_ref().filter(|v| Some(*v) != acked.as_ref())
}

fn plus_secs(t: Timestamp, secs: i32) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(i64::from(secs)))
        .unwrap_or(Timestamp::MAX)
}

fn until(now: Timestamp, at: Timestamp) -> Duration {
    let d = at.duration_since(now);
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(0)).max(Duration::from_millis(200))
}

fn seconds_between(from: &Time, to: Timestamp) -> f64 {
    to.duration_since(from.0).as_secs_f64().max(0.0)
}

struct Machine<'a> {
    spec: &'a MasBackendSpec,
    obs: &'a Observed,
    s: MasBackendStatus,
    actions: Vec<Action>,
}

impl Machine<'_> {
    fn event(&mut self, type_: EventType, reason: Reason, note: impl Into<String>) {
        self.actions.push(Action::Event {
            type_,
            reason,
            note: note.into(),
        });
    }

    fn now(&self) -> Time {
        Time(self.obs.now)
    }

    fn set_degraded(&mut self, reason: Reason, message: &str) {
        conditions::set_condition(
            &mut self.s.conditions,
            ConditionType::Degraded,
            true,
            reason,
            message,
            self.obs.generation,
            self.obs.now,
        );
    }

    fn clear_degraded(&mut self) {
        conditions::set_condition(
            &mut self.s.conditions,
            ConditionType::Degraded,
            false,
            Reason::AsExpected,
            "",
            self.obs.generation,
            self.obs.now,
        );
    }

    fn degraded_reason(&self) -> Option<Reason> {
        conditions::true_reason(&self.s.conditions, ConditionType::Degraded)
    }

    /// Degraded while the spec's secrets cannot be read; cleared when they can again.
    fn note_secrets(&mut self) {
        match &self.obs.candidate {
            Err(e) => {
                let e = e.clone();
                if self.degraded_reason() != Some(Reason::SecretsUnavailable) {
                    self.event(EventType::Warning, Reason::SecretsUnavailable, e.clone());
                }
                self.set_degraded(Reason::SecretsUnavailable, &e);
            }
            Ok(_) if self.degraded_reason() == Some(Reason::SecretsUnavailable) => {
                self.clear_degraded()
            }
            Ok(_) => {}
        }
    }

    /// How long the secrets have been unavailable (for the retry backoff).
    fn secrets_outage(&self) -> Option<Duration> {
        self.obs.candidate.as_ref().err()?;
        let since = conditions::condition(&self.s.conditions, ConditionType::Degraded)
            .filter(|c| c.status == "True" && c.reason == Reason::SecretsUnavailable.as_str())
            .map(|c| c.last_transition_time.0)?;
        Some(Duration::from_millis(
            u64::try_from(self.obs.now.duration_since(since).as_millis()).unwrap_or(0),
        ))
    }

    fn requeue(&self, scale_down_in: Option<Duration>, drain_in: Option<Duration>) -> Duration {
        let spec = self.spec;
        let now = self.obs.now;
        let period = Duration::from_secs(
            u64::try_from(spec.health.period_seconds)
                .unwrap_or(5)
                .max(1),
        );
        let mut requeue = match self.s.rollout.as_ref() {
            Some(r) => match r.stage {
                // The first round is due at once (observe probes before the step that
                // entered Gating could): a short requeue, not a busy loop if probes fail.
                Stage::Gating => match r.last_probe.as_ref() {
                    Some(t) => until(now, plus_secs(t.0, spec.health.period_seconds)),
                    None => FIRST_PROBE,
                },
                Stage::Migrating => Duration::from_secs(5),
                Stage::Progressing => period.min(Duration::from_secs(5)),
                Stage::AwaitingPromotion => Duration::from_secs(60),
            },
            None => Duration::from_secs(300),
        };
        if let Some(r) = self
            .s
            .rollout
            .as_ref()
            .filter(|r| r.stage != Stage::AwaitingPromotion)
            && let Some(at) = &r.deployed_at
        {
            requeue = requeue.min(until(now, plus_secs(at.0, spec.progress_deadline_seconds)));
        }
        if let Some(v) = &self.s.verifying {
            let next_probe = v.last_probe.as_ref().map_or(FIRST_PROBE, |t| {
                until(now, plus_secs(t.0, spec.health.period_seconds))
            });
            requeue = requeue.min(next_probe).min(until(now, v.until.0));
        }
        // Ready turns True once the switch has propagated.
        let propagated = self
            .s
            .last_switch_time
            .as_ref()
            .map(|t| plus_secs(t.0, spec.propagation_seconds))
            .filter(|at| *at > now)
            .map(|at| until(now, at));
        for d in [scale_down_in, drain_in, propagated].into_iter().flatten() {
            requeue = requeue.min(d);
        }
        if let Some(outage) = self.secrets_outage() {
            // Backoff grows with the outage, capped at a minute: lastTransitionTime is kept
            // when only the reason changes, so the outage may be overstated.
            requeue = requeue.min(outage.clamp(Duration::from_secs(5), Duration::from_secs(60)));
        }
        requeue
    }
}

/// One reconcile step of the state machine.
pub fn step(spec: &MasBackendSpec, prev: &MasBackendStatus, obs: &Observed) -> Decision {
    let mut m = Machine {
        spec,
        obs,
        s: prev.clone(),
        actions: Vec::new(),
    };
    m.note_secrets();
    if spec.paused {
        m.derive(true);
        return Decision {
            status: m.s,
            actions: m.actions,
            requeue: Duration::from_secs(300),
        };
    }
    // Start first, so a request sent together with a spec change applies to that rollout.
    m.maybe_start(false);
    m.handle_requests();
    m.advance_rollout();
    m.advance_verification();
    let drain_in = m.drain_timer();
    let scale_down_in = m.scale_down_timer();
    m.derive(false);
    let requeue = m.requeue(scale_down_in, drain_in);
    Decision {
        status: m.s,
        actions: m.actions,
        requeue,
    }
}
