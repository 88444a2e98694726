//! Transition tests. `World` simulates the cluster converging on what the previous step asked
//! for, and round-trips the status through JSON on every step, which is exactly what an operator
//! restart does (everything must resume from the stored status). Release identities come from
//! the real pod-template renderer (`desired::snapshot`), on the shared fixture.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::*;
use crate::crd::{Color, ConditionType, MasBackend, Outcome, Phase, Reason, Stage, Trigger};
use crate::desired::{Owner, snapshot};

fn mb(extra: &str) -> MasBackend {
    let mut v = crate::testing::fixture(extra);
    v["metadata"]["namespace"] = "prod".into();
    v["metadata"]["uid"] = "u-1".into();
    serde_json::from_value(v).unwrap()
}

struct World {
    mb: MasBackend,
    status: MasBackendStatus,
    now: Timestamp,
    requests: Requests,
    /// When false, Deployments never become ready (stuck rollout).
    converge: bool,
    gate: Option<GateResult>,
    verify: Option<GateResult>,
    migration: Option<JobFacts>,
    /// Hash of the currently fetched AWS secrets; `Err` = cannot be read.
    secrets: Result<Option<String>, String>,
    /// Revisions whose ControllerRevision exists (the apply creates the rollout's).
    releases: BTreeSet<i64>,
    /// A color whose pods all turn unready (e.g. lost their Redis).
    unready: Option<Color>,
}

impl World {
    fn new(extra: &str) -> Self {
        Self {
            mb: mb(extra),
            status: MasBackendStatus::default(),
            now: Timestamp::from_second(1_800_000_000).unwrap(),
            requests: Requests::default(),
            converge: true,
            gate: Some(GateResult::Pass),
            verify: Some(GateResult::Pass),
            migration: Some(JobFacts::Succeeded),
            secrets: Ok(None),
            releases: BTreeSet::new(),
            unready: None,
        }
    }

    fn spec(&mut self) -> &mut MasBackendSpec {
        &mut self.mb.spec
    }

    fn candidate(&self) -> Result<Candidate, String> {
        let hash = self.secrets.clone()?;
        let owner = Owner::of(&self.mb).unwrap();
        let snap = snapshot(&owner, &self.mb.spec, hash.as_deref());
        Ok(Candidate {
            image: snap.image.clone(),
            secrets_hash: hash,
            template_hash: snap.template_hash(),
        })
    }

    fn facts(&self, c: Color) -> Option<DeploymentFacts> {
        let st = self.status.colors.get(c)?;
        let replicas = if st.scaled_down {
            0
        } else {
            self.mb.spec.replicas
        };
        let ready = if self.unready == Some(c) {
            0
        } else if self.converge || self.status.active_color == Some(c) {
            replicas
        } else {
            0
        };
        Some(DeploymentFacts {
            revision: Some(st.release.revision),
            replicas,
            ready_replicas: ready,
            updated_replicas: ready,
            generation: Some(1),
            observed_generation: Some(1),
        })
    }

    fn observed(&self) -> Observed {
        Observed {
            now: self.now,
            generation: Some(1),
            blue: self.facts(Color::Blue),
            green: self.facts(Color::Green),
            candidate: self.candidate(),
            releases: self.releases.clone(),
            gate: gate_target(&self.mb.spec, &self.status, self.now).and(self.gate.clone()),
            verification: verification_target(&self.mb.spec, &self.status, self.now)
                .and(self.verify.clone()),
            migration: migration_target(&self.status).and(self.migration.clone()),
            requests: self.requests.clone(),
        }
    }

    fn step(&mut self) -> Decision {
        let d = step(&self.mb.spec, &self.status, &self.observed());
        let json = serde_json::to_value(&d.status).unwrap();
        self.status = serde_json::from_value(json).unwrap();
        // The apply creates the ControllerRevision of every release the status names.
        self.releases.extend(self.status.referenced_revisions());
        // One health period per step, so every gating step is a due probe round.
        self.wait(i64::from(self.mb.spec.health.period_seconds));
        d
    }

    fn wait(&mut self, secs: i64) {
        self.now = self
            .now
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap();
    }

    /// Steps until no rollout and no verification is in flight and the last switch has
    /// propagated (bounded), returning every action taken.
    fn settle(&mut self) -> Vec<Action> {
        let mut all = Vec::new();
        for _ in 0..200 {
            let d = self.step();
            all.extend(d.actions);
            let propagating = self.cond(ConditionType::Ready).1 == "Propagating";
            if self.status.rollout.is_none() && self.status.verifying.is_none() && !propagating {
                return all;
            }
        }
        panic!("did not settle: {:?}", self.status.rollout);
    }

    /// Blue live with the fixture's api:1.
    fn live(extra: &str) -> Self {
        let mut w = World::new(extra);
        w.settle();
        assert_eq!(w.status.active_color, Some(Color::Blue));
        w
    }

    /// Blue live on api:1, green live on api:2 (blue warm).
    fn two_releases(extra: &str) -> Self {
        let mut w = World::live(extra);
        w.spec().image = "api:2".into();
        w.settle();
        assert_eq!(w.status.active_color, Some(Color::Green));
        w
    }

    fn cond(&self, t: ConditionType) -> (String, String) {
        let c = crate::crd::conditions::condition(&self.status.conditions, t).unwrap();
        (c.status.clone(), c.reason.clone())
    }

    fn live_image(&self) -> Option<&str> {
        self.status
            .active_release
            .as_ref()
            .map(|r| r.image.as_str())
    }
}

fn has_event(actions: &[Action], reason: Reason) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Event { reason: r, .. } if *r == reason))
}

fn stage(w: &World) -> Option<Stage> {
    w.status.rollout.as_ref().map(|r| r.stage)
}

fn t(s: &str) -> (String, String) {
    let (a, b) = s.split_once(' ').unwrap();
    (a.to_owned(), b.to_owned())
}

#[test]
fn first_release_rolls_out_blue_and_goes_live_after_gate() {
    let mut w = World::new("");
    w.gate = None;
    let d = w.step();
    assert!(has_event(&d.actions, Reason::RolloutStarted));
    assert_eq!(stage(&w), Some(Stage::Progressing));
    assert_eq!(w.status.phase, Phase::Progressing);
    let r = w.status.rollout.clone().unwrap();
    assert_eq!(
        (r.trigger, r.release.revision, r.color),
        (Trigger::Initial, 1, Color::Blue)
    );
    assert_eq!(w.status.colors.blue.as_ref().unwrap().release.revision, 1);
    assert_eq!(w.status.active_color, None);
    assert_eq!(w.cond(ConditionType::Ready), t("False NoLiveRelease"));

    let d = w.step();
    assert!(has_event(&d.actions, Reason::GateStarted));
    assert_eq!(stage(&w), Some(Stage::Gating));
    assert_eq!(
        d.requeue,
        Duration::from_millis(100),
        "first probe round right away"
    );

    w.gate = Some(GateResult::Pass);
    w.step();
    assert_eq!(w.status.rollout.as_ref().unwrap().gate_passes, 1);
    let d = w.step();
    assert!(has_event(&d.actions, Reason::HealthGatePassed));
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::SwitchTraffic { .. })),
        "nothing to switch from on the first release"
    );
    assert_eq!(w.status.active_color, Some(Color::Blue));
    assert_eq!(w.status.active_image.as_deref(), Some("api:1"));
    assert_eq!(w.status.active_revision, Some(1));
    assert_eq!(w.status.phase, Phase::Stable);
    assert_eq!(w.status.history[0].outcome, Outcome::Promoted);
    assert!(w.status.history[0].gate_seconds.is_some());
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::Recorded(r) if r.outcome == Outcome::Promoted))
    );
    assert_eq!(
        w.cond(ConditionType::Ready),
        t("False Propagating"),
        "the ingress follows first"
    );
    assert!(d.requeue <= Duration::from_secs(5));
    for _ in 0..5 {
        w.step();
    }
    assert_eq!(w.cond(ConditionType::Ready), t("True Released"));
    assert_eq!(w.cond(ConditionType::Progressing).0, "False");
    assert_eq!(w.cond(ConditionType::Degraded).0, "False");
    assert_eq!(w.status.active_replicas, 2);
}

#[test]
fn progressing_waits_for_all_replicas_ready_and_pending_rounds_do_not_count() {
    let mut w = World::new("");
    w.converge = false;
    for _ in 0..3 {
        w.step();
    }
    assert_eq!(stage(&w), Some(Stage::Progressing));
    w.converge = true;
    w.gate = Some(GateResult::Pending {
        reason: "no pod IPs".into(),
    });
    for _ in 0..3 {
        w.step();
    }
    assert_eq!(stage(&w), Some(Stage::Gating));
    assert_eq!(w.status.rollout.as_ref().unwrap().gate_passes, 0);
}

#[test]
fn new_image_rolls_standby_switches_and_scales_old_color_down_after_delay() {
    let mut w = World::live("");
    let mut probe = World::live("  scaleDownDelaySeconds: 600\n");
    probe.spec().image = "api:2".into();
    probe.settle();
    assert_eq!(
        probe.status.standby_color,
        Some(Color::Blue),
        "blue kept warm"
    );
    assert_eq!(probe.status.phase, Phase::ScaleDownPending);
    w.spec().image = "api:2".into();
    let d = w.step();
    let r = w.status.rollout.clone().unwrap();
    assert_eq!(
        (r.color, r.release.revision, r.trigger),
        (Color::Green, 2, Trigger::NewImage)
    );
    assert!(has_event(&d.actions, Reason::RolloutStarted));
    assert_eq!(w.status.active_color, Some(Color::Blue), "traffic stays");
    assert_eq!(
        w.cond(ConditionType::Ready),
        t("False ReleaseInProgress"),
        "CI waits"
    );
    assert_eq!(
        w.cond(ConditionType::Progressing),
        t("True StandbyRollingOut")
    );
    let all = w.settle();
    assert!(all.contains(&Action::SwitchTraffic { to: Color::Green }));
    assert!(all.contains(&Action::ResumeConnections {
        color: Color::Green
    }));
    assert_eq!(w.status.active_color, Some(Color::Green));
    assert_eq!(w.status.history[0].release.revision, 2);
    assert!(w.status.history[0].switch_seconds.unwrap() > 0.0);
    assert_eq!(w.cond(ConditionType::Ready), t("True Released"));
    // The fixture: propagationSeconds 1, scaleDownDelaySeconds 4. The old color's connections
    // are drained once the switch propagated, the color is scaled down later.
    assert!(all.contains(&Action::DrainConnections { color: Color::Blue }));
    assert_eq!(w.status.phase, Phase::ScaleDownPending);
    let mut later = Vec::new();
    for _ in 0..4 {
        later.extend(w.step().actions);
    }
    assert!(w.status.colors.blue.as_ref().unwrap().scaled_down);
    assert_eq!(w.status.phase, Phase::Stable);
    assert!(has_event(&later, Reason::ScaledDown));
    assert!(w.status.drain.is_none());
}

#[test]
fn connections_of_the_old_color_are_drained_after_the_delay() {
    let mut w = World::live("  scaleDownDelaySeconds: 600\n  propagationSeconds: 2\n");
    w.spec().image = "api:2".into();
    let mut actions = Vec::new();
    while w.status.active_color != Some(Color::Green) {
        actions.extend(w.step().actions);
    }
    assert_eq!(w.status.drain.as_ref().unwrap().color, Color::Blue);
    assert!(
        !actions.contains(&Action::DrainConnections { color: Color::Blue }),
        "not before the switch propagated"
    );
    actions.extend(w.settle());
    assert!(actions.contains(&Action::DrainConnections { color: Color::Blue }));
    assert!(w.status.drain.is_none());
    assert!(
        !w.status.colors.blue.as_ref().unwrap().scaled_down,
        "still warm for rollback"
    );
}

#[test]
fn a_scale_down_before_the_drain_is_due_needs_no_drain() {
    let mut w = World::live("  propagationSeconds: 10\n  scaleDownDelaySeconds: 2\n");
    w.spec().image = "api:2".into();
    let all = w.settle();
    assert!(w.status.colors.blue.as_ref().unwrap().scaled_down);
    assert!(
        !all.contains(&Action::DrainConnections { color: Color::Blue }),
        "SIGTERM moves them"
    );
    assert!(w.status.drain.is_none());
}

#[test]
fn drain_can_be_turned_off() {
    let mut w = World::live("  connections: {drainAfterSwitch: false}\n");
    w.spec().image = "api:2".into();
    w.settle();
    assert!(w.status.drain.is_none());
}

#[test]
fn zero_scale_down_delay_scales_down_at_switch() {
    let mut w = World::live("  scaleDownDelaySeconds: 0\n");
    w.spec().image = "api:2".into();
    w.settle();
    assert!(w.status.colors.blue.as_ref().unwrap().scaled_down);
    assert_eq!(w.status.standby_color, None);
}

#[test]
fn failing_gate_keeps_traffic_marks_degraded_and_rejects_the_release() {
    let mut w = World::live("");
    w.spec().image = "api:bad".into();
    w.gate = Some(GateResult::Fail {
        detail: "pod x: HTTP 503".into(),
    });
    let all = w.settle();
    assert!(has_event(&all, Reason::HealthCheckFailed));
    assert!(all.contains(&Action::CaptureLogs {
        color: Color::Green
    }));
    assert_eq!(w.status.active_color, Some(Color::Blue));
    assert_eq!(w.live_image(), Some("api:1"));
    assert_eq!(w.status.rejected[0].image, "api:bad");
    assert_eq!(w.status.history[0].outcome, Outcome::Failed);
    assert!(w.status.colors.green.as_ref().unwrap().scaled_down);
    assert_eq!(w.cond(ConditionType::Degraded), t("True HealthGateFailed"));
    assert_eq!(
        w.cond(ConditionType::Ready),
        t("False ReleaseFailed"),
        "CI sees the failure"
    );
    let ready =
        crate::crd::conditions::condition(&w.status.conditions, ConditionType::Ready).unwrap();
    assert!(ready.message.contains("HTTP 503"), "{}", ready.message);
    assert_eq!(w.status.phase, Phase::Degraded);
    // Latched: nothing restarts while the spec stays the same.
    for _ in 0..5 {
        assert!(w.step().actions.is_empty());
    }
    assert!(w.status.rollout.is_none());
    // A new image releases and clears Degraded.
    w.gate = Some(GateResult::Pass);
    w.spec().image = "api:3".into();
    w.settle();
    assert_eq!(w.live_image(), Some("api:3"));
    assert_eq!(w.cond(ConditionType::Degraded), t("False AsExpected"));
}

#[test]
fn retry_releases_a_rejected_spec_once() {
    let mut w = World::live("");
    w.spec().image = "api:2".into();
    w.gate = Some(GateResult::Fail {
        detail: "flaky".into(),
    });
    w.settle();
    assert_eq!(w.status.rejected.len(), 1);
    w.gate = Some(GateResult::Pass);
    w.requests.retry = Some("1".into());
    let d = w.step();
    assert!(has_event(&d.actions, Reason::RetryRequested));
    assert_eq!(w.status.rollout.as_ref().unwrap().trigger, Trigger::Retry);
    assert!(w.status.rejected.is_empty());
    w.settle();
    assert_eq!(w.live_image(), Some("api:2"));
    // The same value again is acknowledged already; a new one with nothing rejected is a no-op.
    assert!(!has_event(&w.step().actions, Reason::RetryRequested));
    w.requests.retry = Some("2".into());
    assert!(has_event(&w.step().actions, Reason::NothingToRetry));
}

#[test]
fn gate_counts_consecutive_rounds() {
    let mut w = World::live("  health: {successThreshold: 3, failureThreshold: 3}\n");
    w.spec().image = "api:2".into();
    w.step();
    w.step(); // gating
    w.step(); // pass 1
    w.gate = Some(GateResult::Fail {
        detail: "blip".into(),
    });
    w.step(); // failure 1, passes reset
    assert_eq!(w.status.rollout.as_ref().unwrap().gate_passes, 0);
    assert_eq!(w.status.rollout.as_ref().unwrap().gate_failures, 1);
    w.gate = Some(GateResult::Pass);
    w.step();
    w.step();
    assert_eq!(stage(&w), Some(Stage::Gating));
    w.step();
    assert_eq!(w.live_image(), Some("api:2"));
}

#[test]
fn progress_deadline_fails_a_stuck_rollout() {
    let mut w = World::live("  progressDeadlineSeconds: 10\n");
    w.spec().image = "api:2".into();
    w.converge = false;
    let all = w.settle();
    assert!(has_event(&all, Reason::ProgressDeadlineExceeded));
    assert_eq!(
        w.cond(ConditionType::Degraded),
        t("True ProgressDeadlineExceeded")
    );
    assert_eq!(w.status.active_color, Some(Color::Blue));
}

#[test]
fn gating_falls_back_to_progressing_when_pods_go_unready() {
    let mut w = World::live("  health: {successThreshold: 5}\n");
    w.spec().image = "api:2".into();
    w.step();
    w.step();
    assert_eq!(stage(&w), Some(Stage::Gating));
    w.converge = false;
    let d = w.step();
    assert!(has_event(&d.actions, Reason::StandbyNotReady));
    assert_eq!(stage(&w), Some(Stage::Progressing));
}

#[test]
fn manual_promotion_waits_for_annotation_and_acknowledges_it_once() {
    let mut w = World::live("  promotion: Manual\n");
    w.spec().image = "api:2".into();
    for _ in 0..6 {
        w.step();
    }
    assert_eq!(stage(&w), Some(Stage::AwaitingPromotion));
    assert_eq!(w.cond(ConditionType::StandbyReady), t("True GatePassed"));
    assert_eq!(w.status.active_color, Some(Color::Blue));
    w.requests.promote = Some("go".into());
    let d = w.step();
    assert!(
        d.actions
            .contains(&Action::SwitchTraffic { to: Color::Green })
    );
    assert_eq!(w.status.acknowledged.promote.as_deref(), Some("go"));
    w.spec().image = "api:3".into();
    for _ in 0..6 {
        w.step();
    }
    assert_eq!(
        stage(&w),
        Some(Stage::AwaitingPromotion),
        "old value does not promote again"
    );
}

#[test]
fn early_promote_request_is_kept_until_the_gate_passes_and_none_pending_is_a_noop() {
    let mut w = World::live("  promotion: Manual\n");
    w.spec().image = "api:2".into();
    w.requests.promote = Some("early".into());
    w.settle();
    assert_eq!(w.live_image(), Some("api:2"));
    w.requests.promote = Some("again".into());
    let d = w.step();
    assert!(has_event(&d.actions, Reason::NothingToPromote));
    assert_eq!(w.status.acknowledged.promote.as_deref(), Some("again"));
}

#[test]
fn manual_promotion_does_not_hold_the_first_release() {
    let mut w = World::new("  promotion: Manual\n");
    w.settle();
    assert_eq!(w.status.active_color, Some(Color::Blue));
}

#[test]
fn abort_stops_the_rollout_rejects_it_and_is_not_retriggered() {
    let mut w = World::live("  promotion: Manual\n");
    w.spec().image = "api:2".into();
    for _ in 0..6 {
        w.step();
    }
    w.requests.abort = Some("stop".into());
    let d = w.step();
    assert!(has_event(&d.actions, Reason::RolloutAborted));
    assert!(w.status.rollout.is_none());
    assert_eq!(w.status.rejected[0].image, "api:2");
    assert_eq!(w.status.history[0].outcome, Outcome::Aborted);
    assert!(w.status.colors.green.as_ref().unwrap().scaled_down);
    for _ in 0..3 {
        w.step();
    }
    assert!(w.status.rollout.is_none());
    w.requests.abort = Some("again".into());
    assert!(has_event(&w.step().actions, Reason::NothingToAbort));
}

#[test]
fn rollback_to_warm_color_is_one_switch_and_rejects_the_release_left() {
    let mut w = World::two_releases("  scaleDownDelaySeconds: 600\n");
    w.requests.rollback = Some("1764612345".into());
    let d = w.step();
    let switches: Vec<_> = d
        .actions
        .iter()
        .filter(|a| matches!(a, Action::SwitchTraffic { .. }))
        .collect();
    assert_eq!(switches, [&Action::SwitchTraffic { to: Color::Blue }]);
    assert!(has_event(&d.actions, Reason::RolledBack));
    assert_eq!(w.status.active_color, Some(Color::Blue));
    assert_eq!(w.status.active_revision, Some(1));
    assert_eq!(w.status.rejected[0].image, "api:2");
    assert_eq!(w.status.phase, Phase::RolledBack);
    assert_eq!(w.status.history[0].outcome, Outcome::RolledBack);
    assert_eq!(
        w.cond(ConditionType::Ready),
        t("False ReleaseFailed"),
        "spec.image is rejected"
    );
    assert_eq!(w.status.drain.as_ref().unwrap().color, Color::Green);
    // Re-applying the same value changes nothing; the rejected spec is not released again.
    for _ in 0..3 {
        let d = w.step();
        assert!(
            !d.actions
                .iter()
                .any(|a| matches!(a, Action::SwitchTraffic { .. }))
        );
    }
    assert!(w.status.rollout.is_none());
}

#[test]
fn rollback_to_cold_color_redeploys_the_previous_release_through_the_gate() {
    let mut w = World::two_releases("  scaleDownDelaySeconds: 1\n");
    for _ in 0..3 {
        w.step();
    }
    assert!(w.status.colors.blue.as_ref().unwrap().scaled_down);
    w.requests.rollback = Some("now".into());
    let d = w.step();
    assert!(has_event(&d.actions, Reason::RollbackStarted));
    let r = w.status.rollout.clone().unwrap();
    assert_eq!(
        (r.color, r.release.revision, r.trigger),
        (Color::Blue, 1, Trigger::Rollback)
    );
    assert_eq!(r.stage, Stage::Progressing);
    assert_eq!(
        w.status.active_color,
        Some(Color::Green),
        "traffic waits for the gate"
    );
    w.settle();
    assert_eq!(w.status.active_color, Some(Color::Blue));
    assert_eq!(w.live_image(), Some("api:1"));
    assert_eq!(w.status.history[0].outcome, Outcome::RolledBack);
}

#[test]
fn a_second_rollback_goes_further_back_never_to_the_rejected_release() {
    let mut w = World::two_releases("  scaleDownDelaySeconds: 600\n");
    w.spec().image = "api:3".into();
    w.settle();
    assert_eq!(w.status.active_revision, Some(3));
    w.requests.rollback = Some("a".into());
    w.settle();
    assert_eq!(
        w.status.active_revision,
        Some(2),
        "warm green... r2 on blue"
    );
    w.requests.rollback = Some("b".into());
    w.settle();
    assert_eq!(
        w.status.active_revision,
        Some(1),
        "not back to the rejected r3"
    );
    let rejected: Vec<_> = w.status.rejected.iter().map(|r| r.revision).collect();
    assert_eq!(rejected, [2, 3]);
    w.requests.rollback = Some("c".into());
    let d = w.step();
    assert!(
        has_event(&d.actions, Reason::RollbackUnavailable),
        "nothing good left"
    );
    assert_eq!(w.status.active_revision, Some(1));
}

#[test]
fn rollback_to_a_named_revision() {
    let mut w = World::two_releases("  scaleDownDelaySeconds: 600\n");
    w.spec().image = "api:3".into();
    w.settle();
    w.requests.rollback = Some("1".into());
    let d = w.step();
    assert!(
        has_event(&d.actions, Reason::RollbackStarted),
        "r1 is not warm"
    );
    w.settle();
    assert_eq!(w.status.active_revision, Some(1));
    assert_eq!(w.live_image(), Some("api:1"));
    w.requests.rollback = Some("42".into());
    assert!(has_event(&w.step().actions, Reason::RollbackUnavailable));
    w.requests.rollback = Some("1 ".into());
    assert!(
        has_event(&w.step().actions, Reason::RollbackUnavailable),
        "already live"
    );
}

#[test]
fn rollback_without_history_warns_and_during_rollout_drops_the_release() {
    let mut w = World::live("");
    w.requests.rollback = Some("x".into());
    assert!(has_event(&w.step().actions, Reason::RollbackUnavailable));
    w.spec().image = "api:2".into();
    w.step();
    w.requests.rollback = Some("y".into());
    let d = w.step();
    assert!(has_event(&d.actions, Reason::RolloutAborted));
    assert!(w.status.rollout.is_none());
    assert_eq!(w.status.active_color, Some(Color::Blue));
    assert_eq!(w.status.rejected[0].image, "api:2");
}

#[test]
fn new_spec_supersedes_the_in_flight_rollout_and_back_to_live_cancels() {
    let mut w = World::live("");
    w.spec().image = "api:2".into();
    w.step();
    w.spec().image = "api:3".into();
    let d = w.step();
    assert!(has_event(&d.actions, Reason::RolloutSuperseded));
    let r = w.status.rollout.clone().unwrap();
    assert_eq!((r.release.image.as_str(), r.release.revision), ("api:3", 3));
    assert_eq!(w.status.history[0].outcome, Outcome::Superseded);
    w.spec().image = "api:1".into();
    let d = w.step();
    assert!(has_event(&d.actions, Reason::RolloutCancelled));
    assert!(w.status.rollout.is_none());
    assert!(w.status.rejected.is_empty());
    assert_eq!(w.cond(ConditionType::Ready).0, "True");
}

#[test]
fn any_pod_template_change_is_a_gated_release_and_replicas_are_not() {
    let mut w = World::live("");
    w.spec().replicas = 3;
    w.step();
    assert!(w.status.rollout.is_none(), "scaling is not a release");
    w.spec().env.push(k8s_openapi::api::core::v1::EnvVar {
        name: "FEATURE".into(),
        value: Some("on".into()),
        ..Default::default()
    });
    w.step();
    let r = w.status.rollout.clone().unwrap();
    assert_eq!(
        (r.trigger, r.color, r.release.image.as_str()),
        (Trigger::TemplateChanged, Color::Green, "api:1")
    );
    w.settle();
    assert_eq!(w.status.active_color, Some(Color::Green));
}

#[test]
fn reverting_the_spec_to_a_warm_release_switches_instantly() {
    let mut w = World::two_releases("  scaleDownDelaySeconds: 600\n");
    w.spec().image = "api:1".into();
    let d = w.step();
    assert!(
        d.actions
            .contains(&Action::SwitchTraffic { to: Color::Blue })
    );
    assert_eq!(
        w.status.active_revision,
        Some(1),
        "same snapshot, same revision"
    );
    assert!(w.status.rollout.is_none());
}

#[test]
fn recreate_updates_one_deployment_in_place_and_restores_on_failure() {
    let mut w = World::live("  strategy: Recreate\n");
    w.spec().image = "api:2".into();
    w.step();
    assert_eq!(w.status.rollout.as_ref().unwrap().color, Color::Blue);
    w.settle();
    assert_eq!(w.live_image(), Some("api:2"));
    assert!(w.status.colors.green.is_none());
    w.spec().image = "api:bad".into();
    w.gate = Some(GateResult::Fail {
        detail: "503".into(),
    });
    w.settle();
    let blue = w.status.colors.blue.clone().unwrap();
    assert_eq!(
        (blue.release.image.as_str(), blue.scaled_down),
        ("api:2", false)
    );
    assert_eq!(w.status.rejected[0].image, "api:bad");
}

#[test]
fn paused_freezes_everything() {
    let mut w = World::live("");
    w.spec().paused = true;
    w.spec().image = "api:2".into();
    for _ in 0..3 {
        let d = w.step();
        assert_eq!(d.requeue, Duration::from_secs(300));
    }
    assert!(w.status.rollout.is_none());
    assert_eq!(w.status.phase, Phase::Paused);
    assert_eq!(w.cond(ConditionType::Ready), t("False Paused"));
    w.spec().paused = false;
    w.settle();
    assert_eq!(w.live_image(), Some("api:2"));
}

#[test]
fn resumes_mid_gate_from_status_alone() {
    let mut w = World::live("  health: {successThreshold: 4}\n");
    w.spec().image = "api:2".into();
    for _ in 0..4 {
        w.step();
    }
    assert_eq!(w.status.rollout.as_ref().unwrap().gate_passes, 2);
    // A new operator process: only the stored status survives (World round-trips it already).
    let stored = serde_json::to_string(&w.status).unwrap();
    w.status = serde_json::from_str(&stored).unwrap();
    w.step();
    w.step();
    assert_eq!(w.live_image(), Some("api:2"));
}

#[test]
fn history_and_rejections_are_bounded() {
    let mut w = World::live("  scaleDownDelaySeconds: 0\n");
    for i in 2..30 {
        w.spec().image = format!("api:{i}");
        w.gate = if i % 2 == 0 {
            Some(GateResult::Pass)
        } else {
            Some(GateResult::Fail { detail: "x".into() })
        };
        w.settle();
    }
    assert_eq!(w.status.history.len(), crate::crd::HISTORY_LIMIT);
    assert_eq!(w.status.rejected.len(), crate::crd::REJECTED_LIMIT);
    assert!(w.status.referenced_revisions().len() <= crate::crd::HISTORY_LIMIT + 2);
}

#[test]
fn probe_rounds_are_spaced_by_period_however_often_reconcile_runs() {
    let mut w = World::live("  health: {periodSeconds: 5, successThreshold: 3}\n");
    w.spec().image = "api:2".into();
    w.step(); // rollout started (+5s)
    w.step(); // gating (+5s)
    w.step(); // pass 1 at T
    // Reconciles triggered every 100 ms for 3 s: no round is due.
    w.now = w.now.checked_sub(SignedDuration::from_secs(5)).unwrap();
    for _ in 0..30 {
        w.now = w.now.checked_add(SignedDuration::from_millis(100)).unwrap();
        let d = step(&w.mb.spec, &w.status, &w.observed());
        w.status = d.status;
    }
    assert_eq!(w.status.rollout.as_ref().unwrap().gate_passes, 1);
}

#[test]
fn probe_spacing_survives_the_status_round_trip_below_one_second() {
    let mut w = World::live("  health: {periodSeconds: 1, successThreshold: 5}\n");
    w.spec().image = "api:2".into();
    w.step();
    w.step();
    w.step(); // pass 1
    w.now = w.now.checked_sub(SignedDuration::from_millis(100)).unwrap();
    let d = w.step(); // 0.9 s after the last round: not due
    assert_eq!(
        w.status.rollout.as_ref().unwrap().gate_passes,
        1,
        "{:?}",
        d.requeue
    );
}

#[test]
fn migration_runs_before_the_pods_and_a_failure_rejects_without_touching_traffic() {
    let mut w = World::live("  migration: {command: [mas-server, migrate]}\n");
    w.spec().image = "api:2".into();
    w.migration = Some(JobFacts::Running);
    let d = w.step();
    assert!(has_event(&d.actions, Reason::MigrationStarted));
    assert_eq!(stage(&w), Some(Stage::Migrating));
    assert_eq!(w.status.phase, Phase::Migrating);
    assert!(
        w.status.colors.green.is_none(),
        "green starts after the migration"
    );
    assert_eq!(w.cond(ConditionType::Progressing), t("True Migrating"));
    w.step();
    assert_eq!(stage(&w), Some(Stage::Migrating));
    w.migration = Some(JobFacts::Succeeded);
    let d = w.step();
    assert!(has_event(&d.actions, Reason::MigrationSucceeded));
    assert_eq!(stage(&w), Some(Stage::Progressing));
    assert_eq!(w.status.colors.green.as_ref().unwrap().release.revision, 2);
    w.settle();
    assert_eq!(w.live_image(), Some("api:2"));

    w.spec().image = "api:3".into();
    w.migration = Some(JobFacts::Failed {
        reason: "BackoffLimitExceeded: relation exists".into(),
    });
    w.step();
    let d = w.step();
    assert!(d.actions.contains(&Action::CaptureJobLogs { revision: 3 }));
    assert_eq!(w.cond(ConditionType::Degraded), t("True MigrationFailed"));
    assert_eq!(w.status.active_color, Some(Color::Green));
    assert_eq!(w.status.rejected[0].image, "api:3");
    let blue = w.status.colors.blue.clone().unwrap();
    assert_eq!(
        blue.release.revision, 1,
        "the warm standby was left as it was"
    );
}

#[test]
fn rollbacks_never_migrate() {
    let mut w = World::two_releases("  migration: {command: [m]}\n  scaleDownDelaySeconds: 1\n");
    for _ in 0..3 {
        w.step();
    }
    w.requests.rollback = Some("x".into());
    w.step();
    assert_eq!(stage(&w), Some(Stage::Progressing));
}

#[test]
fn verification_failure_switches_back_to_the_warm_color() {
    let mut w = World::live("  verification: {durationSeconds: 10, failureThreshold: 2}\n");
    w.spec().image = "api:2".into();
    for _ in 0..10 {
        w.step();
        if w.status.verifying.is_some() {
            break;
        }
    }
    assert_eq!(w.status.active_color, Some(Color::Green));
    assert_eq!(w.status.phase, Phase::Verifying);
    assert_eq!(
        w.cond(ConditionType::Ready),
        t("False Verifying"),
        "CI waits for verification"
    );
    assert!(
        w.status.scale_down.is_none(),
        "blue stays warm through verification"
    );
    w.verify = Some(GateResult::Fail {
        detail: "pod g: HTTP 503 redis down".into(),
    });
    let mut actions = w.step().actions;
    assert_eq!(
        w.status.active_color,
        Some(Color::Green),
        "one failure is not enough"
    );
    actions.extend(w.step().actions);
    assert!(actions.contains(&Action::SwitchTraffic { to: Color::Blue }));
    assert!(actions.contains(&Action::CaptureLogs {
        color: Color::Green
    }));
    assert!(has_event(&actions, Reason::VerificationFailed));
    assert_eq!(w.status.active_color, Some(Color::Blue));
    assert_eq!(w.status.active_revision, Some(1));
    assert_eq!(w.status.rejected[0].image, "api:2");
    assert_eq!(w.status.history[0].outcome, Outcome::Reverted);
    // Green keeps its pods until the ingress has followed the switch back (propagationSeconds
    // 1 in the fixture): its endpoints must not go before blue's arrive.
    assert!(!w.status.colors.green.as_ref().unwrap().scaled_down);
    assert_eq!(
        w.status.scale_down.as_ref().map(|sd| sd.color),
        Some(Color::Green)
    );
    w.wait(1);
    w.step();
    assert!(w.status.colors.green.as_ref().unwrap().scaled_down);
    assert_eq!(
        w.cond(ConditionType::Degraded),
        t("True VerificationFailed")
    );
    assert_eq!(w.cond(ConditionType::Ready), t("False ReleaseFailed"));
}

#[test]
fn verification_success_ends_the_release_and_a_waiting_release_starts_after() {
    let mut w = World::live("  verification: {durationSeconds: 3}\n  scaleDownDelaySeconds: 600\n");
    w.spec().image = "api:2".into();
    while w.status.verifying.is_none() {
        w.step();
    }
    w.spec().image = "api:3".into();
    let d = w.step();
    assert!(has_event(&d.actions, Reason::ReleaseWaiting));
    assert!(w.status.rollout.is_none(), "blue is the switch-back target");
    let all = w.settle();
    assert!(has_event(&all, Reason::VerificationPassed));
    assert!(w.status.scale_down.is_some() || w.status.rollout.is_some());
    w.settle();
    assert_eq!(w.live_image(), Some("api:3"));
    assert_eq!(w.status.active_color, Some(Color::Blue));
}

#[test]
fn abort_during_verification_reverts() {
    let mut w = World::live("  verification: {durationSeconds: 30}\n");
    w.spec().image = "api:2".into();
    while w.status.verifying.is_none() {
        w.step();
    }
    w.requests.abort = Some("no".into());
    let d = w.step();
    assert!(
        d.actions
            .contains(&Action::SwitchTraffic { to: Color::Blue })
    );
    assert_eq!(w.cond(ConditionType::Degraded), t("True RolloutAborted"));
}

fn live_with_secrets() -> World {
    let mut w = World::new("  secrets: [prod/app]\n");
    w.secrets = Ok(Some("h1".into()));
    w.settle();
    assert_eq!(
        w.status
            .active_release
            .as_ref()
            .unwrap()
            .secrets_hash
            .as_deref(),
        Some("h1")
    );
    w
}

#[test]
fn rotated_secret_rolls_out_to_standby_and_leaves_live_untouched() {
    let mut w = live_with_secrets();
    w.secrets = Ok(Some("h2".into()));
    w.step();
    let r = w.status.rollout.clone().unwrap();
    assert_eq!(
        (r.trigger, r.color),
        (Trigger::SecretsRotated, Color::Green)
    );
    assert_eq!(r.release.secrets_hash.as_deref(), Some("h2"));
    let blue = w.status.colors.blue.clone().unwrap();
    assert_eq!(
        blue.release.secrets_hash.as_deref(),
        Some("h1"),
        "live color keeps its Secret"
    );
    w.settle();
    assert_eq!(
        w.status
            .active_release
            .as_ref()
            .unwrap()
            .secrets_hash
            .as_deref(),
        Some("h2")
    );
    let kept = w.status.referenced_secrets();
    assert!(
        kept.contains("h1") && kept.contains("h2"),
        "h1 kept for a rollback: {kept:?}"
    );
}

#[test]
fn rollback_restores_the_old_secrets_too() {
    let mut w = live_with_secrets();
    w.mb.spec.scale_down_delay_seconds = 1;
    w.secrets = Ok(Some("h2".into()));
    w.settle();
    for _ in 0..3 {
        w.step();
    }
    w.requests.rollback = Some("now".into());
    w.settle();
    let live = w.status.active_release.clone().unwrap();
    assert_eq!(
        (live.revision, live.secrets_hash.as_deref()),
        (1, Some("h1"))
    );
}

#[test]
fn unreadable_secrets_degrade_block_new_releases_and_back_off() {
    let mut w = live_with_secrets();
    w.secrets = Err("AWS Secrets Manager secret \"prod/app\" was not found".into());
    w.spec().image = "api:2".into();
    let d = w.step();
    assert!(has_event(&d.actions, Reason::SecretsUnavailable));
    assert!(w.status.rollout.is_none());
    assert_eq!(
        w.cond(ConditionType::Degraded),
        t("True SecretsUnavailable")
    );
    assert_eq!(w.cond(ConditionType::Ready), t("False SecretsUnavailable"));
    assert_eq!(d.requeue, Duration::from_secs(5));
    w.wait(30);
    let d = w.step();
    assert!(
        !has_event(&d.actions, Reason::SecretsUnavailable),
        "one event per outage"
    );
    assert!(d.requeue > Duration::from_secs(5) && d.requeue <= Duration::from_secs(60));
    w.secrets = Ok(Some("h1".into()));
    w.settle();
    assert_eq!(w.live_image(), Some("api:2"));
    assert_eq!(w.cond(ConditionType::Degraded).0, "False");
}

#[test]
fn rotation_during_a_rollout_restarts_it_with_the_new_values() {
    let mut w = live_with_secrets();
    w.spec().image = "api:2".into();
    w.step();
    w.secrets = Ok(Some("h3".into()));
    let d = w.step();
    assert!(has_event(&d.actions, Reason::RolloutSuperseded));
    assert_eq!(
        w.status
            .rollout
            .as_ref()
            .unwrap()
            .release
            .secrets_hash
            .as_deref(),
        Some("h3")
    );
}

#[test]
fn removing_all_secrets_is_a_release_too() {
    let mut w = live_with_secrets();
    w.spec().secrets.clear();
    w.secrets = Ok(None);
    w.step();
    assert!(w.status.rollout.is_some());
    w.settle();
    assert_eq!(w.status.active_release.as_ref().unwrap().secrets_hash, None);
}

#[test]
fn manual_promotion_also_guards_a_rotation() {
    let mut w = World::new("  secrets: [prod/app]\n  promotion: Manual\n");
    w.secrets = Ok(Some("h1".into()));
    w.settle();
    w.secrets = Ok(Some("h2".into()));
    for _ in 0..6 {
        w.step();
    }
    assert_eq!(stage(&w), Some(Stage::AwaitingPromotion));
}

#[test]
fn a_rejected_first_release_is_a_final_failure_not_in_progress() {
    let mut w = World::new("");
    w.gate = Some(GateResult::Fail {
        detail: "pod x: HTTP 503".into(),
    });
    w.settle();
    assert_eq!(w.status.active_release, None);
    assert_eq!(w.status.rejected[0].image, "api:1");
    assert_eq!(w.cond(ConditionType::Ready), t("False ReleaseFailed"));
    let ready =
        crate::crd::conditions::condition(&w.status.conditions, ConditionType::Ready).unwrap();
    assert!(
        ready.message.contains("nothing is live") && ready.message.contains("HTTP 503"),
        "{}",
        ready.message
    );
    // Retrying restarts it: in progress again, not a latched failure.
    w.requests.retry = Some("1".into());
    w.gate = None;
    w.step();
    assert_eq!(w.cond(ConditionType::Ready), t("False NoLiveRelease"));
}

#[test]
fn unreadable_secrets_before_any_release_are_reported_as_such() {
    let mut w = World::new("");
    w.secrets = Err("AWS Secrets Manager secret \"prod/app\" was not found".into());
    w.step();
    assert_eq!(w.cond(ConditionType::Ready), t("False SecretsUnavailable"));
}

#[test]
fn lowering_the_scale_down_delay_brings_a_pending_scale_down_forward() {
    let mut w = World::live("  scaleDownDelaySeconds: 600\n");
    w.spec().image = "api:2".into();
    w.settle();
    assert_eq!(w.status.scale_down.as_ref().unwrap().color, Color::Blue);
    assert!(!w.status.colors.blue.as_ref().unwrap().scaled_down);
    w.spec().scale_down_delay_seconds = 2;
    w.wait(3);
    w.step();
    assert!(w.status.scale_down.is_none());
    assert!(w.status.colors.blue.as_ref().unwrap().scaled_down);
}

#[test]
fn a_live_color_without_ready_pods_switches_back_at_once_during_verification() {
    let mut w = World::live("  verification: {durationSeconds: 60, failureThreshold: 5}\n");
    w.spec().image = "api:2".into();
    for _ in 0..10 {
        w.step();
        if w.status.verifying.is_some() {
            break;
        }
    }
    assert_eq!(w.status.active_color, Some(Color::Green));
    w.unready = Some(Color::Green);
    let d = w.step();
    assert!(
        d.actions
            .contains(&Action::SwitchTraffic { to: Color::Blue })
    );
    assert_eq!(w.status.active_color, Some(Color::Blue));
    assert_eq!(
        w.cond(ConditionType::Degraded),
        t("True VerificationFailed")
    );
}
