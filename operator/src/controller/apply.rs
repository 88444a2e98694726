//! Server-side apply of the builders' output and of the status, all as `mas-operator`.

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service, networking::v1::Ingress};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Error, FIELD_MANAGER};
use crate::build::Desired;
use crate::crd::{MasBackend, MasBackendStatus};

fn params() -> PatchParams {
    // force: the operator is the sole owner of these fields and must win conflicts.
    PatchParams::apply(FIELD_MANAGER).force()
}

async fn apply_one<K>(client: &Client, ns: &str, obj: &K) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let name = obj.meta().name.clone().unwrap_or_default();
    let mut body = serde_json::to_value(obj).map_err(Error::Serialize)?;
    // Typed structs omit apiVersion/kind; SSA needs them.
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    api.patch(&name, &params(), &Patch::Apply(&body)).await?;
    Ok(())
}

/// Deployments first (so a color exists before a Service selects it), then Services, then Ingress.
pub async fn apply_desired(client: &Client, ns: &str, desired: &Desired) -> Result<(), Error> {
    for d in &desired.deployments {
        apply_one::<Deployment>(client, ns, d).await?;
    }
    for s in &desired.services {
        apply_one::<Service>(client, ns, s).await?;
    }
    if let Some(i) = &desired.ingress {
        apply_one::<Ingress>(client, ns, i).await?;
    }
    Ok(())
}

pub async fn apply_status(client: &Client, ns: &str, name: &str, status: &MasBackendStatus) -> Result<(), Error> {
    let api: Api<MasBackend> = Api::namespaced(client.clone(), ns);
    let body = serde_json::json!({
        "apiVersion": MasBackend::api_version(&()),
        "kind": MasBackend::kind(&()),
        "status": status,
    });
    api.patch_status(name, &params(), &Patch::Apply(&body)).await?;
    Ok(())
}
