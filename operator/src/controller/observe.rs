//! Reads what the state machine needs from the cluster.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

use crate::build::SECRET_HASH_ANNOTATION;
use crate::crd::{ABORT_ANNOTATION, MasBackend, PROMOTE_ANNOTATION, ROLLBACK_ANNOTATION};
use crate::rollout::{DeploymentFacts, Requests};

pub fn facts(d: &Deployment) -> DeploymentFacts {
    let spec = d.spec.as_ref();
    let status = d.status.as_ref();
    DeploymentFacts {
        image: spec
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.first())
            .and_then(|c| c.image.clone()),
        replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
        ready_replicas: status.and_then(|s| s.ready_replicas).unwrap_or(0),
        updated_replicas: status.and_then(|s| s.updated_replicas).unwrap_or(0),
        generation: d.metadata.generation,
        observed_generation: status.and_then(|s| s.observed_generation),
        secrets_hash: spec
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(SECRET_HASH_ANNOTATION))
            .cloned(),
    }
}

pub async fn deployment_facts(
    api: &Api<Deployment>,
    name: &str,
) -> Result<Option<DeploymentFacts>, kube::Error> {
    Ok(api.get_opt(name).await?.as_ref().map(facts))
}

pub fn requests(mb: &MasBackend) -> Requests {
    let get = |k: &str| {
        mb.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .cloned()
    };
    Requests {
        rollback: get(ROLLBACK_ANNOTATION),
        promote: get(PROMOTE_ANNOTATION),
        abort: get(ABORT_ANNOTATION),
    }
}
