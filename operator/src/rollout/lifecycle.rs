//! A release's life: started (from the spec, a rollback or a retry), ended without going live,
//! promoted (the switch), reverted after a failed verification, and the old color's scale-down.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::crd::{
    Color, ColorState, HISTORY_LIMIT, Outcome, PendingDrain, REJECTED_LIMIT, Reason, Rejected,
    Release, ReleaseRef, Rollout, ScaleDown, Stage, Strategy, Trigger, Verifying,
};

use super::{Action, EventType, Machine, plus_secs, seconds_between};

impl Machine<'_> {
    pub(super) fn rejected(&self, template_hash: &str) -> bool {
        self.s.is_rejected(template_hash)
    }

    pub(super) fn reject(&mut self, release: &ReleaseRef) {
        if !self.rejected(&release.template_hash) {
            self.s.rejected.insert(
                0,
                Rejected {
                    image: release.image.clone(),
                    template_hash: release.template_hash.clone(),
                    revision: release.revision,
                },
            );
            self.s.rejected.truncate(REJECTED_LIMIT);
        }
    }

    /// Writes a history entry (newest first) and reports it for the metrics.
    pub(super) fn record(&mut self, r: &Rollout, outcome: Outcome, message: Option<String>) {
        let now = self.obs.now;
        let entry = Release {
            release: r.release.clone(),
            color: r.color,
            trigger: r.trigger,
            outcome,
            started_at: r.started_at.clone(),
            at: self.now(),
            gate_seconds: r
                .gating_since
                .as_ref()
                .filter(|_| outcome.went_live())
                .map(|t| seconds_between(t, now)),
            switch_seconds: outcome
                .went_live()
                .then(|| seconds_between(&r.started_at, now)),
            message,
        };
        self.actions.push(Action::Recorded(entry.clone()));
        self.s.history.insert(0, entry);
        self.s.history.truncate(HISTORY_LIMIT);
    }

    /// Ready at full size on `revision`, with the Deployment controller caught up.
    pub(super) fn color_ready(&self, color: Color, revision: i64) -> bool {
        let want = self.spec.replicas;
        self.obs.facts(color).is_some_and(|f| {
            f.revision == Some(revision)
                && f.observed_generation >= f.generation
                && f.replicas == want
                && f.updated_replicas >= want
                && f.ready_replicas >= want
        })
    }

    pub(super) fn rollout_color(&self) -> Color {
        match (self.spec.strategy, self.s.active_color) {
            (Strategy::Recreate, _) | (_, None) => Color::Blue,
            (Strategy::BlueGreen, Some(active)) => active.other(),
        }
    }

    /// The release of the spec, with the revision number it has or gets: a release identical
    /// to one in the history keeps that history's revision (its snapshot is the same).
    fn candidate_release(&self) -> Option<ReleaseRef> {
        let c = self.obs.candidate.as_ref().ok()?;
        let known = self
            .s
            .history
            .iter()
            .map(|h| &h.release)
            .chain(self.s.active_release.as_ref())
            .find(|r| r.template_hash == c.template_hash && self.obs.releases.contains(&r.revision))
            .map(|r| r.revision);
        Some(ReleaseRef {
            revision: known.unwrap_or(self.s.last_revision + 1),
            image: c.image.clone(),
            secrets_hash: c.secrets_hash.clone(),
            template_hash: c.template_hash.clone(),
        })
    }

    /// Starts a release of the spec when it differs from the live one and is not rejected.
    pub(super) fn maybe_start(&mut self, retry: bool) {
        if self.s.rollout.is_some() {
            return;
        }
        let Some(release) = self.candidate_release() else {
            return;
        };
        if self.rejected(&release.template_hash) {
            return;
        }
        let live = self.s.active_release.clone();
        let trigger = match &live {
            None => Trigger::Initial,
            Some(l) if l.template_hash == release.template_hash => return,
            _ if retry => Trigger::Retry,
            Some(l) if l.image != release.image => Trigger::NewImage,
            Some(l) if l.secrets_hash != release.secrets_hash => Trigger::SecretsRotated,
            Some(_) => Trigger::TemplateChanged,
        };
        if let Some(v) = &self.s.verifying {
            // The previous color is the switch-back target until verification ends.
            let note = format!(
                "r{} ({}) starts after the verification of r{} ends",
                release.revision, release.image, v.revision
            );
            if !self.actions.iter().any(|a| {
                matches!(
                    a,
                    Action::Event {
                        reason: Reason::ReleaseWaiting,
                        ..
                    }
                )
            }) {
                self.event(EventType::Normal, Reason::ReleaseWaiting, note);
            }
            return;
        }
        let color = self.rollout_color();
        // The same release warm on the standby color: switch to it (Argo's fast rollback).
        if self.spec.strategy == Strategy::BlueGreen
            && Some(color) != self.s.active_color
            && self
                .s
                .colors
                .get(color)
                .is_some_and(|c| !c.scaled_down && c.release.revision == release.revision)
            && self.color_ready(color, release.revision)
        {
            let note = format!(
                "{color} already runs r{} warm; switching without a new gate",
                release.revision
            );
            self.instant_switch(color, release, trigger, Reason::TrafficSwitched, note);
            return;
        }
        self.start_rollout(color, release, trigger);
    }

    /// Switches to a warm color that already runs `release` and passed its gate before (fast
    /// rollback): no rollout, one selector write.
    pub(super) fn instant_switch(
        &mut self,
        color: Color,
        release: ReleaseRef,
        trigger: Trigger,
        reason: Reason,
        note: String,
    ) {
        if self
            .s
            .scale_down
            .as_ref()
            .is_some_and(|sd| sd.color == color)
        {
            self.s.scale_down = None;
        }
        if self.s.drain.as_ref().is_some_and(|d| d.color == color) {
            self.s.drain = None;
        }
        self.s.rollout = Some(Rollout {
            stage: Stage::AwaitingPromotion,
            trigger,
            color,
            release,
            started_at: self.now(),
            deployed_at: None,
            gating_since: None,
            gate_passes: 0,
            gate_failures: 0,
            last_probe: None,
        });
        self.event(EventType::Normal, reason, note);
        self.promote();
    }

    pub(super) fn start_rollout(&mut self, color: Color, release: ReleaseRef, trigger: Trigger) {
        if self
            .s
            .scale_down
            .as_ref()
            .is_some_and(|sd| sd.color == color)
        {
            self.s.scale_down = None;
        }
        if self.s.drain.as_ref().is_some_and(|d| d.color == color) {
            self.s.drain = None;
        }
        self.s.last_revision = self.s.last_revision.max(release.revision);
        // Rollbacks run an old release: its migration ran when it was new, and the schema only
        // moves forward (expand/contract).
        let migrate = self.spec.migration.is_some() && trigger != Trigger::Rollback;
        if trigger != Trigger::Rollback {
            self.clear_degraded();
        }
        let image = release.image.clone();
        let revision = release.revision;
        let stage = if migrate {
            self.event(
                EventType::Normal,
                Reason::MigrationStarted,
                format!("migrating for r{revision} ({image}) before its pods start"),
            );
            Stage::Migrating
        } else {
            self.s.colors.set(
                color,
                Some(ColorState {
                    release: release.clone(),
                    scaled_down: false,
                }),
            );
            Stage::Progressing
        };
        self.event(
            EventType::Normal,
            Reason::RolloutStarted,
            format!("rolling out r{revision} ({image}) on {color} ({trigger:?})"),
        );
        self.s.rollout = Some(Rollout {
            stage,
            trigger,
            color,
            release,
            started_at: self.now(),
            deployed_at: (!migrate).then(|| self.now()),
            gating_since: None,
            gate_passes: 0,
            gate_failures: 0,
            last_probe: None,
        });
    }

    /// Ends the in-flight rollout without going live. Blue/green scales the target down (or
    /// leaves it untouched if the migration never let it start); recreate redeploys the live
    /// release.
    pub(super) fn end_rollout(
        &mut self,
        outcome: Outcome,
        reason: Reason,
        detail: String,
        reject: bool,
    ) {
        let Some(r) = self.s.rollout.take() else {
            return;
        };
        if reject {
            self.reject(&r.release);
        }
        self.record(&r, outcome, Some(detail.clone()));
        let started_pods = r.stage != Stage::Migrating;
        if outcome == Outcome::Failed {
            self.actions.push(if started_pods {
                Action::CaptureLogs { color: r.color }
            } else {
                Action::CaptureJobLogs {
                    revision: r.release.revision,
                }
            });
        }
        if started_pods {
            match (self.spec.strategy, self.s.active_release.clone()) {
                (Strategy::Recreate, Some(live)) if Some(r.color) == self.s.active_color => {
                    self.s.colors.set(
                        r.color,
                        Some(ColorState {
                            release: live,
                            scaled_down: false,
                        }),
                    );
                }
                _ => self.s.colors.set(
                    r.color,
                    Some(ColorState {
                        release: r.release.clone(),
                        scaled_down: true,
                    }),
                ),
            }
        }
        let type_ = if reject {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let what = format!(
            "r{} ({}) on {}",
            r.release.revision, r.release.image, r.color
        );
        self.event(type_, reason, format!("{what}: {detail}"));
        if reject {
            self.set_degraded(reason, &format!("{what} rejected: {detail}"));
        }
    }

    /// The rollout's color goes live: one selector write, then verification (blue/green with
    /// a warm previous color) or done.
    pub(super) fn promote(&mut self) {
        let Some(r) = self.s.rollout.take() else {
            return;
        };
        let previous = self.s.active_color.filter(|p| *p != r.color);
        self.s.active_color = Some(r.color);
        self.s.active_release = Some(r.release.clone());
        self.s.last_switch_time = Some(self.now());
        let outcome = if r.trigger == Trigger::Rollback {
            Outcome::RolledBack
        } else {
            Outcome::Promoted
        };
        self.record(&r, outcome, None);
        if let Some(prev) = previous {
            self.actions.push(Action::SwitchTraffic { to: r.color });
            self.actions
                .push(Action::ResumeConnections { color: r.color });
            self.schedule_drain(prev);
        }
        if r.trigger != Trigger::Rollback {
            self.clear_degraded();
        }
        self.event(
            EventType::Normal,
            Reason::TrafficSwitched,
            format!(
                "r{} ({}) live on {}",
                r.release.revision, r.release.image, r.color
            ),
        );
        let duration = self.spec.verification.duration_seconds;
        match previous {
            Some(prev) if duration > 0 && r.trigger != Trigger::Rollback => {
                self.s.verifying = Some(Verifying {
                    color: r.color,
                    revision: r.release.revision,
                    previous: Some(prev),
                    until: Time(plus_secs(self.obs.now, duration)),
                    failures: 0,
                    last_probe: None,
                });
            }
            Some(prev) => self.schedule_scale_down(prev),
            None => {}
        }
    }

    /// Verification failed (or was aborted): traffic goes back to the previous color, still
    /// warm; the release is rejected and its color scaled down.
    pub(super) fn revert(&mut self, reason: Reason, detail: String) {
        let Some(v) = self.s.verifying.take() else {
            return;
        };
        let failed = self.s.active_release.clone();
        let back = v
            .previous
            .and_then(|p| self.s.colors.get(p).cloned().map(|c| (p, c)))
            .filter(|(_, c)| !c.scaled_down);
        let Some((prev, prev_state)) = back else {
            // Nothing warm to go back to (cannot happen: the old color is kept warm through
            // verification); the release stays live and Degraded says why.
            self.set_degraded(
                reason,
                &format!("verification failed and no previous color is warm: {detail}"),
            );
            return;
        };
        if let Some(f) = &failed {
            self.reject(f);
            if let Some(h) = self
                .s
                .history
                .iter_mut()
                .find(|h| h.release.revision == f.revision && h.outcome.went_live())
            {
                h.outcome = Outcome::Reverted;
                h.message = Some(detail.clone());
                let entry = h.clone();
                self.actions.push(Action::Recorded(entry));
            }
        }
        self.s.active_color = Some(prev);
        self.s.active_release = Some(prev_state.release.clone());
        self.s.last_switch_time = Some(self.now());
        self.actions.push(Action::SwitchTraffic { to: prev });
        self.actions.push(Action::ResumeConnections { color: prev });
        self.actions.push(Action::CaptureLogs { color: v.color });
        if self.s.drain.as_ref().is_some_and(|d| d.color == prev) {
            self.s.drain = None;
        }
        // The failed color keeps serving until the ingress has followed the switch back: scaled
        // down at once, its endpoints could go before the previous color's arrive, and the
        // ingress controller would answer 503 until its next configuration reload.
        self.s.scale_down = None;
        if self.spec.propagation_seconds == 0 {
            self.scale_down_now(v.color);
        } else {
            self.s.scale_down = Some(ScaleDown {
                color: v.color,
                at: Time(plus_secs(self.obs.now, self.spec.propagation_seconds)),
            });
        }
        let what = failed.map_or_else(String::new, |f| format!("r{} ({})", f.revision, f.image));
        self.event(
            EventType::Warning,
            reason,
            format!("{what} on {}: {detail}; traffic back on {prev}", v.color),
        );
        self.set_degraded(reason, &format!("{what} rejected: {detail}"));
    }

    pub(super) fn schedule_drain(&mut self, color: Color) {
        if !self.spec.connections.drain_after_switch || self.spec.strategy != Strategy::BlueGreen {
            return;
        }
        self.s.drain = Some(PendingDrain {
            color,
            at: Time(plus_secs(self.obs.now, self.spec.propagation_seconds)),
        });
    }

    pub(super) fn schedule_scale_down(&mut self, color: Color) {
        if self.spec.scale_down_delay_seconds == 0 {
            self.scale_down_now(color);
        } else {
            let at = plus_secs(self.obs.now, self.spec.scale_down_delay_seconds);
            self.s.scale_down = Some(ScaleDown {
                color,
                at: Time(at),
            });
        }
    }

    pub(super) fn scale_down_now(&mut self, color: Color) {
        if self
            .s
            .scale_down
            .as_ref()
            .is_some_and(|sd| sd.color == color)
        {
            self.s.scale_down = None;
        }
        if let Some(state) = self.s.colors.get(color).cloned().filter(|s| !s.scaled_down) {
            self.s.colors.set(
                color,
                Some(ColorState {
                    scaled_down: true,
                    ..state
                }),
            );
            self.event(
                EventType::Normal,
                Reason::ScaledDown,
                format!("{color} scaled to zero"),
            );
        }
    }

    /// The newest release that went live, is not live now and is not rejected, with its
    /// snapshot still kept: where a rollback goes. Repeated rollbacks walk further back, since
    /// each rejects the release it leaves.
    pub(super) fn previous_good(&self) -> Option<ReleaseRef> {
        let active = self.s.active_release.as_ref()?;
        self.s
            .history
            .iter()
            .filter(|h| h.outcome.went_live())
            .map(|h| &h.release)
            .find(|r| {
                r.revision != active.revision
                    && !self.rejected(&r.template_hash)
                    && self.obs.releases.contains(&r.revision)
            })
            .cloned()
    }

    /// A release by revision number, from the history.
    pub(super) fn release_by_revision(&self, revision: i64) -> Option<ReleaseRef> {
        self.s
            .history
            .iter()
            .map(|h| &h.release)
            .chain(self.s.active_release.as_ref())
            .find(|r| r.revision == revision)
            .cloned()
    }
}
