//! One-shot requests written as annotations (plain kubectl, GitOps-safe: they never touch the
//! spec) and acknowledged in `status.acknowledged`, so re-applying a value is a no-op.
//!
//! - `rollback`: a revision number from the history goes back to that release; any other value
//!   (e.g. `$(date +%s)`) goes to the previous good release. Warm: one selector write; cold:
//!   through the gate. The release left is rejected.
//! - `promote`: switches a release that passed the gate under manual promotion.
//! - `abort`: drops the rollout in flight, or reverts one still being verified.
//! - `retry`: releases the current spec again although it was rejected (once).

use crate::crd::{Outcome, Reason, Stage, Strategy, Trigger};

use super::{EventType, Machine, fresh};

/// Values below this are revision numbers; above, request tokens such as Unix timestamps.
const REVISION_MAX: i64 = 1_000_000;

impl Machine<'_> {
    pub(super) fn handle_requests(&mut self) {
        let req = self.obs.requests.clone();
        if let Some(v) = fresh(&req.abort, &self.s.acknowledged.abort).cloned() {
            self.handle_abort(v);
        }
        if let Some(v) = fresh(&req.rollback, &self.s.acknowledged.rollback).cloned() {
            self.handle_rollback(v);
        }
        if let Some(v) = fresh(&req.retry, &self.s.acknowledged.retry).cloned() {
            self.handle_retry(v);
        }
        if let Some(v) = fresh(&req.promote, &self.s.acknowledged.promote).cloned() {
            match self.s.rollout.as_ref().map(|r| r.stage) {
                Some(Stage::AwaitingPromotion) => {
                    self.s.acknowledged.promote = Some(v);
                    self.event(
                        EventType::Normal,
                        Reason::PromotionRequested,
                        "promoted by request",
                    );
                    self.promote();
                }
                // Kept pending: consumed once the gate has passed.
                Some(_) => {}
                None => {
                    self.s.acknowledged.promote = Some(v);
                    self.event(
                        EventType::Normal,
                        Reason::NothingToPromote,
                        "promote requested but nothing awaits promotion",
                    );
                }
            }
        }
    }

    fn handle_abort(&mut self, value: String) {
        self.s.acknowledged.abort = Some(value);
        if self.s.rollout.is_some() {
            self.end_rollout(
                Outcome::Aborted,
                Reason::RolloutAborted,
                "aborted by request".into(),
                true,
            );
        } else if self.s.verifying.is_some() {
            self.revert(
                Reason::RolloutAborted,
                "aborted by request during verification".into(),
            );
        } else {
            self.event(
                EventType::Normal,
                Reason::NothingToAbort,
                "abort requested but no rollout is in progress",
            );
        }
    }

    fn handle_retry(&mut self, value: String) {
        self.s.acknowledged.retry = Some(value);
        let Some(c) = self.obs.candidate.as_ref().ok().cloned() else {
            self.event(
                EventType::Warning,
                Reason::NothingToRetry,
                "retry requested but the spec's secrets cannot be read",
            );
            return;
        };
        if !self.rejected(&c.template_hash) {
            self.event(
                EventType::Normal,
                Reason::NothingToRetry,
                format!("retry requested but {} is not rejected", c.image),
            );
            return;
        }
        self.s
            .rejected
            .retain(|r| r.template_hash != c.template_hash);
        self.event(
            EventType::Normal,
            Reason::RetryRequested,
            format!("releasing {} again", c.image),
        );
        self.maybe_start(true);
    }

    fn handle_rollback(&mut self, value: String) {
        self.s.acknowledged.rollback = Some(value.clone());
        let named = value
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..REVISION_MAX).contains(n));
        if let Some(r) = &self.s.rollout {
            if r.trigger == Trigger::Rollback {
                self.event(
                    EventType::Normal,
                    Reason::RollbackInProgress,
                    "a rollback is already rolling out",
                );
                return;
            }
            // Traffic never left the live release: rolling back means dropping the new one.
            self.end_rollout(
                Outcome::Aborted,
                Reason::RolloutAborted,
                "rolled back before going live".into(),
                true,
            );
            if named.is_none() || named == self.s.active_release.as_ref().map(|r| r.revision) {
                return;
            }
        }
        if self.s.verifying.is_some() && named.is_none() {
            self.revert(
                Reason::RolledBack,
                "rolled back by request during verification".into(),
            );
            return;
        }
        self.s.verifying = None;
        let Some(active) = self.s.active_color else {
            self.event(
                EventType::Warning,
                Reason::RollbackUnavailable,
                "nothing is live yet",
            );
            return;
        };
        let Some(live) = self.s.active_release.clone() else {
            self.event(
                EventType::Warning,
                Reason::RollbackUnavailable,
                "nothing is live yet",
            );
            return;
        };
        let target = match named {
            Some(rev) => match self.release_by_revision(rev) {
                Some(t) if self.obs.releases.contains(&rev) && rev != live.revision => {
                    // Asked for by name: a rejected release is allowed back.
                    self.s
                        .rejected
                        .retain(|r| r.template_hash != t.template_hash);
                    t
                }
                Some(_) if rev == live.revision => {
                    self.event(
                        EventType::Normal,
                        Reason::RollbackUnavailable,
                        format!("r{rev} is already live"),
                    );
                    return;
                }
                _ => {
                    self.event(
                        EventType::Warning,
                        Reason::RollbackUnavailable,
                        format!("r{rev} is not in the kept history (see status.history)"),
                    );
                    return;
                }
            },
            None => match self.previous_good() {
                Some(t) => t,
                None => {
                    self.event(
                        EventType::Warning,
                        Reason::RollbackUnavailable,
                        "no earlier good release in the kept history",
                    );
                    return;
                }
            },
        };
        self.reject(&live);
        let reason = format!(
            "rolled back from r{} ({}) to r{} ({})",
            live.revision, live.image, target.revision, target.image
        );
        self.set_degraded(
            Reason::RolledBack,
            &format!("r{} rejected: {reason}", live.revision),
        );
        let standby = active.other();
        let warm = self.spec.strategy == Strategy::BlueGreen
            && self
                .s
                .colors
                .get(standby)
                .is_some_and(|c| c.release.revision == target.revision && !c.scaled_down)
            && self.color_ready(standby, target.revision);
        if warm {
            self.instant_switch(
                standby,
                target,
                Trigger::Rollback,
                Reason::RolledBack,
                format!("{reason} (warm {standby}, instant switch)"),
            );
        } else {
            let color = self.rollout_color();
            self.event(
                EventType::Normal,
                Reason::RollbackStarted,
                format!("{reason}: not warm, redeploying through the gate"),
            );
            self.start_rollout(color, target, Trigger::Rollback);
        }
    }
}
