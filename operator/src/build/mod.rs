//! Pure builders: (MasBackend, next status) → every child object, as typed structs.
//! No client, no clock: the same input always yields the same objects, so server-side
//! apply of the result is idempotent.

mod labels;
mod network;
mod secret;
mod workload;

pub use labels::{color_selector, instance_labels, pod_selector_string};
pub use network::{active_service, color_service, ingress, preview_service};
pub use secret::{SECRET_HASH_ANNOTATION, aws_secret, content_hash, secret_name};
pub use workload::deployment;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service, networking::v1::Ingress};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use crate::crd::{Color, MasBackend, MasBackendStatus, Strategy};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BuildError {
    #[error("MasBackend has no {0}; cannot build owned objects")]
    MissingMetadata(&'static str),
}

/// Name, namespace and controller owner reference shared by every child.
#[derive(Clone, Debug)]
pub struct Owner {
    pub name: String,
    pub namespace: String,
    pub owner_ref: OwnerReference,
}

impl Owner {
    pub fn of(mb: &MasBackend) -> Result<Self, BuildError> {
        let name = mb
            .meta()
            .name
            .clone()
            .ok_or(BuildError::MissingMetadata("name"))?;
        let namespace = mb
            .meta()
            .namespace
            .clone()
            .ok_or(BuildError::MissingMetadata("namespace"))?;
        let owner_ref = mb
            .controller_owner_ref(&())
            .ok_or(BuildError::MissingMetadata("uid"))?;
        Ok(Self {
            name,
            namespace,
            owner_ref,
        })
    }

    pub fn color_name(&self, color: Color) -> String {
        format!("{}-{}", self.name, color)
    }
}

/// Everything the operator owns for one MasBackend, in apply order (Services before Deployments).
#[derive(Clone, Debug, Default)]
pub struct Desired {
    pub services: Vec<Service>,
    pub deployments: Vec<Deployment>,
    pub ingress: Option<Ingress>,
}

/// Color whose pods the preview Service should select: the rollout target, else the standby.
pub fn preview_color(status: &MasBackendStatus) -> Option<Color> {
    status
        .rollout
        .as_ref()
        .map(|r| r.color)
        .or(status.standby_color)
}

pub fn desired(mb: &MasBackend, status: &MasBackendStatus) -> Result<Desired, BuildError> {
    let owner = Owner::of(mb)?;
    let spec = &mb.spec;
    let mut out = Desired::default();
    for color in Color::ALL {
        if let Some(state) = status.colors.get(color) {
            out.services.push(color_service(&owner, spec, color));
            out.deployments.push(deployment(&owner, spec, color, state));
        }
    }
    if let Some(active) = status.active_color {
        out.services.push(active_service(&owner, spec, active));
    }
    if spec.strategy == Strategy::BlueGreen
        && let Some(preview) = preview_color(status).filter(|c| Some(*c) != status.active_color)
    {
        out.services.push(preview_service(&owner, spec, preview));
    }
    out.ingress = ingress(&owner, spec);
    Ok(out)
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::crd::MasBackend;

    pub fn mb(extra_spec: &str) -> MasBackend {
        serde_yaml::from_str(&format!(
            "apiVersion: platform.myanalyticsschool.com/v1alpha1
kind: MasBackend
metadata: {{name: api, namespace: prod, uid: 11111111-2222-3333-4444-555555555555, generation: 3}}
spec:
  image: 'reg/api:2'
  replicas: 2
{extra_spec}"
        ))
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::mb;
    use super::*;
    use crate::crd::{ColorState, Rollout, Stage, Trigger};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn status_blue_live_green_rolling() -> MasBackendStatus {
        let mut s = MasBackendStatus {
            active_color: Some(Color::Blue),
            active_image: Some("reg/api:1".into()),
            ..Default::default()
        };
        s.colors.blue = Some(ColorState {
            image: "reg/api:1".into(),
            scaled_down: false,
            secrets_hash: None,
        });
        s.colors.green = Some(ColorState {
            image: "reg/api:2".into(),
            scaled_down: false,
            secrets_hash: None,
        });
        s.rollout = Some(Rollout {
            stage: Stage::Progressing,
            trigger: Trigger::NewImage,
            color: Color::Green,
            image: "reg/api:2".into(),
            secrets_hash: None,
            started_at: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            gate_passes: 0,
            gate_failures: 0,
            last_probe: None,
        });
        s
    }

    fn svc<'a>(d: &'a Desired, name: &str) -> &'a Service {
        d.services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    #[test]
    fn blue_green_mid_rollout_builds_both_colors_active_and_preview() {
        let d = desired(&mb(""), &status_blue_live_green_rolling()).unwrap();
        let names: Vec<_> = d
            .deployments
            .iter()
            .map(|d| d.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["api-blue", "api-green"]);
        let sel = |n| svc(&d, n).spec.as_ref().unwrap().selector.clone().unwrap();
        assert_eq!(sel("api")[crate::crd::COLOR_LABEL], "blue");
        assert_eq!(sel("api-preview")[crate::crd::COLOR_LABEL], "green");
        assert_eq!(sel("api-blue")[crate::crd::COLOR_LABEL], "blue");
        assert_eq!(sel("api-green")[crate::crd::COLOR_LABEL], "green");
        assert_eq!(sel("api")["app.kubernetes.io/instance"], "api");
        assert!(d.ingress.is_none());
        for s in &d.services {
            let o = &s.metadata.owner_references.as_ref().unwrap()[0];
            assert_eq!(o.controller, Some(true));
            assert_eq!(o.kind, "MasBackend");
            assert_eq!(s.metadata.namespace.as_deref(), Some("prod"));
        }
    }

    #[test]
    fn no_active_service_before_first_promotion() {
        let mut s = status_blue_live_green_rolling();
        s.active_color = None;
        s.colors.blue = None;
        let d = desired(&mb(""), &s).unwrap();
        assert!(
            d.services
                .iter()
                .all(|s| s.metadata.name.as_deref() != Some("api"))
        );
        assert_eq!(d.deployments.len(), 1);
    }

    #[test]
    fn recreate_has_no_preview_service() {
        let mut s = status_blue_live_green_rolling();
        s.rollout.as_mut().unwrap().color = Color::Blue;
        s.colors.green = None;
        let d = desired(&mb("  strategy: Recreate\n"), &s).unwrap();
        assert!(
            d.services
                .iter()
                .all(|s| s.metadata.name.as_deref() != Some("api-preview"))
        );
        let strat = d.deployments[0]
            .spec
            .as_ref()
            .unwrap()
            .strategy
            .as_ref()
            .unwrap();
        assert_eq!(strat.type_.as_deref(), Some("Recreate"));
    }

    #[test]
    fn missing_uid_is_an_error_not_a_panic() {
        let mut m = mb("");
        m.metadata.uid = None;
        assert_eq!(
            desired(&m, &MasBackendStatus::default()).unwrap_err(),
            BuildError::MissingMetadata("uid")
        );
    }
}
