//! `MasBackend` spec: what the platform team declares. CI normally edits only `spec.image`.
//!
//! Everything that ends up in a pod (image, env, secrets, pod template) is frozen into a release
//! when the release starts; the rest (replicas, gate, promotion, timings, traffic) steers how
//! releases are rolled out and takes effect at once.

use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar, ResourceRequirements};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::MasBackendStatus;

/// Container image references as the distribution reference grammar defines them:
/// `[registry[:port]/]path[:tag][@digest]`, path components lowercase.
pub const IMAGE_PATTERN: &str = r"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$";

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
    printcolumn = r#"{"name":"Revision","type":"integer","priority":1,"jsonPath":".status.activeRevision"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.traffic) || !has(self.traffic.tlsSecretName) || has(self.traffic.host)").message("spec.traffic.tlsSecretName requires spec.traffic.host"))]
#[x_kube(validation = Rule::new("self.strategy != 'Recreate' || self.promotion != 'Manual'").message("spec.promotion: Manual needs spec.strategy: BlueGreen (Recreate replaces the live pods in place)"))]
#[x_kube(validation = Rule::new("self.port != self.internalPort").message("spec.internalPort must differ from spec.port"))]
#[x_kube(validation = Rule::new("self.progressDeadlineSeconds > self.health.periodSeconds * self.health.successThreshold").message("spec.progressDeadlineSeconds must exceed spec.health.periodSeconds × spec.health.successThreshold, or the gate can never pass in time"))]
#[x_kube(validation = Rule::new("self.verification.durationSeconds == 0 || self.verification.durationSeconds >= self.health.periodSeconds * self.verification.failureThreshold").message("spec.verification.durationSeconds must be 0 (off) or at least spec.health.periodSeconds × spec.verification.failureThreshold, or verification can never fail"))]
#[x_kube(validation = Rule::new("!has(self.podTemplate) || !has(self.podTemplate.spec) || !has(self.podTemplate.spec.containers) || self.podTemplate.spec.containers.all(c, c.name != 'app' || !has(c.image))").message("spec.podTemplate.spec.containers[name=app].image must not be set: the operator runs spec.image there"))]
pub struct MasBackendSpec {
    /// Container image to release, e.g. `ghcr.io/org/mas-server:main-1a2b3c4`.
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new("self.size() > 0").message("spec.image must not be empty"))]
    #[x_kube(validation = Rule::new(format!("self.matches('{}')", IMAGE_PATTERN.replace('\\', "\\\\"))).message("spec.image must be an image reference like registry.example.com/team/app:1.2.3 (lowercase path, optional :tag and @sha256:digest)"))]
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

    /// Port of the server's internal listener (`INTERNAL_PORT`: /metrics and the connection
    /// drain the operator calls after a switch). Never exposed by a Service or the Ingress.
    #[serde(default = "default_internal_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("spec.internalPort must be between 1 and 65535"))]
    pub internal_port: i32,

    /// Server settings (see docs/configuration.md). `PORT`, `INTERNAL_PORT`, `CONTROL_TOKEN`,
    /// `POD_NAME`, `POD_NAMESPACE` and `MIGRATE_ON_START` are the operator's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    #[x_kube(validation = Rule::new("self.all(e, !(e.name in ['PORT', 'INTERNAL_PORT', 'CONTROL_TOKEN', 'POD_NAME', 'POD_NAMESPACE', 'MIGRATE_ON_START']))").message("spec.env must not set PORT, INTERNAL_PORT, CONTROL_TOKEN, POD_NAME, POD_NAMESPACE or MIGRATE_ON_START: the operator sets them (from spec.port, spec.internalPort and spec.migration)"))]
    pub env: Vec<EnvVar>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub env_from: Vec<EnvFromSource>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// ServiceAccount the pods and the migration Job run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("spec.serviceAccountName must be a DNS-1123 subdomain, e.g. mas-api"))]
    pub service_account_name: Option<String>,

    /// Existing registry Secrets (type kubernetes.io/dockerconfigjson) for pulling the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub image_pull_secrets: Vec<SecretName>,

    /// AWS Secrets Manager ids holding registry credentials, materialized as
    /// `kubernetes.io/dockerconfigjson` Secrets `<name>-pull-<n>` and refreshed in place (pull
    /// credentials are read at pull time, so a refresh needs no release). A value is either a
    /// Docker config (`{"auths": {...}}`) or `{"registry", "username", "password"}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 2048)))]
    #[x_kube(validation = Rule::new("self.all(id, id.size() > 0 && id.matches('^[A-Za-z0-9/_+=.@:-]+$'))").message("spec.imagePullSecretsFrom entries must be Secrets Manager names or ARNs (letters, digits and /_+=.@:-)"))]
    pub image_pull_secrets_from: Vec<String>,

    /// Pod metadata and a PodSpec overlay merged into both colors' pods and the migration Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateOverlay>,

    /// Health gate every standby pod must pass before traffic moves to it.
    #[serde(default)]
    pub health: HealthCheck,

    #[serde(default)]
    pub strategy: Strategy,

    #[serde(default)]
    pub promotion: Promotion,

    /// How long the previous color stays warm (full size) after a release is verified, for an
    /// instant rollback.
    #[serde(default = "default_scale_down_delay")]
    #[x_kube(validation = Rule::new("self >= 0").message("spec.scaleDownDelaySeconds must be >= 0"))]
    pub scale_down_delay_seconds: i32,

    /// A rollout that is not gated-healthy within this time fails (Degraded, release rejected).
    #[serde(default = "default_progress_deadline")]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.progressDeadlineSeconds must be >= 1"))]
    pub progress_deadline_seconds: i32,

    /// After a switch, how long the ingress controller may still send new requests to the old
    /// color (EndpointSlice and ingress propagation). The release counts as done (`Ready`) and
    /// the old color's connections are drained only after it.
    #[serde(default = "default_propagation")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 600").message("spec.propagationSeconds must be between 0 and 600"))]
    pub propagation_seconds: i32,

    /// Probing of the live color after a switch; a failure switches traffic back.
    #[serde(default)]
    pub verification: Verification,

    /// Moving long-lived connections (Socket.IO, terminal relay) off the old color.
    #[serde(default)]
    pub connections: Connections,

    /// Database migration run as a Job before each new release's pods start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<Migration>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,

    /// Freeze the rollout state machine (no new rollout, no switch, no scale-down).
    #[serde(default)]
    pub paused: bool,

    /// AWS Secrets Manager secret ids whose values each release gets as its own immutable
    /// Secret `<name>-secrets-<hash>` (envFrom).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 2048)))]
    #[x_kube(validation = Rule::new("self.all(id, id.size() > 0 && id.matches('^[A-Za-z0-9/_+=.@:-]+$'))").message("spec.secrets entries must be Secrets Manager names or ARNs (letters, digits and /_+=.@:-)"))]
    pub secrets: Vec<String>,
}

/// A Secret in the MasBackend's namespace, by name (the shape of a Pod's imagePullSecrets entry).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretName {
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("spec.imagePullSecrets[].name must be a Secret name (DNS-1123 subdomain)"))]
    pub name: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.timeoutSeconds <= self.periodSeconds").message("spec.health.timeoutSeconds must not exceed spec.health.periodSeconds (a round would still run when the next one starts)"))]
pub struct HealthCheck {
    /// HTTP path probed on every standby pod.
    #[serde(default = "default_health_path")]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("spec.health.path must start with '/'"))]
    pub path: String,

    /// Top-level JSON field of the response body that must be `true`.
    #[serde(default = "default_health_field")]
    #[schemars(length(max = 128))]
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

    /// Liveness route of the app container (cheap, no dependency checks).
    #[serde(default = "default_liveness_path")]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("spec.health.livenessPath must start with '/'"))]
    pub liveness_path: String,
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
            liveness_path: default_liveness_path(),
        }
    }
}

/// Argo Rollouts' postPromotionAnalysis, on the gate's probe: after the switch the live color
/// keeps being probed; `failureThreshold` failing rounds in a row within `durationSeconds`
/// switch traffic back to the previous color (still warm) and reject the release.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Length of the window; 0 turns verification off (the release is done at the switch).
    #[serde(default = "default_verification_seconds")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 86400").message("spec.verification.durationSeconds must be between 0 and 86400"))]
    pub duration_seconds: i32,

    #[serde(default = "default_verification_failures")]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.verification.failureThreshold must be >= 1"))]
    pub failure_threshold: i32,
}

impl Default for Verification {
    fn default() -> Self {
        Self {
            duration_seconds: default_verification_seconds(),
            failure_threshold: default_verification_failures(),
        }
    }
}

/// After a switch (and `propagationSeconds`), clients holding connections to the old color are
/// asked to reconnect (they come back through the ingress, to the new color) instead of waiting
/// for its scale-down.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Connections {
    /// Ask the old color's pods to move their connections after a switch.
    #[serde(default = "default_true")]
    pub drain_after_switch: bool,

    /// Window over which a pod spreads its reconnect requests (no thundering herd).
    #[serde(default = "default_reconnect_within")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 600").message("spec.connections.reconnectWithinSeconds must be between 1 and 600"))]
    pub reconnect_within_seconds: i32,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            drain_after_switch: true,
            reconnect_within_seconds: default_reconnect_within(),
        }
    }
}

/// A database migration Job: before a new release's pods start, the release's image (or
/// `image`) runs `command` with the release's env and secrets. The pods start only after it
/// succeeds; a failure fails the release (traffic unchanged). Migrations must keep the live
/// release working (expand/contract); a rollback never undoes one.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Migration {
    /// Command of the migration container, e.g. `["mas-server", "migrate"]`.
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.size() > 0").message("spec.migration.command must not be empty"))]
    pub command: Vec<String>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub args: Vec<String>,

    /// Image of the migration container; the release's image when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new(format!("self.matches('{}')", IMAGE_PATTERN.replace('\\', "\\\\"))).message("spec.migration.image must be an image reference like registry.example.com/team/app:1.2.3"))]
    pub image: Option<String>,

    /// The Job's activeDeadlineSeconds.
    #[serde(default = "default_migration_timeout")]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.migration.timeoutSeconds must be >= 1"))]
    pub timeout_seconds: i32,

    /// Retries of a failed migration pod before the release fails.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 10").message("spec.migration.backoffLimit must be between 0 and 10"))]
    pub backoff_limit: i32,
}

/// Pod metadata and a PodSpec merged into the generated pods. Maps merge key by key, lists
/// replace, except `containers`, `initContainers`, `volumes` and `imagePullSecrets`, which
/// merge by name; a container named `app` is merged into the server container. The operator
/// keeps its image, ports, color labels, operator env and release envFrom.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PodTemplateOverlay {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PodMetadata>,

    /// Any PodSpec field: securityContext, nodeSelector, tolerations, affinity,
    /// topologySpreadConstraints, priorityClassName, volumes, extra containers, probes of the
    /// `app` container, terminationGracePeriodSeconds, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::pod_spec_overlay")]
    pub spec: Option<k8s_openapi::api::core::v1::PodSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PodMetadata {
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Two Deployments; traffic moves by switching the Service selector after the gate.
    #[default]
    BlueGreen,
    /// One Deployment updated in place, then gated; the previous release is redeployed on failure.
    Recreate,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
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
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("spec.traffic.host must be a lowercase DNS-1123 hostname, e.g. api.example.com"))]
    pub host: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("spec.traffic.tlsSecretName must be a DNS-1123 subdomain, e.g. api-example-com-tls"))]
    pub tls_secret_name: Option<String>,

    /// IngressClass of the Ingress; it also picks the session-affinity annotations
    /// (`traefik` and `nginx` are known; others get none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("spec.traffic.ingressClassName must be an IngressClass name (DNS-1123 subdomain), e.g. nginx"))]
    pub ingress_class_name: Option<String>,

    /// Sticky sessions through the ingress (a cookie), which Engine.IO long-polling needs with
    /// more than one replica: its session lives in one process.
    #[serde(default)]
    pub session_affinity: SessionAffinity,

    /// Annotations of the Ingress (they win over the operator's affinity annotations).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = Rule::new("self.all(k, k.size() <= 316 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'))").message("spec.traffic.annotations keys must be annotation names like nginx.ingress.kubernetes.io/proxy-read-timeout"))]
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SessionAffinity {
    /// A cookie set by the ingress controller pins a client to one pod.
    #[default]
    Cookie,
    None,
}

fn default_true() -> bool {
    true
}
fn default_replicas() -> i32 {
    1
}
fn default_port() -> i32 {
    8000
}
fn default_internal_port() -> i32 {
    9090
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
fn default_liveness_path() -> String {
    "/api/health/live".to_owned()
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
fn default_verification_seconds() -> i32 {
    30
}
fn default_verification_failures() -> i32 {
    2
}
fn default_propagation() -> i32 {
    5
}
fn default_reconnect_within() -> i32 {
    10
}
fn default_migration_timeout() -> i32 {
    600
}
