//! `MasBackend` status. Everything the rollout state machine needs to resume after an
//! operator restart lives here; nothing is kept only in memory.
//!
//! A *release* is an immutable snapshot (revision number, image, secrets, pod template), kept as
//! a ControllerRevision `<name>-r<revision>`; colors, the rollout in flight and the history name
//! releases by revision, so a rollback restores exactly what ran before.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Maximum entries kept in `status.history` (and releases kept for rollbacks).
pub const HISTORY_LIMIT: usize = 10;
/// Maximum entries kept in `status.rejected`.
pub const REJECTED_LIMIT: usize = 10;

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }

    pub const ALL: [Color; 2] = [Color::Blue, Color::Green];
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Coarse, human-facing summary; conditions are the machine-facing truth.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    #[default]
    Pending,
    Migrating,
    Progressing,
    Gating,
    AwaitingPromotion,
    Verifying,
    ScaleDownPending,
    Stable,
    Degraded,
    RolledBack,
    Paused,
}

/// Step of an in-flight rollout.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Stage {
    /// The release's migration Job is running; its pods start when it succeeds.
    Migrating,
    /// Target Deployment is rolling out; waiting for all replicas ready.
    Progressing,
    /// All replicas ready; probing every target pod until `successThreshold` rounds pass.
    Gating,
    /// Gate passed, waiting for the promote annotation (manual promotion).
    AwaitingPromotion,
}

/// Why a rollout was started.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Trigger {
    Initial,
    NewImage,
    /// Same image, new AWS Secrets Manager values.
    SecretsRotated,
    /// Same image and secrets, a changed pod template (env, resources, podTemplate, ...).
    TemplateChanged,
    Rollback,
    /// A `retry` request released a rejected spec again.
    Retry,
}

/// Identity of a release: what its pods run. Two releases with the same identity are the same
/// pods; `templateHash` covers the image, the secrets hash and the whole pod template.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRef {
    pub revision: i64,
    pub image: String,
    /// Content hash of the release's AWS secrets (`None`: no `spec.secrets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_hash: Option<String>,
    pub template_hash: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub stage: Stage,
    pub trigger: Trigger,
    /// Color being rolled out (the standby color for blue/green).
    pub color: Color,
    pub release: ReleaseRef,
    pub started_at: Time,
    /// When the pods started rolling out (after the migration); the progress deadline runs
    /// from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<Time>,
    /// When the gate started (all replicas ready), for the gate-duration figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gating_since: Option<Time>,
    #[serde(default)]
    pub gate_passes: i32,
    #[serde(default)]
    pub gate_failures: i32,
    /// When the last counted probe round ran; rounds are spaced by `health.periodSeconds`.
    /// Microsecond precision: a whole-second `Time` would let two rounds run almost back to back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe: Option<MicroTime>,
}

/// What a color's Deployment runs. `replicas` follow `spec.replicas` unless scaled down.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColorState {
    pub release: ReleaseRef,
    #[serde(default)]
    pub scaled_down: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Colors {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue: Option<ColorState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green: Option<ColorState>,
}

impl Colors {
    pub fn get(&self, c: Color) -> Option<&ColorState> {
        match c {
            Color::Blue => self.blue.as_ref(),
            Color::Green => self.green.as_ref(),
        }
    }

    pub fn set(&mut self, c: Color, state: Option<ColorState>) {
        match c {
            Color::Blue => self.blue = state,
            Color::Green => self.green = state,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDown {
    pub color: Color,
    pub at: Time,
}

/// The post-switch window: the live color is probed until `until`; the previous color stays
/// warm so a failure can switch straight back.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verifying {
    pub color: Color,
    pub revision: i64,
    /// The color traffic goes back to on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Color>,
    pub until: Time,
    #[serde(default)]
    pub failures: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe: Option<MicroTime>,
}

/// Connections on `color` are asked to move once `at` has passed (after a switch away from it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingDrain {
    pub color: Color,
    pub at: Time,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Outcome {
    /// Went live after passing the gate (and verification).
    Promoted,
    /// Went live again because of a rollback request.
    RolledBack,
    /// Never went live: the migration, the gate or the progress deadline failed.
    Failed,
    /// Never went live: aborted by request.
    Aborted,
    /// Never went live: the spec changed again before it finished.
    Superseded,
    /// Went live, failed verification, traffic switched back.
    Reverted,
}

impl Outcome {
    pub fn went_live(self) -> bool {
        matches!(self, Outcome::Promoted | Outcome::RolledBack)
    }
}

/// One release attempt, newest first in `status.history`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    #[serde(flatten)]
    pub release: ReleaseRef,
    pub color: Color,
    pub trigger: Trigger,
    pub outcome: Outcome,
    pub started_at: Time,
    /// When the outcome was decided.
    pub at: Time,
    /// Seconds from all replicas ready to the gate passing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_seconds: Option<f64>,
    /// Seconds from the start (spec change or request) to the traffic switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A release that failed or was rolled back: not released again from the same spec until the
/// spec changes or a `retry` request names it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    pub image: String,
    pub template_hash: String,
    pub revision: i64,
}

/// Last annotation value acted on per request kind, so re-applying a manifest does not re-trigger.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Acknowledged {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MasBackendStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_color: Option<Color>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_revision: Option<i64>,
    /// The release traffic goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_release: Option<ReleaseRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby_color: Option<Color>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby_image: Option<String>,
    /// Ready pods of the live color (scale subresource status path).
    #[serde(default)]
    pub active_replicas: i32,
    /// Label selector of the live color's pods (scale subresource selector path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_switch_time: Option<Time>,
    /// Highest revision number handed out.
    #[serde(default)]
    pub last_revision: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifying: Option<Verifying>,
    #[serde(default)]
    pub colors: Colors,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScaleDown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<PendingDrain>,
    /// Release attempts, newest first, at most 10; the releases named here are kept for rollbacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Release>,
    /// Releases that failed or were rolled back, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejected>,
    #[serde(default)]
    pub acknowledged: Acknowledged,
    /// The pull Secret `<name>-pull` exists (so emptying `spec.imagePullSecretsFrom` deletes it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pull_secret: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl MasBackendStatus {
    pub fn is_rejected(&self, template_hash: &str) -> bool {
        self.rejected
            .iter()
            .any(|r| r.template_hash == template_hash)
    }

    /// Revisions something still refers to: colors, the rollout in flight, the history.
    pub fn referenced_revisions(&self) -> std::collections::BTreeSet<i64> {
        let mut out: std::collections::BTreeSet<i64> =
            self.history.iter().map(|r| r.release.revision).collect();
        out.extend(
            Color::ALL
                .iter()
                .filter_map(|c| self.colors.get(*c).map(|s| s.release.revision)),
        );
        out.extend(self.rollout.as_ref().map(|r| r.release.revision));
        out.extend(self.active_release.as_ref().map(|r| r.revision));
        out
    }

    /// Secrets hashes something still refers to (same owners as `referenced_revisions`).
    pub fn referenced_secrets(&self) -> std::collections::BTreeSet<String> {
        let mut out: std::collections::BTreeSet<String> = self
            .history
            .iter()
            .filter_map(|r| r.release.secrets_hash.clone())
            .collect();
        out.extend(Color::ALL.iter().filter_map(|c| {
            self.colors
                .get(*c)
                .and_then(|s| s.release.secrets_hash.clone())
        }));
        out.extend(
            self.rollout
                .as_ref()
                .and_then(|r| r.release.secrets_hash.clone()),
        );
        out.extend(
            self.active_release
                .as_ref()
                .and_then(|r| r.secrets_hash.clone()),
        );
        out
    }
}
