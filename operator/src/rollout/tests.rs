//! Transition tests. `World` simulates the cluster converging on what the previous step asked
//! for, and round-trips the status through JSON on every step, which is exactly what an operator
//! restart does (everything must resume from the stored status).

use super::*;
use crate::crd::{MasBackend, Outcome};

fn spec(extra: &str) -> MasBackendSpec {
    let mb: MasBackend = serde_yaml::from_str(&format!(
        "apiVersion: platform.myanalyticsschool.com/v1alpha1
kind: MasBackend
metadata: {{name: api, namespace: prod}}
spec:
  image: 'api:1'
  replicas: 2
  health: {{successThreshold: 2, failureThreshold: 2, periodSeconds: 5}}
{extra}"
    ))
    .unwrap();
    mb.spec
}

struct World {
    spec: MasBackendSpec,
    status: MasBackendStatus,
    now: Timestamp,
    requests: Requests,
    /// When false, Deployments never become ready (stuck rollout).
    converge: bool,
    gate: Option<GateResult>,
    /// Hash of the currently fetched AWS secrets.
    secrets_hash: Option<String>,
}

impl World {
    fn new(spec: MasBackendSpec) -> Self {
        Self {
            spec,
            status: MasBackendStatus::default(),
            now: Timestamp::from_second(1_800_000_000).unwrap(),
            requests: Requests::default(),
            converge: true,
            gate: None,
            secrets_hash: None,
        }
    }

    fn facts(&self, c: Color) -> Option<DeploymentFacts> {
        let st = self.status.colors.get(c)?;
        let replicas = if st.scaled_down {
            0
        } else {
            self.spec.replicas
        };
        let ready = if self.converge || self.status.active_color == Some(c) {
            replicas
        } else {
            0
        };
        Some(DeploymentFacts {
            image: Some(st.image.clone()),
            replicas,
            ready_replicas: ready,
            updated_replicas: ready,
            generation: Some(1),
            observed_generation: Some(1),
            secrets_hash: st.secrets_hash.clone(),
        })
    }

    fn step(&mut self) -> Decision {
        let obs = Observed {
            now: self.now,
            generation: Some(1),
            blue: self.facts(Color::Blue),
            green: self.facts(Color::Green),
            gate: gate_target(&self.spec, &self.status, self.now).and(self.gate.clone()),
            requests: self.requests.clone(),
            secrets_hash: self.secrets_hash.clone(),
        };
        let d = step(&self.spec, &self.status, &obs);
        let json = serde_json::to_value(&d.status).unwrap();
        self.status = serde_json::from_value(json).unwrap();
        // One health period per step, so every gating step is a due probe round.
        self.now = self.now.checked_add(SignedDuration::from_secs(5)).unwrap();
        d
    }

    fn wait(&mut self, secs: i64) {
        self.now = self
            .now
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap();
    }

    /// Steps until no rollout is in flight (bounded), returning every action taken.
    fn settle(&mut self) -> Vec<Action> {
        let mut all = Vec::new();
        for _ in 0..20 {
            let d = self.step();
            all.extend(d.actions);
            if self.status.rollout.is_none() {
                return all;
            }
        }
        panic!("did not settle: {:?}", self.status.rollout);
    }

    /// Blue live with api:1.
    fn live() -> Self {
        let mut w = World::new(spec(""));
        w.gate = Some(GateResult::Pass);
        w.settle();
        assert_eq!(w.status.active_color, Some(Color::Blue));
        w
    }

    fn cond(&self, t: &str) -> (String, String) {
        let c = self
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .unwrap();
        (c.status.clone(), c.reason.clone())
    }
}

fn has_event(actions: &[Action], reason: &str) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Event { reason: r, .. } if *r == reason))
}

fn stage(w: &World) -> Option<Stage> {
    w.status.rollout.as_ref().map(|r| r.stage)
}

#[test]
fn first_release_rolls_out_blue_and_goes_live_after_gate() {
    let mut w = World::new(spec(""));
    let d = w.step();
    assert!(d.actions.contains(&Action::Deploy {
        color: Color::Blue,
        image: "api:1".into()
    }));
    assert_eq!(stage(&w), Some(Stage::Progressing));
    assert_eq!(w.status.phase, Phase::Progressing);
    assert_eq!(w.status.rollout.as_ref().unwrap().trigger, Trigger::Initial);
    assert_eq!(w.status.active_color, None);
    assert_eq!(w.cond(READY), ("False".into(), "NoLiveRelease".into()));

    let d = w.step();
    assert!(has_event(&d.actions, "GateStarted"));
    assert_eq!(stage(&w), Some(Stage::Gating));
    assert_eq!(w.status.phase, Phase::Gating);
    assert_eq!(
        d.requeue,
        Duration::from_secs(1),
        "first probe round right away"
    );

    w.gate = Some(GateResult::Pass);
    let d = w.step();
    assert_eq!(w.status.rollout.as_ref().unwrap().gate_passes, 1);
    assert_eq!(
        d.requeue,
        Duration::from_secs(5),
        "next round one period later"
    );
    let d = w.step();
    assert!(has_event(&d.actions, "HealthGatePassed"));
    assert!(
        d.actions
            .contains(&Action::SwitchTraffic { to: Color::Blue })
    );
    assert_eq!(w.status.active_color, Some(Color::Blue));
    assert_eq!(w.status.active_image.as_deref(), Some("api:1"));
    assert_eq!(w.status.phase, Phase::Stable);
    assert!(w.status.scale_down.is_none());
    assert_eq!(w.status.history[0].outcome, Outcome::Promoted);
    w.step();
    assert_eq!(w.cond(READY), ("True".into(), "ActiveHealthy".into()));
    assert_eq!(w.cond(PROGRESSING).0, "False");
    assert_eq!(w.cond(DEGRADED).0, "False");
    assert_eq!(w.status.active_replicas, 2);
}

#[test]
fn progressing_waits_for_all_replicas_ready() {
    let mut w = World::new(spec(""));
    w.converge = false;
    w.step();
    w.step();
    w.step();
    assert_eq!(stage(&w), Some(Stage::Progressing));
}

#[test]
fn pending_gate_rounds_do_not_count() {
    let mut w = World::new(spec(""));
    w.step();
    w.step();
    w.gate = Some(GateResult::Pending {
        reason: "no pod IPs".into(),
    });
    w.step();
    w.step();
    assert_eq!(stage(&w), Some(Stage::Gating));
    assert_eq!(w.status.rollout.as_ref().unwrap().gate_passes, 0);
}

#[test]
fn new_image_rolls_standby_switches_and_scales_old_color_down_after_delay() {
    let mut w = World::live();
    w.spec.image = "api:2".into();
    let d = w.step();
    assert!(d.actions.contains(&Action::Deploy {
        color: Color::Green,
        image: "api:2".into()
    }));
    assert_eq!(
        w.status.active_color,
        Some(Color::Blue),
        "traffic stays on blue while green rolls"
    );
    assert_eq!(w.status.standby_image.as_deref(), Some("api:2"));
    let actions = w.settle();
    assert!(actions.contains(&Action::SwitchTraffic { to: Color::Green }));
    assert_eq!(w.status.active_color, Some(Color::Green));
    assert_eq!(w.status.standby_color, Some(Color::Blue));
    assert_eq!(w.status.phase, Phase::ScaleDownPending);
    let sd = w.status.scale_down.clone().unwrap();
    assert_eq!(sd.color, Color::Blue);
    assert!(w.status.last_switch_time.is_some());

    let d = w.step();
    assert!(d.requeue <= Duration::from_secs(30));
    assert!(
        !w.status.colors.blue.as_ref().unwrap().scaled_down,
        "blue kept warm"
    );
    w.wait(30);
    let d = w.step();
    assert!(
        d.actions
            .contains(&Action::ScaleDown { color: Color::Blue })
    );
    assert!(w.status.colors.blue.as_ref().unwrap().scaled_down);
    assert_eq!(w.status.phase, Phase::Stable);
    assert_eq!(w.status.standby_color, None);
}

#[test]
fn zero_scale_down_delay_scales_down_at_switch() {
    let mut w = World::new(spec("  scaleDownDelaySeconds: 0\n"));
    w.gate = Some(GateResult::Pass);
    w.settle();
    w.spec.image = "api:2".into();
    let actions = w.settle();
    assert!(actions.contains(&Action::ScaleDown { color: Color::Blue }));
    assert!(w.status.scale_down.is_none());
}

#[test]
fn failing_gate_keeps_traffic_marks_degraded_and_rejects_image() {
    let mut w = World::live();
    w.spec.image = "api:2".into();
    w.gate = Some(GateResult::Fail {
        detail: "pod api-green-x 127.66.0.9: HTTP 503".into(),
    });
    w.step();
    w.step();
    let d = w.step();
    assert!(has_event(&d.actions, "HealthCheckFailed"));
    assert_eq!(w.status.rollout.as_ref().unwrap().gate_failures, 1);
    let d = w.step();
    assert!(has_event(&d.actions, "HealthGateFailed"));
    assert!(d.actions.contains(&Action::CaptureLogs {
        color: Color::Green
    }));
    assert!(d.actions.contains(&Action::ScaleDown {
        color: Color::Green
    }));
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::SwitchTraffic { .. }))
    );
    assert_eq!(w.status.active_color, Some(Color::Blue));
    assert_eq!(w.status.rejected_images, ["api:2"]);
    assert_eq!(w.status.phase, Phase::Degraded);
    assert_eq!(w.cond(DEGRADED), ("True".into(), "HealthGateFailed".into()));
    assert_eq!(w.status.history[0].outcome, Outcome::Failed);

    // Latched: the same spec.image is not retried.
    let d = w.step();
    assert!(!d.actions.iter().any(|a| matches!(a, Action::Deploy { .. })));
    assert_eq!(w.status.phase, Phase::Degraded);

    // A new image clears the latch's effect and Degraded.
    w.gate = Some(GateResult::Pass);
    w.spec.image = "api:3".into();
    w.step();
    assert_eq!(w.cond(DEGRADED).0, "False");
    w.settle();
    assert_eq!(w.status.active_image.as_deref(), Some("api:3"));
    assert_eq!(w.status.active_color, Some(Color::Green));
}

#[test]
fn gate_counts_consecutive_rounds() {
    let mut w = World::live();
    w.spec.image = "api:2".into();
    w.step();
    w.step();
    w.gate = Some(GateResult::Pass);
    w.step();
    w.gate = Some(GateResult::Fail {
        detail: "503".into(),
    });
    w.step();
    let r = w.status.rollout.clone().unwrap();
    assert_eq!((r.gate_passes, r.gate_failures), (0, 1));
    w.gate = Some(GateResult::Pass);
    w.step();
    let r = w.status.rollout.clone().unwrap();
    assert_eq!((r.gate_passes, r.gate_failures), (1, 0));
    w.step();
    assert_eq!(w.status.active_image.as_deref(), Some("api:2"));
}

#[test]
fn progress_deadline_fails_a_stuck_rollout() {
    let mut w = World::live();
    w.converge = false;
    w.spec.image = "api:2".into();
    w.spec.progress_deadline_seconds = 60;
    let d = w.step();
    assert!(d.requeue <= Duration::from_secs(60));
    w.wait(61);
    let d = w.step();
    assert!(has_event(&d.actions, "ProgressDeadlineExceeded"));
    assert_eq!(w.status.rejected_images, ["api:2"]);
    assert_eq!(w.cond(DEGRADED).1, "ProgressDeadlineExceeded");
    assert_eq!(w.status.active_image.as_deref(), Some("api:1"));
}

#[test]
fn gating_falls_back_to_progressing_when_pods_go_unready() {
    let mut w = World::live();
    w.spec.image = "api:2".into();
    w.gate = None;
    w.step();
    w.step();
    assert_eq!(stage(&w), Some(Stage::Gating));
    w.converge = false;
    let d = w.step();
    assert!(has_event(&d.actions, "StandbyNotReady"));
    assert_eq!(stage(&w), Some(Stage::Progressing));
}

#[test]
fn manual_promotion_waits_for_annotation_and_acknowledges_it_once() {
    let mut w = World::live();
    w.spec.promotion = Promotion::Manual;
    w.spec.image = "api:2".into();
    for _ in 0..6 {
        w.step();
    }
    assert_eq!(stage(&w), Some(Stage::AwaitingPromotion));
    assert_eq!(w.status.phase, Phase::AwaitingPromotion);
    assert_eq!(w.cond(STANDBY_READY), ("True".into(), "GatePassed".into()));
    assert_eq!(w.status.active_color, Some(Color::Blue));
    w.wait(10_000); // no deadline while waiting for a human
    w.step();
    assert_eq!(stage(&w), Some(Stage::AwaitingPromotion));

    w.requests.promote = Some("1".into());
    let d = w.step();
    assert!(
        d.actions
            .contains(&Action::SwitchTraffic { to: Color::Green })
    );
    assert_eq!(w.status.acknowledged.promote.as_deref(), Some("1"));

    // Re-applying the same manifest does not promote the next release.
    w.spec.image = "api:3".into();
    for _ in 0..6 {
        w.step();
    }
    assert_eq!(stage(&w), Some(Stage::AwaitingPromotion));
    assert_eq!(w.status.active_image.as_deref(), Some("api:2"));
}

#[test]
fn early_promote_request_is_kept_until_the_gate_passes() {
    let mut w = World::live();
    w.spec.promotion = Promotion::Manual;
    w.spec.image = "api:2".into();
    w.step();
    w.requests.promote = Some("early".into());
    w.step();
    assert_eq!(
        w.status.acknowledged.promote, None,
        "not consumed while gating"
    );
    w.settle();
    assert_eq!(w.status.active_image.as_deref(), Some("api:2"));
    assert_eq!(w.status.acknowledged.promote.as_deref(), Some("early"));
}

#[test]
fn promote_with_nothing_pending_is_acknowledged_as_noop() {
    let mut w = World::live();
    w.requests.promote = Some("x".into());
    let d = w.step();
    assert!(has_event(&d.actions, "NothingToPromote"));
    assert_eq!(w.status.acknowledged.promote.as_deref(), Some("x"));
}

#[test]
fn abort_stops_rollout_rejects_image_and_is_not_retriggered() {
    let mut w = World::live();
    w.spec.image = "api:2".into();
    w.step();
    w.requests.abort = Some("a1".into());
    let d = w.step();
    assert!(has_event(&d.actions, "RolloutAborted"));
    assert!(d.actions.contains(&Action::ScaleDown {
        color: Color::Green
    }));
    assert!(w.status.rollout.is_none());
    assert_eq!(w.status.rejected_images, ["api:2"]);
    assert_eq!(w.status.history[0].outcome, Outcome::Aborted);
    assert_eq!(w.status.acknowledged.abort.as_deref(), Some("a1"));
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    w.requests.abort = Some("a2".into());
    let d = w.step();
    assert!(has_event(&d.actions, "NothingToAbort"));
}

#[test]
fn rollback_to_warm_color_is_one_switch_and_latches_bad_image() {
    let mut w = World::live();
    w.spec.image = "api:2".into();
    w.settle();
    assert_eq!(w.status.active_color, Some(Color::Green));
    w.requests.rollback = Some("r1".into());
    let d = w.step();
    let switches: Vec<_> = d
        .actions
        .iter()
        .filter(|a| matches!(a, Action::SwitchTraffic { .. }))
        .collect();
    assert_eq!(switches, [&Action::SwitchTraffic { to: Color::Blue }]);
    assert!(!d.actions.iter().any(|a| matches!(a, Action::Deploy { .. })));
    assert_eq!(w.status.active_color, Some(Color::Blue));
    assert_eq!(w.status.active_image.as_deref(), Some("api:1"));
    assert_eq!(w.status.rejected_images, ["api:2"]);
    assert_eq!(w.status.phase, Phase::RolledBack);
    assert_eq!(w.status.history[0].outcome, Outcome::RolledBack);
    assert_eq!(w.status.scale_down.as_ref().unwrap().color, Color::Green);
    assert_eq!(w.status.acknowledged.rollback.as_deref(), Some("r1"));
    // spec.image still says api:2, but it is rejected: nothing redeploys it.
    let d = w.step();
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::Deploy { .. } | Action::SwitchTraffic { .. }))
    );
}

#[test]
fn rollback_to_cold_color_redeploys_previous_image_through_gate() {
    let mut w = World::live();
    w.spec.promotion = Promotion::Manual;
    w.spec.image = "api:2".into();
    w.requests.promote = Some("p".into());
    w.settle();
    w.wait(31);
    w.step();
    assert!(w.status.colors.blue.as_ref().unwrap().scaled_down);
    w.requests.rollback = Some("r".into());
    let d = w.step();
    assert!(has_event(&d.actions, "RollbackStarted"));
    assert!(d.actions.contains(&Action::Deploy {
        color: Color::Blue,
        image: "api:1".into()
    }));
    assert_eq!(
        w.status.active_color,
        Some(Color::Green),
        "traffic stays until the gate passes"
    );
    let actions = w.settle();
    assert!(
        actions.contains(&Action::SwitchTraffic { to: Color::Blue }),
        "no manual wait for rollbacks"
    );
    assert_eq!(w.status.active_image.as_deref(), Some("api:1"));
    assert_eq!(w.status.history[0].outcome, Outcome::RolledBack);
    assert_eq!(w.status.phase, Phase::RolledBack);
}

#[test]
fn rollback_without_history_warns() {
    let mut w = World::live();
    w.requests.rollback = Some("r".into());
    let d = w.step();
    assert!(has_event(&d.actions, "RollbackUnavailable"));
    assert_eq!(w.status.active_image.as_deref(), Some("api:1"));
    assert!(w.status.rejected_images.is_empty());
}

#[test]
fn rollback_during_rollout_drops_the_release() {
    let mut w = World::live();
    w.spec.image = "api:2".into();
    w.step();
    w.requests.rollback = Some("r".into());
    w.step();
    assert!(w.status.rollout.is_none());
    assert_eq!(w.status.active_image.as_deref(), Some("api:1"));
    assert_eq!(w.status.rejected_images, ["api:2"]);
}

#[test]
fn new_spec_image_supersedes_in_flight_rollout() {
    let mut w = World::live();
    w.converge = false;
    w.spec.image = "api:2".into();
    w.step();
    w.spec.image = "api:3".into();
    let d = w.step();
    assert!(has_event(&d.actions, "RolloutSuperseded"));
    assert!(d.actions.contains(&Action::Deploy {
        color: Color::Green,
        image: "api:3".into()
    }));
    assert!(w.status.rejected_images.is_empty());
}

#[test]
fn reverting_spec_to_live_image_cancels_without_rejecting() {
    let mut w = World::live();
    w.converge = false;
    w.spec.image = "api:2".into();
    w.step();
    w.spec.image = "api:1".into();
    let d = w.step();
    assert!(has_event(&d.actions, "RolloutCancelled"));
    assert!(w.status.rollout.is_none());
    assert!(w.status.rejected_images.is_empty());
    assert_eq!(w.cond(DEGRADED).0, "False");
}

#[test]
fn recreate_updates_one_deployment_in_place_and_restores_on_failure() {
    let mut w = World::new(spec("  strategy: Recreate\n"));
    w.gate = Some(GateResult::Pass);
    w.settle();
    assert_eq!(w.status.active_color, Some(Color::Blue));
    w.spec.image = "api:2".into();
    let d = w.step();
    assert!(d.actions.contains(&Action::Deploy {
        color: Color::Blue,
        image: "api:2".into()
    }));
    let actions = w.settle();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::SwitchTraffic { .. }))
    );
    assert_eq!(w.status.active_image.as_deref(), Some("api:2"));
    assert!(w.status.colors.green.is_none());
    assert!(w.status.scale_down.is_none());

    w.spec.image = "api:3".into();
    w.gate = Some(GateResult::Fail {
        detail: "500".into(),
    });
    let actions = w.settle();
    assert!(actions.contains(&Action::Deploy {
        color: Color::Blue,
        image: "api:2".into()
    }));
    assert_eq!(w.status.colors.blue.as_ref().unwrap().image, "api:2");
    assert_eq!(w.status.rejected_images, ["api:3"]);
    assert_eq!(w.status.phase, Phase::Degraded);
}

#[test]
fn paused_freezes_everything() {
    let mut w = World::live();
    w.spec.paused = true;
    w.spec.image = "api:2".into();
    w.requests.rollback = Some("r".into());
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(w.status.phase, Phase::Paused);
    assert_eq!(w.cond(PROGRESSING).1, "Paused");
    assert_eq!(
        w.status.acknowledged.rollback, None,
        "requests wait for unpause"
    );
}

#[test]
fn resumes_mid_gate_from_status_alone() {
    let mut w = World::live();
    w.spec.image = "api:2".into();
    w.step();
    w.step();
    w.gate = Some(GateResult::Pass);
    w.step();
    // "Restart": a fresh World holding only the stored status.
    let stored = serde_json::to_string(&w.status).unwrap();
    let mut w2 = World::new(w.spec.clone());
    w2.now = w.now;
    w2.status = serde_json::from_str(&stored).unwrap();
    w2.gate = Some(GateResult::Pass);
    let d = w2.step();
    assert!(
        d.actions
            .contains(&Action::SwitchTraffic { to: Color::Green })
    );
}

#[test]
fn history_and_rejections_are_bounded() {
    let mut w = World::live();
    for i in 2..20 {
        w.spec.image = format!("api:{i}");
        w.gate = Some(GateResult::Pass);
        w.settle();
    }
    assert_eq!(w.status.history.len(), HISTORY_LIMIT);
    assert_eq!(w.status.history[0].image, "api:19");
    for i in 20..35 {
        w.spec.image = format!("api:{i}");
        w.gate = Some(GateResult::Fail { detail: "x".into() });
        w.settle();
    }
    assert_eq!(w.status.rejected_images.len(), REJECTED_LIMIT);
    assert_eq!(w.status.rejected_images[0], "api:34");
}

#[test]
fn set_condition_keeps_transition_time_when_status_is_unchanged() {
    let t0 = Timestamp::from_second(100).unwrap();
    let t1 = Timestamp::from_second(200).unwrap();
    let mut cs = Vec::new();
    set_condition(&mut cs, READY, true, "A", "", Some(1), t0);
    set_condition(&mut cs, READY, true, "B", "m", Some(2), t1);
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].last_transition_time, Time(t0));
    assert_eq!(
        (cs[0].reason.as_str(), cs[0].observed_generation),
        ("B", Some(2))
    );
    set_condition(&mut cs, READY, false, "C", "", Some(2), t1);
    assert_eq!(cs[0].last_transition_time, Time(t1));
}

#[test]
fn probe_rounds_are_spaced_by_period_however_often_reconcile_runs() {
    let mut w = World::live();
    w.spec.image = "api:2".into();
    w.step();
    w.step();
    assert!(
        gate_target(&w.spec, &w.status, w.now).is_some(),
        "first round is due at once"
    );
    w.gate = Some(GateResult::Fail {
        detail: "503".into(),
    });
    w.step();
    let probed = w.status.rollout.clone().unwrap().last_probe.unwrap().0;
    assert!(gate_target(&w.spec, &w.status, probed).is_none());
    let almost = probed.checked_add(SignedDuration::from_secs(4)).unwrap();
    assert!(gate_target(&w.spec, &w.status, almost).is_none());
    let due = probed.checked_add(SignedDuration::from_secs(5)).unwrap();
    assert_eq!(
        gate_target(&w.spec, &w.status, due),
        Some((Color::Green, "api:2".to_owned()))
    );
}

#[test]
fn manual_promotion_does_not_hold_the_first_release() {
    let mut w = World::new(spec("  promotion: Manual\n"));
    w.gate = Some(GateResult::Pass);
    let actions = w.settle();
    assert!(actions.contains(&Action::SwitchTraffic { to: Color::Blue }));
    assert_eq!(w.status.active_image.as_deref(), Some("api:1"));
}

/// Blue live with api:1 and secrets "h1".
fn live_with_secrets() -> World {
    let mut w = World::new(spec(""));
    w.secrets_hash = Some("h1".into());
    w.gate = Some(GateResult::Pass);
    w.settle();
    assert_eq!(w.status.active_secrets_hash.as_deref(), Some("h1"));
    assert_eq!(
        w.status
            .colors
            .blue
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
    let live_before = w.status.colors.blue.clone();
    w.secrets_hash = Some("h2".into());
    let d = w.step();
    assert!(d.actions.contains(&Action::Deploy {
        color: Color::Green,
        image: "api:1".into()
    }));
    let r = w.status.rollout.clone().unwrap();
    assert_eq!(
        (r.trigger, r.color, r.secrets_hash.as_deref()),
        (Trigger::SecretsRotated, Color::Green, Some("h2"))
    );
    assert_eq!(
        w.status.colors.blue, live_before,
        "live color's template must not change"
    );
    assert_eq!(w.status.active_secrets_hash.as_deref(), Some("h1"));
    assert!(!d.actions.iter().any(|a| matches!(
        a,
        Action::Deploy {
            color: Color::Blue,
            ..
        }
    )));

    let actions = w.settle();
    assert!(actions.contains(&Action::SwitchTraffic { to: Color::Green }));
    assert_eq!(w.status.active_color, Some(Color::Green));
    assert_eq!(w.status.active_secrets_hash.as_deref(), Some("h2"));
    assert_eq!(
        w.status
            .colors
            .green
            .as_ref()
            .unwrap()
            .secrets_hash
            .as_deref(),
        Some("h2")
    );
    // Nothing more to do once the new values are live.
    assert!(
        w.step()
            .actions
            .iter()
            .all(|a| !matches!(a, Action::Deploy { .. }))
    );
}

#[test]
fn unchanged_secret_starts_nothing() {
    let mut w = live_with_secrets();
    for _ in 0..3 {
        assert!(w.step().actions.is_empty());
    }
    assert_eq!(w.status.phase, Phase::Stable);
}

#[test]
fn failed_rotation_rejects_the_secrets_not_the_live_image() {
    let mut w = live_with_secrets();
    w.secrets_hash = Some("h2".into());
    w.gate = Some(GateResult::Fail {
        detail: "pod g: 500".into(),
    });
    let actions = w.settle();
    assert!(has_event(&actions, "HealthGateFailed"));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::SwitchTraffic { .. }))
    );
    assert_eq!(w.status.active_color, Some(Color::Blue));
    assert_eq!(w.status.active_secrets_hash.as_deref(), Some("h1"));
    assert_eq!(w.status.rejected_secrets_hash.as_deref(), Some("h2"));
    assert!(
        w.status.rejected_images.is_empty(),
        "the live image stays releasable"
    );
    assert_eq!(w.cond(DEGRADED).0, "True");
    // Not retried while the content is the same...
    assert!(
        w.step()
            .actions
            .iter()
            .all(|a| !matches!(a, Action::Deploy { .. }))
    );
    // ...but a further rotation is released again.
    w.secrets_hash = Some("h3".into());
    w.gate = Some(GateResult::Pass);
    let actions = w.settle();
    assert!(actions.contains(&Action::SwitchTraffic { to: Color::Green }));
    assert_eq!(w.status.active_secrets_hash.as_deref(), Some("h3"));
    assert_eq!(w.cond(DEGRADED).0, "False");
}

#[test]
fn rotation_during_a_rollout_restarts_it_with_the_new_values() {
    let mut w = live_with_secrets();
    w.spec.image = "api:2".into();
    w.step();
    assert_eq!(
        w.status.rollout.as_ref().unwrap().secrets_hash.as_deref(),
        Some("h1")
    );
    w.secrets_hash = Some("h2".into());
    let d = w.step();
    assert!(has_event(&d.actions, "RolloutSuperseded"));
    let r = w.status.rollout.clone().unwrap();
    assert_eq!(
        (r.image.as_str(), r.secrets_hash.as_deref(), r.trigger),
        ("api:2", Some("h2"), Trigger::NewImage)
    );
    assert_eq!(
        w.status
            .colors
            .blue
            .as_ref()
            .unwrap()
            .secrets_hash
            .as_deref(),
        Some("h1")
    );
    w.settle();
    assert_eq!(w.status.active_image.as_deref(), Some("api:2"));
    assert_eq!(w.status.active_secrets_hash.as_deref(), Some("h2"));
}

#[test]
fn gate_waits_for_pods_with_the_new_secrets() {
    let mut w = live_with_secrets();
    w.secrets_hash = Some("h2".into());
    w.step();
    // Green's Deployment still shows the old template hash: not ready for the new release.
    w.status.colors.green.as_mut().unwrap().secrets_hash = Some("h1".into());
    w.step();
    assert_eq!(stage(&w), Some(Stage::Progressing));
}

#[test]
fn removing_all_secrets_is_a_rollout_too() {
    let mut w = live_with_secrets();
    w.secrets_hash = None;
    let actions = w.settle();
    assert!(
        actions.contains(&Action::SwitchTraffic { to: Color::Green }),
        "{actions:#?} {:#?}",
        w.status
    );
    assert!(actions.contains(&Action::SwitchTraffic { to: Color::Green }));
    assert_eq!(w.status.active_secrets_hash, None);
    assert_eq!(w.status.colors.green.as_ref().unwrap().secrets_hash, None);
}

#[test]
fn manual_promotion_also_guards_a_rotation() {
    let mut w = World::new(spec("  promotion: Manual\n"));
    w.secrets_hash = Some("h1".into());
    w.gate = Some(GateResult::Pass);
    w.settle();
    w.secrets_hash = Some("h2".into());
    for _ in 0..6 {
        w.step();
    }
    assert_eq!(stage(&w), Some(Stage::AwaitingPromotion));
    assert_eq!(w.status.active_secrets_hash.as_deref(), Some("h1"));
    w.requests.promote = Some("1".into());
    let d = w.step();
    assert!(
        d.actions
            .contains(&Action::SwitchTraffic { to: Color::Green })
    );
    assert_eq!(w.status.active_secrets_hash.as_deref(), Some("h2"));
}

#[test]
fn recreate_rotation_is_gated_in_place_and_failure_restores_the_live_values() {
    let mut w = World::new(spec("  strategy: Recreate\n"));
    w.secrets_hash = Some("h1".into());
    w.gate = Some(GateResult::Pass);
    w.settle();
    w.secrets_hash = Some("h2".into());
    w.gate = Some(GateResult::Fail {
        detail: "500".into(),
    });
    let actions = w.settle();
    assert!(has_event(&actions, "HealthGateFailed"));
    let blue = w.status.colors.blue.clone().unwrap();
    assert_eq!(
        (
            blue.image.as_str(),
            blue.secrets_hash.as_deref(),
            blue.scaled_down
        ),
        ("api:1", Some("h1"), false)
    );
    assert_eq!(w.status.rejected_secrets_hash.as_deref(), Some("h2"));
}

#[test]
fn probe_spacing_survives_the_status_round_trip_below_one_second() {
    let mut w = World::live();
    w.spec.health.period_seconds = 1;
    w.spec.image = "api:2".into();
    // A probe late in a second must not make the next round due at the next whole second.
    w.now = w.now.checked_add(SignedDuration::from_millis(900)).unwrap();
    w.step();
    w.step();
    w.gate = Some(GateResult::Fail {
        detail: "503".into(),
    });
    w.step();
    let probed = w.status.rollout.clone().unwrap().last_probe.unwrap().0;
    let round_tripped: MasBackendStatus =
        serde_json::from_value(serde_json::to_value(&w.status).unwrap()).unwrap();
    let soon = probed
        .checked_add(SignedDuration::from_millis(200))
        .unwrap();
    assert!(gate_target(&w.spec, &round_tripped, soon).is_none());
    let due = probed.checked_add(SignedDuration::from_secs(1)).unwrap();
    assert!(gate_target(&w.spec, &round_tripped, due).is_some());
}
