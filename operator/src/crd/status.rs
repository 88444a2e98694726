//! `MasBackend` status. Everything the rollout state machine needs to resume after an
//! operator restart lives here; nothing is kept only in memory.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Maximum entries kept in `status.history`.
pub const HISTORY_LIMIT: usize = 10;
/// Maximum entries kept in `status.rejectedImages`.
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
    Progressing,
    Gating,
    AwaitingPromotion,
    ScaleDownPending,
    Stable,
    Degraded,
    RolledBack,
    Paused,
}

/// Step of an in-flight rollout.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Stage {
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
    Rollback,
    /// Same image, new AWS Secrets Manager values: released through the gate like an image.
    SecretsRotated,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub stage: Stage,
    pub trigger: Trigger,
    /// Color being rolled out (the standby color for blue/green).
    pub color: Color,
    pub image: String,
    /// Content hash of the AWS secrets this rollout runs with (`None`: no `spec.secrets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_hash: Option<String>,
    pub started_at: Time,
    #[serde(default)]
    pub gate_passes: i32,
    #[serde(default)]
    pub gate_failures: i32,
    /// When the last counted probe round ran; rounds are spaced by `health.periodSeconds`.
    /// Microsecond precision: a whole-second `Time` would let two rounds run almost back to back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe: Option<MicroTime>,
}

/// What a color's Deployment should run. `replicas` follow `spec.replicas` unless scaled down.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColorState {
    pub image: String,
    #[serde(default)]
    pub scaled_down: bool,
    /// Content hash of the AWS secrets in this color's pod template; `None`: no secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_hash: Option<String>,
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

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Outcome {
    /// Went live after passing the gate.
    Promoted,
    /// Went live again because of a rollback request.
    RolledBack,
    /// Never went live: the gate or the progress deadline failed.
    Failed,
    /// Never went live: aborted by request.
    Aborted,
}

impl Outcome {
    pub fn went_live(self) -> bool {
        matches!(self, Outcome::Promoted | Outcome::RolledBack)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub image: String,
    pub color: Color,
    pub outcome: Outcome,
    pub at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
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
    /// Content hash of the AWS secrets the live color runs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_secrets_hash: Option<String>,
    /// Secrets content hash whose rotation rollout failed ("" for "no secrets"); not rolled out
    /// again until the content changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_secrets_hash: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    #[serde(default)]
    pub colors: Colors,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScaleDown>,
    /// Newest first, at most 10.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Release>,
    /// Images that failed or were rolled back; not released again until `spec.image` changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected_images: Vec<String>,
    #[serde(default)]
    pub acknowledged: Acknowledged,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
