use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, PodSpec, PodTemplateSpec, Probe,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Owner;
use super::labels::{color_labels, color_selector};
use crate::crd::{Color, ColorState, MasBackendSpec, Strategy};

pub const CONTAINER: &str = "app";

/// The Deployment `<name>-<color>` running `state.image`.
pub fn deployment(owner: &Owner, spec: &MasBackendSpec, color: Color, state: &ColorState) -> Deployment {
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
        env_from: (!spec.env_from.is_empty()).then(|| spec.env_from.clone()),
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
        let state = ColorState { image: "reg/api:9".into(), scaled_down: false };
        let d = deployment(&owner, &m.spec, Color::Green, &state);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["metadata"]["name"], "api-green");
        assert_eq!(v["spec"]["replicas"], 2);
        assert_eq!(v["spec"]["selector"]["matchLabels"]["platform.myanalyticsschool.com/color"], "green");
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
        let state = ColorState { image: "reg/api:1".into(), scaled_down: true };
        let d = deployment(&owner, &m.spec, Color::Blue, &state);
        assert_eq!(d.spec.unwrap().replicas, Some(0));
    }
}
