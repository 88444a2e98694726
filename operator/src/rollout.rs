//! The rollout state machine. Pure: (spec, previous status, observed facts) → next status and
//! the actions the I/O layer must perform. Every bit of progress is recorded in the status, so an
//! operator restart resumes exactly where the previous process stopped.
//!
//! Blue/green: the live color keeps serving while the other color rolls out the new image, every
//! standby pod passes the health gate `successThreshold` rounds in a row, and only then the stable
//! Service selector flips (one write). The previous color stays warm for `scaleDownDelaySeconds`
//! so a rollback is another selector flip. A failed rollout latches its image as rejected until
//! `spec.image` changes.
//!
//! Recreate: one Deployment (blue) updated in place and gated; on failure the previous image is
//! redeployed.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::crd::{
    Color, ColorState, HISTORY_LIMIT, MasBackendSpec, MasBackendStatus, Outcome, Phase, Promotion,
    REJECTED_LIMIT, Release, Rollout, ScaleDown, Stage, Strategy, Trigger,
};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const STANDBY_READY: &str = "StandbyReady";
pub const DEGRADED: &str = "Degraded";

/// What the cluster says about one color's Deployment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentFacts {
    pub image: Option<String>,
    pub replicas: i32,
    pub ready_replicas: i32,
    pub updated_replicas: i32,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    /// `SECRET_HASH_ANNOTATION` of the pod template.
    pub secrets_hash: Option<String>,
}

/// Result of one probe round over every pod of the gated color.
#[derive(Clone, Debug, PartialEq)]
pub enum GateResult {
    /// Every expected pod answered 2xx with the JSON field `true`.
    Pass,
    /// At least one pod failed; `detail` names the pod, status and a body snippet.
    Fail { detail: String },
    /// Not enough probe-able pods yet (e.g. no pod IPs); not counted either way.
    Pending { reason: String },
}

/// Annotation values currently on the object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requests {
    pub rollback: Option<String>,
    pub promote: Option<String>,
    pub abort: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub now: Timestamp,
    pub generation: Option<i64>,
    pub blue: Option<DeploymentFacts>,
    pub green: Option<DeploymentFacts>,
    /// Probe result for `status.rollout.color`; only gathered while the stage is Gating.
    pub gate: Option<GateResult>,
    pub requests: Requests,
    /// Content hash of the freshly fetched `spec.secrets` values; `None` when there are none.
    pub secrets_hash: Option<String>,
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
    /// Color's Deployment now runs `image` at full size.
    Deploy { color: Color, image: String },
    /// Stable Service selector now points at `to`.
    SwitchTraffic { to: Color },
    /// Color's Deployment goes to zero replicas.
    ScaleDown { color: Color },
    /// Capture recent logs of the color's pods into an Event (failure diagnostics).
    CaptureLogs { color: Color },
    Event {
        type_: EventType,
        reason: &'static str,
        note: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: MasBackendStatus,
    pub actions: Vec<Action>,
    pub requeue: Duration,
}

/// Color and image the I/O layer must probe before the next `step`: only while gating, and
/// at most once per `health.periodSeconds` however often reconciles are triggered.
pub fn gate_target(
    spec: &MasBackendSpec,
    status: &MasBackendStatus,
    now: Timestamp,
) -> Option<(Color, String)> {
    status
        .rollout
        .as_ref()
        .filter(|r| r.stage == Stage::Gating)
        .filter(|r| {
            r.last_probe
                .as_ref()
                .is_none_or(|t| now >= plus_secs(t.0, spec.health.period_seconds))
        })
        .map(|r| (r.color, r.image.clone()))
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
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(0)).max(Duration::from_secs(1))
}

struct Machine<'a> {
    spec: &'a MasBackendSpec,
    obs: &'a Observed,
    s: MasBackendStatus,
    actions: Vec<Action>,
}

impl Machine<'_> {
    fn event(&mut self, type_: EventType, reason: &'static str, note: impl Into<String>) {
        self.actions.push(Action::Event {
            type_,
            reason,
            note: note.into(),
        });
    }

    fn now(&self) -> Time {
        Time(self.obs.now)
    }

    fn rejected(&self, image: &str) -> bool {
        self.s.rejected_images.iter().any(|i| i == image)
    }

    /// The secrets content a rotation rollout failed with ("" stands for "no secrets").
    fn secrets_rejected(&self, hash: Option<&String>) -> bool {
        self.s.rejected_secrets_hash.as_deref() == Some(hash.map_or("", String::as_str))
    }

    fn reject(&mut self, image: &str) {
        if !self.rejected(image) {
            self.s.rejected_images.insert(0, image.to_owned());
            self.s.rejected_images.truncate(REJECTED_LIMIT);
        }
    }

    fn record(&mut self, image: &str, color: Color, outcome: Outcome, message: Option<String>) {
        self.s.history.insert(
            0,
            Release {
                image: image.to_owned(),
                color,
                outcome,
                at: self.now(),
                message,
            },
        );
        self.s.history.truncate(HISTORY_LIMIT);
    }

    /// Ready at full size on `image` and `secrets_hash`, with the Deployment controller caught up.
    fn color_ready(&self, color: Color, image: &str, secrets_hash: Option<&str>) -> bool {
        let want = self.spec.replicas;
        self.obs.facts(color).is_some_and(|f| {
            f.image.as_deref() == Some(image)
                && f.secrets_hash.as_deref() == secrets_hash
                && f.observed_generation >= f.generation
                && f.replicas == want
                && f.updated_replicas >= want
                && f.ready_replicas >= want
        })
    }

    fn set_degraded(&mut self, reason: &str, message: String) {
        let gen_ = self.obs.generation;
        set_condition(
            &mut self.s.conditions,
            DEGRADED,
            true,
            reason,
            &message,
            gen_,
            self.obs.now,
        );
    }

    fn clear_degraded(&mut self) {
        let gen_ = self.obs.generation;
        set_condition(
            &mut self.s.conditions,
            DEGRADED,
            false,
            "AsExpected",
            "",
            gen_,
            self.obs.now,
        );
    }

    fn rollout_color(&self) -> Color {
        match (self.spec.strategy, self.s.active_color) {
            (Strategy::Recreate, _) | (_, None) => Color::Blue,
            (Strategy::BlueGreen, Some(active)) => active.other(),
        }
    }

    fn start_rollout(&mut self, color: Color, image: String, trigger: Trigger) {
        if self
            .s
            .scale_down
            .as_ref()
            .is_some_and(|sd| sd.color == color)
        {
            self.s.scale_down = None;
        }
        // Every rollout (image change, rotation, rollback) runs with the current secrets.
        let secrets_hash = self.obs.secrets_hash.clone();
        self.s.colors.set(
            color,
            Some(ColorState {
                image: image.clone(),
                scaled_down: false,
                secrets_hash: secrets_hash.clone(),
            }),
        );
        if trigger != Trigger::Rollback {
            self.clear_degraded();
        }
        self.actions.push(Action::Deploy {
            color,
            image: image.clone(),
        });
        self.event(
            EventType::Normal,
            "RolloutStarted",
            format!("rolling out {image} on {color} ({trigger:?})"),
        );
        self.s.rollout = Some(Rollout {
            stage: Stage::Progressing,
            trigger,
            color,
            image,
            secrets_hash,
            started_at: self.now(),
            gate_passes: 0,
            gate_failures: 0,
            last_probe: None,
        });
    }

    /// Ends the in-flight rollout without going live. Blue/green scales the target down; recreate
    /// redeploys the last live image.
    fn end_rollout(
        &mut self,
        outcome: Outcome,
        reason: &'static str,
        detail: String,
        reject: bool,
    ) {
        let Some(r) = self.s.rollout.take() else {
            return;
        };
        // A failed rotation rejects the secrets content, not the (live) image.
        if reject && r.trigger == Trigger::SecretsRotated {
            self.s.rejected_secrets_hash = Some(r.secrets_hash.clone().unwrap_or_default());
        } else if reject {
            self.reject(&r.image);
        }
        self.record(&r.image, r.color, outcome, Some(detail.clone()));
        if outcome == Outcome::Failed {
            self.actions.push(Action::CaptureLogs { color: r.color });
        }
        let live_image = self.s.active_image.clone();
        match (self.spec.strategy, live_image) {
            (Strategy::Recreate, Some(live)) if Some(r.color) == self.s.active_color => {
                let secrets_hash = self.s.active_secrets_hash.clone();
                self.s.colors.set(
                    r.color,
                    Some(ColorState {
                        image: live.clone(),
                        scaled_down: false,
                        secrets_hash,
                    }),
                );
                self.actions.push(Action::Deploy {
                    color: r.color,
                    image: live,
                });
            }
            _ => {
                let secrets_hash = r.secrets_hash.clone();
                self.s.colors.set(
                    r.color,
                    Some(ColorState {
                        image: r.image.clone(),
                        scaled_down: true,
                        secrets_hash,
                    }),
                );
                self.actions.push(Action::ScaleDown { color: r.color });
            }
        }
        let type_ = if reject {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.event(
            type_,
            reason,
            format!("{} on {}: {detail}", r.image, r.color),
        );
        if reject && r.trigger == Trigger::SecretsRotated {
            self.set_degraded(
                reason,
                format!("rotated secrets on {} rejected: {detail}", r.image),
            );
        } else if reject {
            self.set_degraded(reason, format!("{} rejected: {detail}", r.image));
        }
    }

    /// The gated color goes live.
    fn promote(&mut self) {
        let Some(r) = self.s.rollout.take() else {
            return;
        };
        let previous = self.s.active_color;
        self.s.active_color = Some(r.color);
        self.s.active_image = Some(r.image.clone());
        self.s.active_secrets_hash = r.secrets_hash.clone();
        self.s.last_switch_time = Some(self.now());
        let outcome = if r.trigger == Trigger::Rollback {
            Outcome::RolledBack
        } else {
            Outcome::Promoted
        };
        self.record(&r.image, r.color, outcome, None);
        if previous != Some(r.color) {
            self.actions.push(Action::SwitchTraffic { to: r.color });
        }
        if let Some(old) = previous.filter(|p| *p != r.color) {
            self.schedule_scale_down(old);
        }
        if r.trigger != Trigger::Rollback {
            self.clear_degraded();
        }
        self.event(
            EventType::Normal,
            "TrafficSwitched",
            format!("{} live on {}", r.image, r.color),
        );
    }

    fn schedule_scale_down(&mut self, color: Color) {
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

    fn scale_down_now(&mut self, color: Color) {
        self.s.scale_down = None;
        if let Some(state) = self.s.colors.get(color).cloned() {
            self.s.colors.set(
                color,
                Some(ColorState {
                    scaled_down: true,
                    ..state
                }),
            );
            self.actions.push(Action::ScaleDown { color });
            self.event(
                EventType::Normal,
                "ScaledDown",
                format!("{color} scaled to zero"),
            );
        }
    }

    /// Image that was live before the current one.
    fn previous_live_image(&self) -> Option<String> {
        let active = self.s.active_image.as_deref()?;
        self.s
            .history
            .iter()
            .filter(|r| r.outcome.went_live())
            .map(|r| r.image.as_str())
            .find(|img| *img != active)
            .map(str::to_owned)
    }

    fn handle_abort(&mut self, value: String) {
        self.s.acknowledged.abort = Some(value);
        if self.s.rollout.is_some() {
            self.end_rollout(
                Outcome::Aborted,
                "RolloutAborted",
                "aborted by request".into(),
                true,
            );
        } else {
            self.event(
                EventType::Normal,
                "NothingToAbort",
                "abort requested but no rollout is in progress",
            );
        }
    }

    fn handle_rollback(&mut self, value: String) {
        self.s.acknowledged.rollback = Some(value);
        if let Some(r) = &self.s.rollout {
            if r.trigger == Trigger::Rollback {
                self.event(
                    EventType::Normal,
                    "RollbackInProgress",
                    "a rollback is already rolling out",
                );
            } else {
                // Traffic never left the live color: rolling back means dropping the release.
                self.end_rollout(
                    Outcome::Aborted,
                    "RolloutAborted",
                    "rolled back before going live".into(),
                    true,
                );
            }
            return;
        }
        let (Some(active), Some(active_image)) = (self.s.active_color, self.s.active_image.clone())
        else {
            self.event(
                EventType::Warning,
                "RollbackUnavailable",
                "nothing is live yet",
            );
            return;
        };
        let Some(previous) = self.previous_live_image() else {
            self.event(
                EventType::Warning,
                "RollbackUnavailable",
                "no previous release in history",
            );
            return;
        };
        self.reject(&active_image);
        let reason = format!("rolled back from {active_image} to {previous}");
        self.set_degraded("RolledBack", format!("{active_image} rejected: {reason}"));
        let standby = active.other();
        let standby_state = self.s.colors.get(standby).cloned();
        let warm = self.spec.strategy == Strategy::BlueGreen
            && standby_state.as_ref().is_some_and(|c| {
                c.image == previous
                    && !c.scaled_down
                    && self.color_ready(standby, &previous, c.secrets_hash.as_deref())
            });
        if warm {
            self.s.active_color = Some(standby);
            self.s.active_image = Some(previous.clone());
            self.s.active_secrets_hash = standby_state.and_then(|c| c.secrets_hash);
            self.s.last_switch_time = Some(self.now());
            self.record(
                &previous,
                standby,
                Outcome::RolledBack,
                Some(reason.clone()),
            );
            self.actions.push(Action::SwitchTraffic { to: standby });
            self.schedule_scale_down(active);
            self.event(
                EventType::Normal,
                "RolledBack",
                format!("{reason} (warm {standby}, instant switch)"),
            );
        } else {
            let color = self.rollout_color();
            self.event(
                EventType::Normal,
                "RollbackStarted",
                format!("{reason}: previous color is cold, redeploying through the gate"),
            );
            self.start_rollout(color, previous, Trigger::Rollback);
        }
    }

    fn handle_requests(&mut self) {
        let req = &self.obs.requests;
        if let Some(v) = fresh(&req.abort, &self.s.acknowledged.abort).cloned() {
            self.handle_abort(v);
        }
        if let Some(v) = fresh(&req.rollback, &self.s.acknowledged.rollback).cloned() {
            self.handle_rollback(v);
        }
        if let Some(v) = fresh(&req.promote, &self.s.acknowledged.promote).cloned() {
            match self.s.rollout.as_ref().map(|r| r.stage) {
                Some(Stage::AwaitingPromotion) => {
                    self.s.acknowledged.promote = Some(v);
                    self.event(
                        EventType::Normal,
                        "PromotionRequested",
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
                        "NothingToPromote",
                        "promote requested but nothing awaits promotion",
                    );
                }
            }
        }
    }

    fn advance_rollout(&mut self) {
        let Some(r) = self.s.rollout.clone() else {
            return;
        };
        let spec_image = &self.spec.image;
        // A rollback's target differs from spec.image by design; spec.image is then rejected.
        if *spec_image != r.image && !self.rejected(spec_image) {
            if Some(spec_image) == self.s.active_image.as_ref() {
                self.end_rollout(
                    Outcome::Aborted,
                    "RolloutCancelled",
                    format!("spec.image is back to live {spec_image}"),
                    false,
                );
            } else {
                self.event(
                    EventType::Normal,
                    "RolloutSuperseded",
                    format!("{} superseded by {spec_image}", r.image),
                );
                self.s.rollout = None;
                self.start_rollout(r.color, spec_image.clone(), r.trigger_for_supersede());
            }
            return;
        }
        // Secrets rotated again mid-rollout: restart the same release with the newest values.
        let want_hash = self.obs.secrets_hash.as_ref();
        if r.secrets_hash.as_ref() != want_hash && !self.secrets_rejected(want_hash) {
            self.event(
                EventType::Normal,
                "RolloutSuperseded",
                format!("{} on {}: secrets changed", r.image, r.color),
            );
            self.s.rollout = None;
            self.start_rollout(r.color, r.image.clone(), r.trigger);
            return;
        }
        if r.stage != Stage::AwaitingPromotion {
            let deadline = plus_secs(r.started_at.0, self.spec.progress_deadline_seconds);
            if self.obs.now >= deadline {
                let detail = format!(
                    "not healthy within progressDeadlineSeconds={} (stage {:?})",
                    self.spec.progress_deadline_seconds, r.stage
                );
                self.end_rollout(Outcome::Failed, "ProgressDeadlineExceeded", detail, true);
                return;
            }
        }
        let ready = self.color_ready(r.color, &r.image, r.secrets_hash.as_deref());
        match r.stage {
            Stage::Progressing if ready => {
                self.event(
                    EventType::Normal,
                    "GateStarted",
                    format!("{} ready on {}; probing health", r.image, r.color),
                );
                self.set_rollout(Stage::Gating, 0, 0);
            }
            Stage::Progressing => {}
            Stage::Gating | Stage::AwaitingPromotion if !ready => {
                self.event(
                    EventType::Warning,
                    "StandbyNotReady",
                    format!("{} pods no longer all ready", r.color),
                );
                self.set_rollout(Stage::Progressing, 0, 0);
            }
            Stage::Gating => self.gate(&r),
            Stage::AwaitingPromotion => {}
        }
    }

    fn set_rollout(&mut self, stage: Stage, passes: i32, failures: i32) {
        if let Some(r) = self.s.rollout.as_mut() {
            r.stage = stage;
            r.gate_passes = passes;
            r.gate_failures = failures;
        }
    }

    fn mark_probed(&mut self) {
        let now = self.now();
        if let Some(r) = self.s.rollout.as_mut() {
            r.last_probe = Some(MicroTime(now.0));
        }
    }

    fn gate(&mut self, r: &Rollout) {
        let health = &self.spec.health;
        if matches!(
            self.obs.gate,
            Some(GateResult::Pass | GateResult::Fail { .. })
        ) {
            self.mark_probed();
        }
        match &self.obs.gate {
            Some(GateResult::Pass) => {
                let passes = r.gate_passes + 1;
                if passes < health.success_threshold {
                    self.set_rollout(Stage::Gating, passes, 0);
                    return;
                }
                self.event(
                    EventType::Normal,
                    "HealthGatePassed",
                    format!(
                        "{} on {}: {passes} consecutive passing rounds",
                        r.image, r.color
                    ),
                );
                // Manual promotion guards replacing a live release: the first release (nothing
                // serving yet) and explicit rollbacks go live as soon as they pass the gate.
                let manual = self.spec.promotion == Promotion::Manual
                    && self.spec.strategy == Strategy::BlueGreen
                    && matches!(r.trigger, Trigger::NewImage | Trigger::SecretsRotated);
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
                    "HealthCheckFailed",
                    format!("round {failures}/{}: {detail}", health.failure_threshold),
                );
                if failures >= health.failure_threshold {
                    self.end_rollout(Outcome::Failed, "HealthGateFailed", detail.clone(), true);
                } else {
                    self.set_rollout(Stage::Gating, 0, failures);
                }
            }
            Some(GateResult::Pending { .. }) | None => {}
        }
    }

    fn maybe_start(&mut self) {
        if self.s.rollout.is_some() {
            return;
        }
        let image = self.spec.image.clone();
        if self.rejected(&image) {
            return;
        }
        let trigger = if self.s.active_color.is_none() {
            Trigger::Initial
        } else if Some(&image) != self.s.active_image.as_ref() {
            Trigger::NewImage
        } else if self.obs.secrets_hash != self.s.active_secrets_hash
            && !self.secrets_rejected(self.obs.secrets_hash.as_ref())
        {
            // Same image, new secret values: the standby gets them, the live color is untouched.
            Trigger::SecretsRotated
        } else {
            return;
        };
        let color = self.rollout_color();
        self.start_rollout(color, image, trigger);
    }

    fn scale_down_timer(&mut self) -> Option<Duration> {
        let sd = self.s.scale_down.clone()?;
        if Some(sd.color) == self.s.active_color
            || self.s.rollout.as_ref().is_some_and(|r| r.color == sd.color)
        {
            self.s.scale_down = None;
            return None;
        }
        if self.obs.now >= sd.at.0 {
            self.scale_down_now(sd.color);
            None
        } else {
            Some(until(self.obs.now, sd.at.0))
        }
    }

    fn derive(&mut self, paused: bool) {
        let now = self.obs.now;
        let gen_ = self.obs.generation;
        let s = &mut self.s;
        s.observed_generation = gen_;
        let active_facts = s.active_color.and_then(|c| self.obs.facts(c));
        s.active_replicas = active_facts.map_or(0, |f| f.ready_replicas);
        (s.standby_color, s.standby_image) = match (self.spec.strategy, s.active_color) {
            (Strategy::BlueGreen, Some(active)) => match s.colors.get(active.other()) {
                Some(c) if !c.scaled_down => (Some(active.other()), Some(c.image.clone())),
                _ => (None, None),
            },
            _ => (None, None),
        };

        let ready = s.active_color.is_some()
            && active_facts.is_some_and(|f| {
                f.ready_replicas >= self.spec.replicas && f.image == s.active_image
            });
        let (reason, msg) = match (s.active_image.as_ref(), ready) {
            (None, _) => (
                "NoLiveRelease",
                "nothing has passed the health gate yet".to_owned(),
            ),
            (Some(img), true) => ("ActiveHealthy", format!("{img} live")),
            (Some(img), false) => (
                "ActiveNotReady",
                format!("{img} live but not all replicas ready"),
            ),
        };
        set_condition(&mut s.conditions, READY, ready, reason, &msg, gen_, now);

        let (progressing, reason, msg) = match (&s.rollout, paused) {
            (Some(r), true) => (
                false,
                "Paused",
                format!("{} on {} paused at {:?}", r.image, r.color, r.stage),
            ),
            (Some(r), false) => (
                true,
                stage_reason(r.stage),
                format!("{} on {}", r.image, r.color),
            ),
            (None, true) => (false, "Paused", "paused".to_owned()),
            (None, false) => (false, "Idle", "no rollout in progress".to_owned()),
        };
        set_condition(
            &mut s.conditions,
            PROGRESSING,
            progressing,
            reason,
            &msg,
            gen_,
            now,
        );

        let (standby_ready, reason) = match &s.rollout {
            Some(r) if r.stage == Stage::AwaitingPromotion => (true, "GatePassed"),
            Some(_) => (false, "Gating"),
            None => match s.standby_color {
                Some(c)
                    if self.obs.facts(c).is_some_and(|f| {
                        f.ready_replicas >= self.spec.replicas && f.image == s.standby_image
                    }) =>
                {
                    (true, "StandbyWarm")
                }
                Some(_) => (false, "StandbyNotReady"),
                None => (false, "NoStandby"),
            },
        };
        set_condition(
            &mut s.conditions,
            STANDBY_READY,
            standby_ready,
            reason,
            "",
            gen_,
            now,
        );
        if !s.conditions.iter().any(|c| c.type_ == DEGRADED) {
            set_condition(
                &mut s.conditions,
                DEGRADED,
                false,
                "AsExpected",
                "",
                gen_,
                now,
            );
        }
        let degraded = s
            .conditions
            .iter()
            .find(|c| c.type_ == DEGRADED && c.status == "True");

        s.phase = if paused {
            Phase::Paused
        } else if let Some(r) = &s.rollout {
            match r.stage {
                Stage::Progressing => Phase::Progressing,
                Stage::Gating => Phase::Gating,
                Stage::AwaitingPromotion => Phase::AwaitingPromotion,
            }
        } else if let Some(d) = degraded {
            if d.reason == "RolledBack" {
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
        s.message = Some(match (&s.rollout, degraded) {
            (Some(r), _) => format!("{:?}: {} on {}", r.stage, r.image, r.color),
            (None, Some(d)) => d.message.clone(),
            (None, None) => msg_live(s),
        });
    }
}

impl Rollout {
    fn trigger_for_supersede(&self) -> Trigger {
        match self.trigger {
            Trigger::Initial => Trigger::Initial,
            Trigger::NewImage | Trigger::Rollback | Trigger::SecretsRotated => Trigger::NewImage,
        }
    }
}

fn msg_live(s: &MasBackendStatus) -> String {
    match (&s.active_image, s.active_color) {
        (Some(img), Some(c)) => format!("{img} live on {c}"),
        _ => "waiting for first release".to_owned(),
    }
}

fn stage_reason(stage: Stage) -> &'static str {
    match stage {
        Stage::Progressing => "StandbyRollingOut",
        Stage::Gating => "HealthGating",
        Stage::AwaitingPromotion => "AwaitingPromotion",
    }
}

/// Upserts a condition, keeping `lastTransitionTime` when the status did not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" }.to_owned();
    let last_transition_time = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    let new = Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation,
        last_transition_time,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => *c = new,
        None => conditions.push(new),
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
    if spec.paused {
        m.derive(true);
        return Decision {
            status: m.s,
            actions: m.actions,
            requeue: Duration::from_secs(300),
        };
    }
    // Start first, so a request sent together with a new image applies to that rollout.
    m.maybe_start();
    m.handle_requests();
    m.advance_rollout();
    let scale_down_in = m.scale_down_timer();
    m.derive(false);

    let period = Duration::from_secs(
        u64::try_from(spec.health.period_seconds)
            .unwrap_or(5)
            .max(1),
    );
    let mut requeue = match m.s.rollout.as_ref().map(|r| r.stage) {
        Some(Stage::Gating) => match m.s.rollout.as_ref().and_then(|r| r.last_probe.as_ref()) {
            Some(t) => until(obs.now, plus_secs(t.0, spec.health.period_seconds)),
            None => Duration::from_secs(1),
        },
        Some(Stage::Progressing) => period.min(Duration::from_secs(5)),
        Some(Stage::AwaitingPromotion) => Duration::from_secs(60),
        None => Duration::from_secs(300),
    };
    if let Some(r) =
        m.s.rollout
            .as_ref()
            .filter(|r| r.stage != Stage::AwaitingPromotion)
    {
        requeue = requeue.min(until(
            obs.now,
            plus_secs(r.started_at.0, spec.progress_deadline_seconds),
        ));
    }
    if let Some(d) = scale_down_in {
        requeue = requeue.min(d);
    }
    Decision {
        status: m.s,
        actions: m.actions,
        requeue,
    }
}

#[cfg(test)]
mod tests;
