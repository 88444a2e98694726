//! Server-side apply of the builders' output and of the status, all as `mas-operator`.

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Secret, Service},
    networking::v1::Ingress,
};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
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

pub async fn apply_secret(client: &Client, ns: &str, secret: &Secret) -> Result<(), Error> {
    apply_one::<Secret>(client, ns, secret).await
}

pub async fn delete_secret(client: &Client, ns: &str, name: &str) -> Result<(), Error> {
    delete_ignoring_missing(&Api::<Secret>::namespaced(client.clone(), ns), name).await
}

pub async fn apply_status(
    client: &Client,
    ns: &str,
    name: &str,
    status: &MasBackendStatus,
) -> Result<(), Error> {
    let api: Api<MasBackend> = Api::namespaced(client.clone(), ns);
    let body = serde_json::json!({
        "apiVersion": MasBackend::api_version(&()),
        "kind": MasBackend::kind(&()),
        "status": status,
    });
    api.patch_status(name, &params(), &Patch::Apply(&body))
        .await?;
    Ok(())
}

/// Deletes Services and Ingresses this operator made for `name` that the desired state no
/// longer contains (preview Service after the standby is retired, Ingress after the host is
/// removed). Deployments are never orphaned: a color, once created, stays in status.
pub async fn delete_orphans(
    client: &Client,
    ns: &str,
    name: &str,
    desired: &Desired,
) -> Result<(), Error> {
    let lp = ListParams::default().labels(&format!(
        "app.kubernetes.io/instance={name},app.kubernetes.io/managed-by={FIELD_MANAGER}"
    ));
    let keep_svc: Vec<&str> = desired
        .services
        .iter()
        .filter_map(|s| s.metadata.name.as_deref())
        .collect();
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    for svc in services.list(&lp).await?.items {
        let svc_name = svc.metadata.name.unwrap_or_default();
        if !keep_svc.contains(&svc_name.as_str()) {
            delete_ignoring_missing(&services, &svc_name).await?;
        }
    }
    let keep_ing = desired
        .ingress
        .as_ref()
        .and_then(|i| i.metadata.name.as_deref());
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    for ing in ingresses.list(&lp).await?.items {
        let ing_name = ing.metadata.name.unwrap_or_default();
        if Some(ing_name.as_str()) != keep_ing {
            delete_ignoring_missing(&ingresses, &ing_name).await?;
        }
    }
    Ok(())
}

async fn delete_ignoring_missing<K>(api: &Api<K>, name: &str) -> Result<(), Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
