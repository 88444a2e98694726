use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, HTTPGetAction, PodSpec, PodTemplateSpec, Probe,
    SecretEnvSource,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Owner;
use super::labels::{color_labels, color_selector};
use super::secret::{SECRET_HASH_ANNOTATION, secret_name};
use crate::crd::{Color, ColorState, MasBackendSpec, Strategy};

pub const CONTAINER: &str = "app";

/// The Deployment `<name>-<color>` running `state.image`. With `state.secrets_hash` set, the
/// containers also read `<name>-aws-secrets` and the pod template carries the hash, so only a
/// color released with new values restarts with them.
pub fn deployment(
    owner: &Owner,
    spec: &MasBackendSpec,
    color: Color,
    state: &ColorState,
) -> Deployment {
    let labels = color_labels(&owner.name, color);
    let replicas = if state.scaled_down { 0 } else { spec.replicas };
    let strategy = match spec.strategy {
        Strategy::BlueGreen => None,
        Strategy::Recreate => Some(DeploymentStrategy {
            type_: Some("Recreate".to_owned()),
            rolling_update: None,
        }),
    };
    let container = Container {
        name: CONTAINER.to_owned(),
        image: Some(state.image.clone()),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: spec.port,
            protocol: Some("TCP".to_owned()),
            ..Default::default()
        }]),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        env_from: {
            let mut from = spec.env_from.clone();
            if state.secrets_hash.is_some() {
                from.push(EnvFromSource {
                    secret_ref: Some(SecretEnvSource {
                        name: secret_name(owner),
                        optional: Some(false),
                    }),
                    ..Default::default()
                });
            }
            (!from.is_empty()).then_some(from)
        },
        resources: spec.resources.clone(),
        // Kubernetes readiness only checks the status code; the operator's gate also checks the body.
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some(spec.health.path.clone()),
                port: IntOrString::String("http".to_owned()),
                ..Default::default()
            }),
            period_seconds: Some(spec.health.period_seconds),
            timeout_seconds: Some(spec.health.timeout_seconds),
            ..Default::default()
        }),
        ..Default::default()
    };
    Deployment {
        metadata: ObjectMeta {
            name: Some(owner.color_name(color)),
            namespace: Some(owner.namespace.clone()),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner.owner_ref.clone()]),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(color_selector(&owner.name, color)),
                ..Default::default()
            },
            strategy,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: state
                        .secrets_hash
                        .as_ref()
                        .map(|h| BTreeMap::from([(SECRET_HASH_ANNOTATION.to_owned(), h.clone())])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::mb;

    #[test]
    fn deployment_carries_image_port_labels_and_replicas() {
        let m = mb("  port: 3000\n  env: [{name: A, value: b}]\n");
        let owner = Owner::of(&m).unwrap();
        let state = ColorState {
            image: "reg/api:9".into(),
            scaled_down: false,
            secrets_hash: None,
        };
        let d = deployment(&owner, &m.spec, Color::Green, &state);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["metadata"]["name"], "api-green");
        assert_eq!(v["spec"]["replicas"], 2);
        assert_eq!(
            v["spec"]["selector"]["matchLabels"]["platform.myanalyticsschool.com/color"],
            "green"
        );
        let pod_labels = &v["spec"]["template"]["metadata"]["labels"];
        assert_eq!(pod_labels["app.kubernetes.io/name"], "api");
        assert_eq!(pod_labels["app.kubernetes.io/instance"], "api");
        assert_eq!(pod_labels["platform.myanalyticsschool.com/color"], "green");
        let c = &v["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "reg/api:9");
        assert_eq!(c["ports"][0]["containerPort"], 3000);
        assert_eq!(c["env"][0]["name"], "A");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/api/health");
        assert_eq!(v["metadata"]["ownerReferences"][0]["controller"], true);
        assert!(v["spec"].get("strategy").is_none());
    }

    #[test]
    fn scaled_down_color_has_zero_replicas() {
        let m = mb("");
        let owner = Owner::of(&m).unwrap();
        let state = ColorState {
            image: "reg/api:1".into(),
            scaled_down: true,
            secrets_hash: None,
        };
        let d = deployment(&owner, &m.spec, Color::Blue, &state);
        assert_eq!(d.spec.unwrap().replicas, Some(0));
    }
}

#[cfg(test)]
mod secrets_tests {
    use super::*;
    use crate::build::fixtures::mb;

    #[test]
    fn color_with_secrets_reads_the_aws_secret_and_carries_its_hash() {
        let m = mb("  envFrom: [{configMapRef: {name: cm}}]\n");
        let owner = Owner::of(&m).unwrap();
        let state = ColorState {
            image: "reg/api:1".into(),
            scaled_down: false,
            secrets_hash: Some("abc".into()),
        };
        let v = serde_json::to_value(deployment(&owner, &m.spec, Color::Green, &state)).unwrap();
        let c = &v["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["envFrom"][0]["configMapRef"]["name"], "cm");
        assert_eq!(c["envFrom"][1]["secretRef"]["name"], "api-aws-secrets");
        assert_eq!(
            v["spec"]["template"]["metadata"]["annotations"][SECRET_HASH_ANNOTATION],
            "abc"
        );
    }

    #[test]
    fn color_without_secrets_has_neither_env_from_nor_hash() {
        let m = mb("");
        let owner = Owner::of(&m).unwrap();
        let state = ColorState {
            image: "reg/api:1".into(),
            scaled_down: false,
            secrets_hash: None,
        };
        let v = serde_json::to_value(deployment(&owner, &m.spec, Color::Blue, &state)).unwrap();
        assert!(
            v["spec"]["template"]["spec"]["containers"][0]
                .get("envFrom")
                .is_none()
        );
        assert!(
            v["spec"]["template"]["metadata"]
                .get("annotations")
                .is_none()
        );
    }
}
