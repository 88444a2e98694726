//! `MasBackend` spec: what the platform team declares. CI normally edits only `spec.image`.

use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar, ResourceRequirements};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::status::MasBackendStatus;

/// A backend service released with a health-gated blue/green (or recreate) rollout.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "platform.myanalyticsschool.com",
    version = "v1alpha1",
    kind = "MasBackend",
    plural = "masbackends",
    shortname = "mb",
    category = "all",
    namespaced,
    status = "MasBackendStatus",
    derive = "PartialEq",
    doc = "A backend service released with a health-gated blue/green rollout",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.activeReplicas",
        label_selector_path = ".status.activeSelector"
    ),
    printcolumn = r#"{"name":"Active","type":"string","jsonPath":".status.activeColor"}"#,
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".status.activeImage"}"#,
    printcolumn = r#"{"name":"Standby","type":"string","jsonPath":".status.standbyImage"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.traffic) || !has(self.traffic.tlsSecretName) || has(self.traffic.host)").message("spec.traffic.tlsSecretName requires spec.traffic.host"))]
pub struct MasBackendSpec {
    /// Container image to release, e.g. `registry.example.com/api:1.42.0`.
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new("self.size() > 0").message("spec.image must not be empty"))]
    #[x_kube(validation = Rule::new("!self.contains(' ')").message("spec.image must not contain spaces"))]
    pub image: String,

    /// Desired pods of the live color (the standby color gets the same count while it rolls out).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    #[x_kube(validation = Rule::new("self >= 0").message("spec.replicas must be >= 0"))]
    #[x_kube(validation = Rule::new("self <= 1000").message("spec.replicas must be <= 1000"))]
    pub replicas: i32,

    /// Container port serving HTTP (and the health endpoint).
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("spec.port must be between 1 and 65535"))]
    pub port: i32,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Health gate every standby pod must pass before traffic moves to it.
    #[serde(default)]
    pub health: HealthCheck,

    #[serde(default)]
    pub strategy: Strategy,

    #[serde(default)]
    pub promotion: Promotion,

    /// How long the previous color stays warm (full size) after a switch, for instant rollback.
    #[serde(default = "default_scale_down_delay")]
    #[x_kube(validation = Rule::new("self >= 0").message("spec.scaleDownDelaySeconds must be >= 0"))]
    pub scale_down_delay_seconds: i32,

    /// A rollout that is not gated-healthy within this time fails (Degraded, image rejected).
    #[serde(default = "default_progress_deadline")]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.progressDeadlineSeconds must be >= 1"))]
    pub progress_deadline_seconds: i32,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,

    /// Freeze the rollout state machine (no new rollout, no switch, no scale-down).
    #[serde(default)]
    pub paused: bool,

    /// AWS Secrets Manager secret ids to materialize as a Secret for the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// HTTP path probed on every standby pod.
    #[serde(default = "default_health_path")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("spec.health.path must start with '/'"))]
    pub path: String,

    /// Top-level JSON field of the response body that must be `true`.
    #[serde(default = "default_health_field")]
    #[x_kube(validation = Rule::new("self.size() > 0").message("spec.health.field must not be empty"))]
    pub field: String,

    /// Consecutive passing probe rounds (all pods pass) needed to open the gate.
    #[serde(default = "default_success_threshold")]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.health.successThreshold must be >= 1"))]
    pub success_threshold: i32,

    /// Consecutive failing probe rounds that fail the rollout.
    #[serde(default = "default_failure_threshold")]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.health.failureThreshold must be >= 1"))]
    pub failure_threshold: i32,

    #[serde(default = "default_period")]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.health.periodSeconds must be >= 1"))]
    pub period_seconds: i32,

    #[serde(default = "default_timeout")]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.health.timeoutSeconds must be >= 1"))]
    pub timeout_seconds: i32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            path: default_health_path(),
            field: default_health_field(),
            success_threshold: default_success_threshold(),
            failure_threshold: default_failure_threshold(),
            period_seconds: default_period(),
            timeout_seconds: default_timeout(),
        }
    }
}

#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum Strategy {
    /// Two Deployments; traffic moves by switching the Service selector after the gate.
    #[default]
    BlueGreen,
    /// One Deployment updated in place, then gated; the previous image is redeployed on failure.
    Recreate,
}

#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum Promotion {
    /// Switch traffic as soon as the gate passes.
    #[default]
    Auto,
    /// Wait for the `platform.myanalyticsschool.com/promote` annotation after the gate passes.
    Manual,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    /// Public host routed to the live color through an Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.size() <= 253 && self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("spec.traffic.host must be a lowercase DNS-1123 hostname, e.g. api.example.com"))]
    pub host: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_name: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,

    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

fn default_replicas() -> i32 {
    1
}
fn default_port() -> i32 {
    8000
}
fn default_scale_down_delay() -> i32 {
    30
}
fn default_progress_deadline() -> i32 {
    600
}
fn default_health_path() -> String {
    "/api/health".to_owned()
}
fn default_health_field() -> String {
    "success".to_owned()
}
fn default_success_threshold() -> i32 {
    3
}
fn default_failure_threshold() -> i32 {
    3
}
fn default_period() -> i32 {
    5
}
fn default_timeout() -> i32 {
    2
}
