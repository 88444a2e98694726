//! The pod template of a release, rendered from the spec, and its content hash.
//!
//! The template carries everything a pod runs (image, env, the release's Secret, probes,
//! security context, the `spec.podTemplate` overlay), but no color labels: a release may run on
//! either color (a cold rollback redeploys it on the standby one). Its hash is the release's
//! identity, so any change to what the pods run is a new, gated release, and the live color is
//! never rebuilt from a newer spec.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction,
    Lifecycle, LifecycleHandler, LocalObjectReference, ObjectFieldSelector, PodSecurityContext,
    PodTemplateSpec, Probe, SeccompProfile, SecretEnvSource, SecretKeySelector, SecurityContext,
    SleepAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Owner;
use super::labels::{SECRET_HASH_ANNOTATION, instance_labels};
use super::secret::{
    CONTROL_TOKEN_KEY, control_secret_name, pull_secret_name, release_secret_name,
};
use crate::crd::MasBackendSpec;

pub const CONTAINER: &str = "app";
/// Seconds a terminating pod keeps serving before SIGTERM, so endpoint removal reaches the
/// ingress controller first (Kubernetes' native sleep action: no shell in the image needed).
pub const PRE_STOP_SECONDS: i64 = 10;
/// preStop + the server's drain and in-flight grace (25 s) + margin.
pub const TERMINATION_GRACE_SECONDS: i64 = 45;

/// The frozen content of a release, stored in its ControllerRevision.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_hash: Option<String>,
    pub template: PodTemplateSpec,
}

impl Snapshot {
    /// Hex digest of the canonical JSON (serde_json maps are ordered): the release identity.
    pub fn template_hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(&Sha256::digest(&json)[..10])
    }
}

/// Renders the release the current spec describes, with the secrets of `secrets_hash`.
pub fn snapshot(owner: &Owner, spec: &MasBackendSpec, secrets_hash: Option<&str>) -> Snapshot {
    let base = base_template(owner, spec, secrets_hash);
    let template = match &spec.pod_template {
        Some(overlay) => apply_overlay(base, overlay, owner, spec, secrets_hash),
        None => base,
    };
    Snapshot {
        image: spec.image.clone(),
        secrets_hash: secrets_hash.map(str::to_owned),
        template,
    }
}

/// Failed readiness probes before the kubelet takes a pod out of its Service: more than
/// verification needs to switch a failing live color back plus the time the ingress takes to
/// follow (`propagationSeconds`). Otherwise a dependency outage in the verification window
/// empties the live Service before traffic is back on the previous color, and clients get the
/// ingress controller's 503 in between.
fn readiness_failures(spec: &MasBackendSpec) -> i32 {
    let period = spec.health.period_seconds.max(1);
    let follow = (spec.propagation_seconds.max(0) + period - 1) / period;
    (spec.verification.failure_threshold + follow + 1).max(3)
}

fn http_probe(path: &str, port: &str, period: i32, timeout: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(port.to_owned()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

/// Env the operator sets on the server container (after `spec.env`, so it wins).
fn operator_env(owner: &Owner, spec: &MasBackendSpec) -> Vec<EnvVar> {
    let field = |path: &str| EnvVarSource {
        field_ref: Some(ObjectFieldSelector {
            field_path: path.to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut env = vec![
        // spec.port is authoritative: the probes, Services and the gate all use it.
        EnvVar {
            name: "PORT".into(),
            value: Some(spec.port.to_string()),
            ..Default::default()
        },
        EnvVar {
            name: "POD_NAME".into(),
            value_from: Some(field("metadata.name")),
            ..Default::default()
        },
        EnvVar {
            name: "POD_NAMESPACE".into(),
            value_from: Some(field("metadata.namespace")),
            ..Default::default()
        },
        EnvVar {
            name: "INTERNAL_PORT".into(),
            value: Some(spec.internal_port.to_string()),
            ..Default::default()
        },
        // Authenticates the operator's drain calls on the internal port; optional so pods
        // start even where the operator runs without a control key.
        EnvVar {
            name: "CONTROL_TOKEN".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: control_secret_name(owner),
                    key: CONTROL_TOKEN_KEY.to_owned(),
                    optional: Some(true),
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    if spec.migration.is_some() {
        // The migration Job migrates before the pods start; the pods must not race it.
        env.push(EnvVar {
            name: "MIGRATE_ON_START".into(),
            value: Some("false".into()),
            ..Default::default()
        });
    }
    env
}

/// Env of `spec.env` with the operator's entries replacing same-named ones.
fn merged_env(owner: &Owner, spec: &MasBackendSpec) -> Vec<EnvVar> {
    let ours = operator_env(owner, spec);
    let mut env: Vec<EnvVar> = spec
        .env
        .iter()
        .filter(|e| !ours.iter().any(|o| o.name == e.name))
        .cloned()
        .collect();
    env.extend(ours);
    env
}

fn release_env_from(
    owner: &Owner,
    spec: &MasBackendSpec,
    secrets_hash: Option<&str>,
) -> Vec<EnvFromSource> {
    let mut from = spec.env_from.clone();
    if let Some(hash) = secrets_hash {
        from.push(EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: release_secret_name(owner, hash),
                optional: Some(false),
            }),
            ..Default::default()
        });
    }
    from
}

fn base_template(
    owner: &Owner,
    spec: &MasBackendSpec,
    secrets_hash: Option<&str>,
) -> PodTemplateSpec {
    let health = &spec.health;
    let env = merged_env(owner, spec);
    let env_from = release_env_from(owner, spec, secrets_hash);
    let container = Container {
        name: CONTAINER.to_owned(),
        image: Some(spec.image.clone()),
        ports: Some(vec![
            ContainerPort {
                name: Some("http".to_owned()),
                container_port: spec.port,
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("internal".to_owned()),
                container_port: spec.internal_port,
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            },
        ]),
        env: (!env.is_empty()).then_some(env),
        env_from: (!env_from.is_empty()).then_some(env_from),
        resources: spec.resources.clone(),
        // Kubernetes probes only check the status code; the operator's gate also checks the body.
        startup_probe: Some(http_probe(
            &health.path,
            "http",
            2,
            health.timeout_seconds,
            60,
        )),
        readiness_probe: Some(http_probe(
            &health.path,
            "http",
            health.period_seconds,
            health.timeout_seconds,
            readiness_failures(spec),
        )),
        liveness_probe: Some(http_probe(
            &health.liveness_path,
            "http",
            10,
            health.timeout_seconds,
            3,
        )),
        // A crashing server's last log lines end up in the pod status (kubectl describe,
        // the operator's failure Events) even where logs are not kept.
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: PRE_STOP_SECONDS,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        // The restricted Pod Security Standard.
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Default::default()
            }),
            run_as_non_root: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut pull: Vec<LocalObjectReference> = spec
        .image_pull_secrets
        .iter()
        .map(|r| LocalObjectReference {
            name: r.name.clone(),
        })
        .collect();
    if !spec.image_pull_secrets_from.is_empty() {
        pull.push(LocalObjectReference {
            name: pull_secret_name(owner),
        });
    }
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(instance_labels(&owner.name)),
            annotations: secrets_hash
                .map(|h| BTreeMap::from([(SECRET_HASH_ANNOTATION.to_owned(), h.to_owned())])),
            ..Default::default()
        }),
        spec: Some(k8s_openapi::api::core::v1::PodSpec {
            containers: vec![container],
            service_account_name: spec.service_account_name.clone(),
            // The server never calls the Kubernetes API.
            automount_service_account_token: Some(false),
            image_pull_secrets: (!pull.is_empty()).then_some(pull),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
            ..Default::default()
        }),
    }
}

/// Lists merged by `name` instead of replaced.
const NAMED_LISTS: [&str; 4] = [
    "containers",
    "initContainers",
    "volumes",
    "imagePullSecrets",
];

/// Deep merge of JSON objects: `over` wins; objects merge key by key; lists replace, except
/// the named lists (entries merge by `name`, new ones are appended).
fn merge(base: &mut Value, over: &Value, key: Option<&str>) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v, Some(k)),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) if key.is_some_and(|k| NAMED_LISTS.contains(&k)) => {
            for item in o {
                let name = item.get("name");
                match b
                    .iter_mut()
                    .find(|x| name.is_some() && x.get("name") == name)
                {
                    Some(slot) => merge(slot, item, None),
                    None => b.push(item.clone()),
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// Merges the overlay, then restores what the operator owns on the server container.
fn apply_overlay(
    base: PodTemplateSpec,
    overlay: &crate::crd::PodTemplateOverlay,
    owner: &Owner,
    spec: &MasBackendSpec,
    secrets_hash: Option<&str>,
) -> PodTemplateSpec {
    let mut v = serde_json::to_value(&base).unwrap_or(Value::Null);
    if let Some(meta) = &overlay.metadata {
        let mut m = serde_json::json!({});
        if !meta.labels.is_empty() {
            m["labels"] = serde_json::to_value(&meta.labels).unwrap_or_default();
        }
        if !meta.annotations.is_empty() {
            m["annotations"] = serde_json::to_value(&meta.annotations).unwrap_or_default();
        }
        merge(&mut v["metadata"], &m, None);
    }
    if let Some(pod) = &overlay.spec {
        let mut o = serde_json::to_value(pod).unwrap_or(Value::Null);
        // An overlay without containers serializes as `containers: []`: nothing to merge.
        if o.get("containers")
            .is_some_and(|c| c.as_array().is_some_and(Vec::is_empty))
            && let Some(obj) = o.as_object_mut()
        {
            obj.remove("containers");
        }
        merge(&mut v["spec"], &o, None);
    }
    let mut t: PodTemplateSpec = serde_json::from_value(v).unwrap_or(base);
    // Operator-owned: instance labels, image, ports, operator env, the release's envFrom.
    let meta = t.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(Default::default)
        .extend(instance_labels(&owner.name));
    if let Some(pod) = t.spec.as_mut()
        && let Some(app) = pod.containers.iter_mut().find(|c| c.name == CONTAINER)
    {
        app.image = Some(spec.image.clone());
        let env = app.env.get_or_insert_with(Vec::new);
        for ours in operator_env(owner, spec) {
            env.retain(|e| e.name != ours.name);
            env.push(ours);
        }
        if let Some(hash) = secrets_hash {
            let name = release_secret_name(owner, hash);
            let from = app.env_from.get_or_insert_with(Vec::new);
            if !from
                .iter()
                .any(|f| f.secret_ref.as_ref().is_some_and(|s| s.name == name))
            {
                from.push(EnvFromSource {
                    secret_ref: Some(SecretEnvSource {
                        name,
                        optional: Some(false),
                    }),
                    ..Default::default()
                });
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::fixtures::mb;
    use serde_json::json;

    fn render(extra: &str, hash: Option<&str>) -> Value {
        let m = mb(extra);
        let owner = Owner::of(&m).unwrap();
        serde_json::to_value(snapshot(&owner, &m.spec, hash).template).unwrap()
    }

    #[test]
    fn readiness_outlasts_verification_plus_ingress_propagation() {
        // period 1, verification 2 rounds, ingress 4 s behind: 2 + 4 + 1.
        let t = render(
            "  propagationSeconds: 4\n  verification: {durationSeconds: 60, failureThreshold: 2}\n",
            None,
        );
        let probe = &t["spec"]["containers"][0]["readinessProbe"];
        assert_eq!(probe["periodSeconds"], 1);
        assert_eq!(probe["failureThreshold"], 7);
        // Defaults (period 5, 2 rounds, 5 s): 2 + 1 + 1 rounds of 5 s.
        let spec: MasBackendSpec = serde_json::from_value(json!({"image": "api:1"})).unwrap();
        assert_eq!(readiness_failures(&spec), 4);
        // Never below the Kubernetes default of 3.
        let t = render(
            "  propagationSeconds: 0\n  verification: {failureThreshold: 1}\n",
            None,
        );
        assert_eq!(
            t["spec"]["containers"][0]["readinessProbe"]["failureThreshold"],
            3
        );
    }

    #[test]
    fn base_template_has_probes_pre_stop_grace_and_restricted_security() {
        let t = render("", None);
        let c = &t["spec"]["containers"][0];
        assert_eq!(c["name"], "app");
        assert_eq!(c["startupProbe"]["httpGet"]["path"], "/api/health");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/api/health");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/api/health/live");
        assert_eq!(
            c["lifecycle"]["preStop"]["sleep"]["seconds"],
            PRE_STOP_SECONDS
        );
        assert_eq!(
            t["spec"]["terminationGracePeriodSeconds"],
            TERMINATION_GRACE_SECONDS
        );
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
        assert_eq!(t["spec"]["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            t["spec"]["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(c["ports"][1]["name"], "internal");
        let names: Vec<_> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].clone())
            .collect();
        assert!(names.contains(&"CONTROL_TOKEN".into()) && names.contains(&"INTERNAL_PORT".into()));
        assert!(
            t["metadata"]["labels"]
                .get("platform.myanalyticsschool.com/color")
                .is_none()
        );
    }

    #[test]
    fn release_secret_is_named_by_its_hash() {
        let t = render("", Some("abc123"));
        let c = &t["spec"]["containers"][0];
        assert_eq!(c["envFrom"][0]["secretRef"]["name"], "api-secrets-abc123");
        assert_eq!(
            t["metadata"]["annotations"][SECRET_HASH_ANNOTATION],
            "abc123"
        );
    }

    #[test]
    fn overlay_merges_pod_fields_and_the_app_container_but_keeps_operator_fields() {
        let t = render(
            "  serviceAccountName: mas-api
  imagePullSecrets: [{name: ghcr}]
  imagePullSecretsFrom: [prod/ghcr]
  env: [{name: INTERNAL_PORT, value: '1'}, {name: APP_ENV, value: production}]
  podTemplate:
    metadata: {labels: {team: web, app.kubernetes.io/instance: hijack}, annotations: {a: b}}
    spec:
      nodeSelector: {kubernetes.io/os: linux}
      priorityClassName: high
      tolerations: [{key: dedicated, operator: Equal, value: api, effect: NoSchedule}]
      volumes: [{name: tmp, emptyDir: {}}]
      containers:
      - name: app
        image: evil:1
        volumeMounts: [{name: tmp, mountPath: /tmp}]
        readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 7}
      - name: sidecar
        image: busybox:1
",
            Some("h1"),
        );
        assert_eq!(t["metadata"]["labels"]["team"], "web");
        assert_eq!(t["metadata"]["labels"]["app.kubernetes.io/instance"], "api");
        assert_eq!(t["metadata"]["annotations"]["a"], "b");
        let spec = &t["spec"];
        assert_eq!(spec["serviceAccountName"], "mas-api");
        assert_eq!(spec["imagePullSecrets"][0]["name"], "ghcr");
        assert_eq!(spec["imagePullSecrets"][1]["name"], "api-pull");
        assert_eq!(spec["nodeSelector"]["kubernetes.io/os"], "linux");
        assert_eq!(spec["priorityClassName"], "high");
        assert_eq!(spec["tolerations"][0]["key"], "dedicated");
        assert_eq!(spec["volumes"][0]["name"], "tmp");
        // Pod security defaults survive an overlay that does not mention them.
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
        let app = &spec["containers"][0];
        assert_eq!(app["image"], "reg/api:2", "the operator owns the image");
        assert_eq!(app["volumeMounts"][0]["mountPath"], "/tmp");
        assert_eq!(app["readinessProbe"]["httpGet"]["path"], "/ready");
        assert_eq!(app["readinessProbe"]["periodSeconds"], 7);
        assert_eq!(app["livenessProbe"]["httpGet"]["path"], "/api/health/live");
        let env = app["env"].as_array().unwrap();
        let internal: Vec<_> = env
            .iter()
            .filter(|e| e["name"] == "INTERNAL_PORT")
            .collect();
        assert_eq!(internal.len(), 1);
        assert_eq!(
            internal[0]["value"], "9090",
            "operator env wins over spec.env"
        );
        assert!(env.iter().any(|e| e["name"] == "APP_ENV"));
        assert_eq!(app["envFrom"][0]["secretRef"]["name"], "api-secrets-h1");
        assert_eq!(spec["containers"][1]["name"], "sidecar");
    }

    #[test]
    fn the_hash_covers_everything_the_pods_run() {
        let m = mb("");
        let owner = Owner::of(&m).unwrap();
        let h = |spec: &MasBackendSpec, secrets: Option<&str>| {
            snapshot(&owner, spec, secrets).template_hash()
        };
        let base = h(&m.spec, None);
        assert_eq!(base, h(&m.spec, None), "stable");
        assert_ne!(base, h(&m.spec, Some("s")));
        let mut s = m.spec.clone();
        s.image = "reg/api:3".into();
        assert_ne!(base, h(&s, None));
        let mut s = m.spec.clone();
        s.env.push(EnvVar {
            name: "X".into(),
            value: Some("1".into()),
            ..Default::default()
        });
        assert_ne!(base, h(&s, None));
        // Not part of the pods: replicas, gate thresholds, traffic.
        let mut s = m.spec.clone();
        s.replicas = 7;
        s.health.success_threshold = 9;
        s.scale_down_delay_seconds = 1;
        assert_eq!(base, h(&s, None));
        // Migration on: the pods stop migrating at boot.
        let mut s = m.spec.clone();
        s.migration = Some(serde_yaml::from_str("command: [mas-server, migrate]").unwrap());
        assert_ne!(base, h(&s, None));
    }
}
