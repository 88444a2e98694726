//! Advancing the rollout in flight (supersede, migration, readiness, gate, deadline) and the
//! timers after a switch (verification window, connection drain, scale-down).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

use crate::crd::{
    ColorState, Outcome, Promotion, Reason, Rollout, ScaleDown, Stage, Strategy, Trigger,
};

use super::{Action, EventType, GateResult, JobFacts, Machine, fresh, plus_secs, until};

impl Machine<'_> {
    pub(super) fn advance_rollout(&mut self) {
        let Some(r) = self.s.rollout.clone() else {
            return;
        };
        if self.superseded(&r) {
            return;
        }
        if let Some(at) = r
            .deployed_at
            .as_ref()
            .filter(|_| r.stage != Stage::AwaitingPromotion)
        {
            let deadline = plus_secs(at.0, self.spec.progress_deadline_seconds);
            if self.obs.now >= deadline {
                let detail = format!(
                    "not healthy within progressDeadlineSeconds={} (stage {:?})",
                    self.spec.progress_deadline_seconds, r.stage
                );
                self.end_rollout(
                    Outcome::Failed,
                    Reason::ProgressDeadlineExceeded,
                    detail,
                    true,
                );
                return;
            }
        }
        if r.stage == Stage::Migrating {
            self.migrate(&r);
            return;
        }
        let ready = self.color_ready(r.color, r.release.revision);
        match r.stage {
            Stage::Progressing if ready => {
                self.event(
                    EventType::Normal,
                    Reason::GateStarted,
                    format!(
                        "r{} ready on {}; probing health",
                        r.release.revision, r.color
                    ),
                );
                let now = self.now();
                if let Some(x) = self.s.rollout.as_mut() {
                    x.gating_since = Some(now);
                }
                self.set_rollout(Stage::Gating, 0, 0);
            }
            Stage::Gating | Stage::AwaitingPromotion if !ready => {
                self.event(
                    EventType::Warning,
                    Reason::StandbyNotReady,
                    format!("{} pods no longer all ready", r.color),
                );
                self.set_rollout(Stage::Progressing, 0, 0);
            }
            Stage::Gating => self.gate(&r),
            Stage::Progressing | Stage::AwaitingPromotion | Stage::Migrating => {}
        }
    }

    /// The spec changed mid-rollout: back to the live release cancels, anything new (not
    /// rejected) restarts the rollout with it. A rollback's target differs from the spec by
    /// design (the spec's release is rejected), so it is superseded only by a new release.
    fn superseded(&mut self, r: &Rollout) -> bool {
        let Ok(c) = self.obs.candidate.clone() else {
            return false;
        };
        if c.template_hash == r.release.template_hash || self.rejected(&c.template_hash) {
            return false;
        }
        if self
            .s
            .active_release
            .as_ref()
            .is_some_and(|l| l.template_hash == c.template_hash)
        {
            self.end_rollout(
                Outcome::Superseded,
                Reason::RolloutCancelled,
                format!("the spec is back to the live release ({})", c.image),
                false,
            );
            return true;
        }
        self.event(
            EventType::Normal,
            Reason::RolloutSuperseded,
            format!(
                "r{} ({}) superseded by {}",
                r.release.revision, r.release.image, c.image
            ),
        );
        self.record(
            r,
            Outcome::Superseded,
            Some(format!("superseded by {}", c.image)),
        );
        self.s.rollout = None;
        // The superseded release never went live: its color goes back to what it ran (or to
        // zero), and the new release starts on the same color.
        if r.stage != Stage::Migrating
            && let Some(state) = self.s.colors.get(r.color).cloned()
        {
            self.s.colors.set(
                r.color,
                Some(ColorState {
                    scaled_down: true,
                    ..state
                }),
            );
        }
        self.maybe_start(false);
        true
    }

    fn migrate(&mut self, r: &Rollout) {
        match &self.obs.migration {
            Some(JobFacts::Succeeded) => {
                self.event(
                    EventType::Normal,
                    Reason::MigrationSucceeded,
                    format!(
                        "migration for r{} succeeded; starting its pods",
                        r.release.revision
                    ),
                );
                self.s.colors.set(
                    r.color,
                    Some(ColorState {
                        release: r.release.clone(),
                        scaled_down: false,
                    }),
                );
                let now = self.now();
                if let Some(x) = self.s.rollout.as_mut() {
                    x.stage = Stage::Progressing;
                    x.deployed_at = Some(now);
                }
            }
            Some(JobFacts::Failed { reason }) => {
                let detail = format!("migration Job failed: {reason}");
                self.end_rollout(Outcome::Failed, Reason::MigrationFailed, detail, true);
            }
            Some(JobFacts::Running) | None => {}
        }
    }

    fn set_rollout(&mut self, stage: Stage, passes: i32, failures: i32) {
        if let Some(r) = self.s.rollout.as_mut() {
            r.stage = stage;
            r.gate_passes = passes;
            r.gate_failures = failures;
        }
    }

    fn gate(&mut self, r: &Rollout) {
        let health = &self.spec.health;
        if matches!(
            self.obs.gate,
            Some(GateResult::Pass | GateResult::Fail { .. })
        ) {
            let now = self.now();
            if let Some(x) = self.s.rollout.as_mut() {
                x.last_probe = Some(MicroTime(now.0));
            }
        }
        match self.obs.gate.clone() {
            Some(GateResult::Pass) => {
                let passes = r.gate_passes + 1;
                if passes < health.success_threshold {
                    self.set_rollout(Stage::Gating, passes, 0);
                    return;
                }
                self.event(
                    EventType::Normal,
                    Reason::HealthGatePassed,
                    format!(
                        "r{} on {}: {passes} consecutive passing rounds",
                        r.release.revision, r.color
                    ),
                );
                // Manual promotion guards replacing a live release: the first release (nothing
                // serving yet) and explicit rollbacks go live as soon as they pass the gate.
                let manual = self.spec.promotion == Promotion::Manual
                    && self.spec.strategy == Strategy::BlueGreen
                    && self.s.active_color.is_some()
                    && r.trigger != Trigger::Rollback;
                if manual {
                    self.set_rollout(Stage::AwaitingPromotion, passes, 0);
                    // A promote request made earlier is consumed right away.
                    if let Some(v) =
                        fresh(&self.obs.requests.promote, &self.s.acknowledged.promote).cloned()
                    {
                        self.s.acknowledged.promote = Some(v);
                        self.promote();
                    }
                } else {
                    self.promote();
                }
            }
            Some(GateResult::Fail { detail }) => {
                let failures = r.gate_failures + 1;
                self.event(
                    EventType::Warning,
                    Reason::HealthCheckFailed,
                    format!("round {failures}/{}: {detail}", health.failure_threshold),
                );
                if failures >= health.failure_threshold {
                    self.end_rollout(Outcome::Failed, Reason::HealthGateFailed, detail, true);
                } else {
                    self.set_rollout(Stage::Gating, 0, failures);
                }
            }
            Some(GateResult::Pending { .. }) | None => {}
        }
    }

    /// The post-switch window: probe the live color; failures switch back; when the window
    /// ends the release is done and the old color's scale-down is scheduled.
    pub(super) fn advance_verification(&mut self) {
        let Some(v) = self.s.verifying.clone() else {
            return;
        };
        if self.s.active_color != Some(v.color) {
            self.s.verifying = None;
            return;
        }
        // No pod of the live color is ready: the ingress has no endpoint and answers 503
        // now, so waiting for `failureThreshold` probe rounds would keep clients failing.
        if self
            .obs
            .facts(v.color)
            .is_some_and(|f| f.replicas > 0 && f.ready_replicas == 0)
        {
            self.revert(
                Reason::VerificationFailed,
                format!("no pod of {} is ready", v.color),
            );
            return;
        }
        let now = self.now();
        match self.obs.verification.clone() {
            Some(GateResult::Fail { detail }) => {
                let failures = v.failures + 1;
                self.event(
                    EventType::Warning,
                    Reason::VerificationCheckFailed,
                    format!(
                        "round {failures}/{}: {detail}",
                        self.spec.verification.failure_threshold
                    ),
                );
                if let Some(x) = self.s.verifying.as_mut() {
                    x.failures = failures;
                    x.last_probe = Some(MicroTime(now.0));
                }
                if failures >= self.spec.verification.failure_threshold {
                    self.revert(Reason::VerificationFailed, detail);
                    return;
                }
            }
            Some(GateResult::Pass) => {
                if let Some(x) = self.s.verifying.as_mut() {
                    x.failures = 0;
                    x.last_probe = Some(MicroTime(now.0));
                }
            }
            Some(GateResult::Pending { .. }) | None => {}
        }
        if self.obs.now >= v.until.0 {
            self.s.verifying = None;
            self.event(
                EventType::Normal,
                Reason::VerificationPassed,
                format!(
                    "r{} on {} healthy for {}s after the switch",
                    v.revision, v.color, self.spec.verification.duration_seconds
                ),
            );
            if let Some(prev) = v.previous {
                self.schedule_scale_down(prev);
            }
            // A release that waited for the verification may start now.
            self.maybe_start(false);
        }
    }

    pub(super) fn drain_timer(&mut self) -> Option<Duration> {
        let d = self.s.drain.clone()?;
        let gone = Some(d.color) == self.s.active_color
            || self.s.colors.get(d.color).is_none_or(|c| c.scaled_down);
        if gone {
            self.s.drain = None;
            return None;
        }
        if self.obs.now >= d.at.0 {
            self.s.drain = None;
            self.actions
                .push(Action::DrainConnections { color: d.color });
            None
        } else {
            Some(until(self.obs.now, d.at.0))
        }
    }

    pub(super) fn scale_down_timer(&mut self) -> Option<Duration> {
        let sd = self.s.scale_down.clone()?;
        if Some(sd.color) == self.s.active_color
            || self.s.rollout.as_ref().is_some_and(|r| r.color == sd.color)
        {
            self.s.scale_down = None;
            return None;
        }
        // A lowered `scaleDownDelaySeconds` applies to the pending scale-down too (counted
        // from the switch, never before the ingress has followed it); a raised one does not
        // postpone what was scheduled.
        let mut at = sd.at.0;
        if let Some(switch) = &self.s.last_switch_time {
            let delay = self
                .spec
                .scale_down_delay_seconds
                .max(self.spec.propagation_seconds);
            at = at.min(plus_secs(switch.0, delay));
        }
        if self.obs.now >= at {
            self.scale_down_now(sd.color);
            None
        } else {
            if at != sd.at.0 {
                self.s.scale_down = Some(ScaleDown {
                    color: sd.color,
                    at: Time(at),
                });
            }
            Some(until(self.obs.now, at))
        }
    }
}
