//! Status fields derived from the rest after a step: the live summary, the conditions CI and
//! on-call read, phase and message.

use crate::crd::{Phase, Reason, Stage, Strategy, conditions, conditions::ConditionType};

use super::Machine;

impl Machine<'_> {
    /// Whether the current spec's release is the live one.
    fn spec_released(&self) -> bool {
        match (&self.obs.candidate, &self.s.active_release) {
            (Ok(c), Some(live)) => c.template_hash == live.template_hash,
            _ => false,
        }
    }

    /// Ready while no release has ever passed the gate: a rejected first release or
    /// unreadable secrets are a final answer for CI (`kubectl mas status --watch` exits),
    /// not "in progress".
    fn nothing_live(&self) -> (bool, Reason, String) {
        let s = &self.s;
        let candidate = match &self.obs.candidate {
            Err(e) => return (false, Reason::SecretsUnavailable, e.clone()),
            Ok(c) => c,
        };
        if s.rollout.is_none()
            && let Some(rej) = s
                .rejected
                .iter()
                .find(|r| r.template_hash == candidate.template_hash)
        {
            return (
                false,
                Reason::ReleaseFailed,
                format!(
                    "r{} ({}) was rejected{}; nothing is live",
                    rej.revision,
                    rej.image,
                    self.degraded_detail()
                ),
            );
        }
        (
            false,
            Reason::NoLiveRelease,
            "nothing has passed the health gate yet".into(),
        )
    }

    /// ": <message>" of a true Degraded condition, else empty.
    fn degraded_detail(&self) -> String {
        conditions::condition(&self.s.conditions, ConditionType::Degraded)
            .filter(|c| c.status == "True")
            .map_or(String::new(), |c| format!(": {}", c.message))
    }

    fn ready_condition(&self, paused: bool) -> (bool, Reason, String) {
        let s = &self.s;
        let Some(live) = &s.active_release else {
            return self.nothing_live();
        };
        let active_ready = s
            .active_color
            .and_then(|c| self.obs.facts(c))
            .is_some_and(|f| {
                f.ready_replicas >= self.spec.replicas && f.revision == Some(live.revision)
            });
        let rejected = self.obs.candidate.as_ref().ok().and_then(|c| {
            s.rejected
                .iter()
                .find(|r| r.template_hash == c.template_hash)
        });
        if let Err(e) = &self.obs.candidate {
            return (false, Reason::SecretsUnavailable, e.clone());
        }
        if let Some(r) = &s.rollout {
            let what = format!(
                "r{} ({}) on {}: {:?}",
                r.release.revision, r.release.image, r.color, r.stage
            );
            return (false, Reason::ReleaseInProgress, what);
        }
        if let Some(v) = &s.verifying {
            return (
                false,
                Reason::Verifying,
                format!("r{} live on {}, verifying", v.revision, v.color),
            );
        }
        if let Some(rej) = rejected {
            let why = self.degraded_detail();
            return (
                false,
                Reason::ReleaseFailed,
                format!(
                    "r{} ({}) was rejected{why}; r{} ({}) stays live",
                    rej.revision, rej.image, live.revision, live.image
                ),
            );
        }
        if !self.spec_released() {
            let reason = if paused {
                Reason::Paused
            } else {
                Reason::ReleaseInProgress
            };
            return (
                false,
                reason,
                "the spec's release has not started yet".into(),
            );
        }
        if let Some(at) = &s.last_switch_time
            && self.obs.now < super::plus_secs(at.0, self.spec.propagation_seconds)
        {
            return (
                false,
                Reason::Propagating,
                format!(
                    "r{} ({}) switched; waiting {}s for the ingress to follow",
                    live.revision, live.image, self.spec.propagation_seconds
                ),
            );
        }
        if !active_ready {
            return (
                false,
                Reason::ActiveNotReady,
                format!(
                    "r{} ({}) live but not all replicas ready",
                    live.revision, live.image
                ),
            );
        }
        (
            true,
            Reason::Released,
            format!("r{} ({}) live", live.revision, live.image),
        )
    }

    pub(super) fn derive(&mut self, paused: bool) {
        let now = self.obs.now;
        let gen_ = self.obs.generation;
        let (ready, ready_reason, ready_msg) = self.ready_condition(paused);
        let s = &mut self.s;
        s.observed_generation = gen_;
        s.active_image = s.active_release.as_ref().map(|r| r.image.clone());
        s.active_revision = s.active_release.as_ref().map(|r| r.revision);
        let active_facts = s.active_color.and_then(|c| self.obs.facts(c));
        s.active_replicas = active_facts.map_or(0, |f| f.ready_replicas);
        (s.standby_color, s.standby_image) = match (self.spec.strategy, s.active_color) {
            (Strategy::BlueGreen, Some(active)) => match s.colors.get(active.other()) {
                Some(c) if !c.scaled_down => (Some(active.other()), Some(c.release.image.clone())),
                _ => (None, None),
            },
            _ => (None, None),
        };
        conditions::set_condition(
            &mut s.conditions,
            ConditionType::Ready,
            ready,
            ready_reason,
            &ready_msg,
            gen_,
            now,
        );

        let (progressing, reason, msg) = match (&s.rollout, &s.verifying, paused) {
            (Some(r), _, true) => (
                false,
                Reason::Paused,
                format!(
                    "r{} on {} paused at {:?}",
                    r.release.revision, r.color, r.stage
                ),
            ),
            (None, _, true) => (false, Reason::Paused, "paused".to_owned()),
            (Some(r), _, false) => (
                true,
                stage_reason(r.stage),
                format!(
                    "r{} ({}) on {}",
                    r.release.revision, r.release.image, r.color
                ),
            ),
            (None, Some(v), false) => (
                true,
                Reason::Verifying,
                format!("r{} on {}", v.revision, v.color),
            ),
            (None, None, false) => (false, Reason::Idle, "no rollout in progress".to_owned()),
        };
        conditions::set_condition(
            &mut s.conditions,
            ConditionType::Progressing,
            progressing,
            reason,
            &msg,
            gen_,
            now,
        );

        let (standby_ready, reason) = match &s.rollout {
            Some(r) if r.stage == Stage::AwaitingPromotion => (true, Reason::GatePassed),
            Some(_) => (false, Reason::Gating),
            None => match s.standby_color {
                Some(c)
                    if self.obs.facts(c).is_some_and(|f| {
                        f.ready_replicas >= self.spec.replicas
                            && f.revision == s.colors.get(c).map(|x| x.release.revision)
                    }) =>
                {
                    (true, Reason::StandbyWarm)
                }
                Some(_) => (false, Reason::StandbyNotReady),
                None => (false, Reason::NoStandby),
            },
        };
        conditions::set_condition(
            &mut s.conditions,
            ConditionType::StandbyReady,
            standby_ready,
            reason,
            "",
            gen_,
            now,
        );
        match conditions::condition(&s.conditions, ConditionType::Degraded) {
            None => conditions::set_condition(
                &mut s.conditions,
                ConditionType::Degraded,
                false,
                Reason::AsExpected,
                "",
                gen_,
                now,
            ),
            // Same status and reason, the generation it was observed at moves on.
            Some(c) => {
                let (st, reason, message) = (
                    c.status == "True",
                    Reason::parse(&c.reason).unwrap_or(Reason::AsExpected),
                    c.message.clone(),
                );
                conditions::set_condition(
                    &mut s.conditions,
                    ConditionType::Degraded,
                    st,
                    reason,
                    &message,
                    gen_,
                    now,
                );
            }
        }
        let degraded = conditions::condition(&s.conditions, ConditionType::Degraded)
            .filter(|c| c.status == "True")
            .cloned();

        s.phase = if paused {
            Phase::Paused
        } else if let Some(r) = &s.rollout {
            match r.stage {
                Stage::Migrating => Phase::Migrating,
                Stage::Progressing => Phase::Progressing,
                Stage::Gating => Phase::Gating,
                Stage::AwaitingPromotion => Phase::AwaitingPromotion,
            }
        } else if s.verifying.is_some() {
            Phase::Verifying
        } else if let Some(d) = &degraded {
            if d.reason == Reason::RolledBack.as_str() {
                Phase::RolledBack
            } else {
                Phase::Degraded
            }
        } else if s.scale_down.is_some() {
            Phase::ScaleDownPending
        } else if s.active_color.is_some() {
            Phase::Stable
        } else {
            Phase::Pending
        };
        s.message = Some(match (&s.rollout, &degraded) {
            (Some(r), _) => format!(
                "{:?}: r{} ({}) on {}",
                r.stage, r.release.revision, r.release.image, r.color
            ),
            (None, Some(d)) => d.message.clone(),
            (None, None) => match (&s.active_release, s.active_color) {
                (Some(r), Some(c)) => format!("r{} ({}) live on {c}", r.revision, r.image),
                _ => "waiting for the first release".to_owned(),
            },
        });
    }
}

fn stage_reason(stage: Stage) -> Reason {
    match stage {
        Stage::Migrating => Reason::Migrating,
        Stage::Progressing => Reason::StandbyRollingOut,
        Stage::Gating => Reason::HealthGating,
        Stage::AwaitingPromotion => Reason::AwaitingPromotion,
    }
}
