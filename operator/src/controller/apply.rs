//! The one write layer: server-side apply of the builders' output and of the status, all as
//! `mas-operator`, and the deletion of what the desired state no longer holds.
//!
//! An object identical to what this process last applied, and unchanged since (same
//! generation, or resourceVersion where there is none, in the watch cache), is not sent again:
//! an idle MasBackend costs no writes. Someone else's edit changes the object, so it is applied
//! (healed) again; Secrets, which the operator cannot read, are re-applied every 10 minutes.

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, Patch, PatchParams, PropagationPolicy};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;

use super::{Error, FIELD_MANAGER, Stores};
use crate::crd::{MasBackend, MasBackendStatus};
use crate::desired::{Desired, INSTANCE_LABEL, Owner, Referenced};

fn params() -> PatchParams {
    // force: the operator is the sole owner of these fields and must win conflicts.
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Secrets cannot be observed: re-applied this often to heal edits.
const SECRET_REFRESH: Duration = Duration::from_secs(600);

/// Kind, namespace, name.
type ObjectKey = (String, String, String);

/// Hash of the applied body, the object's version right after, when.
type AppliedEntry = (u64, String, Instant);

/// What this process last applied, per object.
#[derive(Default)]
pub struct Applied {
    entries: Mutex<HashMap<ObjectKey, AppliedEntry>>,
}

fn version<K: Resource>(obj: &K) -> String {
    match obj.meta().generation {
        Some(g) => format!("g{g}"),
        None => format!(
            "r{}",
            obj.meta().resource_version.clone().unwrap_or_default()
        ),
    }
}

fn hash_of(body: &serde_json::Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.to_string().hash(&mut h);
    h.finish()
}

async fn apply_one<K>(
    client: &Client,
    applied: &Applied,
    store: Option<&Store<K>>,
    ns: &str,
    obj: &K,
) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let mut body = serde_json::to_value(obj).map_err(Error::Serialize)?;
    // Typed structs omit apiVersion/kind; SSA needs them.
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    let hash = hash_of(&body);
    let key = (K::kind(&()).to_string(), ns.to_owned(), name.clone());
    let last = applied
        .entries
        .lock()
        .ok()
        .and_then(|e| e.get(&key).cloned());
    if let Some((h, v, at)) = last
        && h == hash
    {
        let unchanged = match store {
            Some(store) => store
                .get(&ObjectRef::new(&name).within(ns))
                .is_some_and(|current| version(current.as_ref()) == v),
            None => at.elapsed() < SECRET_REFRESH,
        };
        if unchanged {
            return Ok(());
        }
    }
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let result = api
        .patch(&name, &params(), &Patch::Apply(&body))
        .await
        .map_err(Error::kube("apply"))?;
    if let Ok(mut e) = applied.entries.lock() {
        e.insert(key, (hash, version(&result), Instant::now()));
    }
    Ok(())
}

/// Applies everything in `desired`, in its order.
pub async fn apply(
    client: &Client,
    applied: &Applied,
    stores: &Stores,
    ns: &str,
    desired: &Desired,
) -> Result<(), Error> {
    for s in &desired.secrets {
        apply_one::<Secret>(client, applied, None, ns, s).await?;
    }
    for r in &desired.revisions {
        apply_one(client, applied, Some(&stores.revisions), ns, r).await?;
    }
    if let Some(j) = &desired.job {
        apply_one(client, applied, Some(&stores.jobs), ns, j).await?;
    }
    for d in &desired.deployments {
        apply_one(client, applied, Some(&stores.deployments), ns, d).await?;
    }
    for s in &desired.services {
        apply_one(client, applied, Some(&stores.services), ns, s).await?;
    }
    if let Some(i) = &desired.ingress {
        apply_one(client, applied, Some(&stores.ingresses), ns, i).await?;
    }
    Ok(())
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
        .await
        .map_err(Error::kube("status"))?;
    Ok(())
}

async fn delete_ignoring_missing<K>(
    api: &Api<K>,
    name: &str,
    dp: &DeleteParams,
) -> Result<(), Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        Err(e) => Err(Error::kube("delete")(e)),
    }
}

/// Names in `store` owned by `owner` (same namespace and instance) that `keep` lacks.
fn orphans<K: Resource<DynamicType = ()> + Clone>(
    store: &Store<K>,
    owner: &Owner,
    keep: &[Option<&str>],
) -> Vec<String> {
    store
        .state()
        .iter()
        .filter(|o| {
            o.meta().namespace.as_deref() == Some(owner.namespace.as_str())
                && o.meta()
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.get(INSTANCE_LABEL) == Some(&owner.name))
        })
        .filter_map(|o| o.meta().name.clone())
        .filter(|n| !keep.contains(&Some(n.as_str())))
        .collect()
}

/// Deletes what the previous status referred to and the next one does not (release Secrets,
/// revisions, migration Jobs, the pull Secret), and Services and Ingresses of this MasBackend
/// the desired state lacks (the preview Service once no standby is warm, the Ingress once the
/// host is removed). Deployments are never deleted: a color, once created, stays in status.
pub async fn delete_unwanted(
    client: &Client,
    owner: &Owner,
    gone: &Referenced,
    desired: &Desired,
    services: &Store<Service>,
    ingresses: &Store<Ingress>,
) -> Result<(), Error> {
    let ns = owner.namespace.as_str();
    let plain = DeleteParams::default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for name in gone.release_secrets.iter().chain(gone.pull_secret.as_ref()) {
        delete_ignoring_missing(&secrets, name, &plain).await?;
    }
    let revisions: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    for name in &gone.revisions {
        delete_ignoring_missing(&revisions, name, &plain).await?;
    }
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let with_pods = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    for name in &gone.jobs {
        delete_ignoring_missing(&jobs, name, &with_pods).await?;
    }
    let keep: Vec<Option<&str>> = desired
        .services
        .iter()
        .map(|s| s.metadata.name.as_deref())
        .collect();
    let svc_api: Api<Service> = Api::namespaced(client.clone(), ns);
    for name in orphans(services, owner, &keep) {
        delete_ignoring_missing(&svc_api, &name, &plain).await?;
    }
    let keep = [desired
        .ingress
        .as_ref()
        .and_then(|i| i.metadata.name.as_deref())];
    let ing_api: Api<Ingress> = Api::namespaced(client.clone(), ns);
    for name in orphans(ingresses, owner, &keep) {
        delete_ignoring_missing(&ing_api, &name, &plain).await?;
    }
    Ok(())
}
