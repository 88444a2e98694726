//! Watch caches of what the operator owns (and the pods of it), so observing costs no API
//! call. They may lag behind the operator's own writes; every step tolerates that.
//!
//! Each cache keeps only what the operator reads of its objects: memory grows with the
//! number of MasBackends, and most of a Pod, a Deployment's pod template, a Job's spec or a
//! Service's spec is never looked at (see `observe`, `apply`, `connections`). The
//! `prune_keeps_what_is_read` test holds the pruned objects to the same observed facts.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodStatus, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Resource;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;

use super::api;
use crate::desired::{MANAGED_BY_LABEL, MANAGER};

#[derive(Clone)]
pub struct Stores {
    pub deployments: Store<Deployment>,
    pub pods: Store<Pod>,
    pub jobs: Store<Job>,
    pub revisions: Store<ControllerRevision>,
    pub services: Store<Service>,
    pub ingresses: Store<Ingress>,
}

/// What the operator manages: its label.
pub(super) fn owned() -> watcher::Config {
    watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}"))
}

/// Starts a watch cache of `K` (what this operator manages), keeping what `prune` leaves
/// of each object, and returns its reader.
fn cache<K>(client: &kube::Client, ns: Option<&str>, prune: fn(&mut K)) -> Store<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api::<K>(client, ns), owned())
            .default_backoff()
            .modify(move |o: &mut K| {
                // managedFields are never read; they are about half of a typical object.
                o.meta_mut().managed_fields = None;
                prune(o);
            }),
    );
    tokio::spawn(stream.for_each(|_| async {}));
    reader
}

/// Read: replicas, the template's revision annotation (metadata), status, generation.
fn prune_deployment(d: &mut Deployment) {
    if let Some(spec) = d.spec.as_mut() {
        spec.template.spec = None;
    }
}

/// Read: metadata (labels, revision annotation, deletion), phase and IP.
fn prune_pod(p: &mut Pod) {
    p.spec = None;
    if let Some(status) = p.status.as_mut() {
        *status = PodStatus {
            phase: status.phase.take(),
            pod_ip: status.pod_ip.take(),
            ..PodStatus::default()
        };
    }
}

/// Read: status (succeeded, the Failed condition).
fn prune_job(j: &mut Job) {
    j.spec = None;
}

/// Read: metadata only (resourceVersion for unchanged writes, labels for orphans).
fn prune_service(s: &mut Service) {
    s.spec = None;
    s.status = None;
}

/// Read: metadata only, as for Services.
fn prune_ingress(i: &mut Ingress) {
    i.spec = None;
    i.status = None;
}

/// Read: all of it (the release snapshot is its data).
fn keep_revision(_: &mut ControllerRevision) {}

impl Stores {
    pub fn start(client: &kube::Client, ns: Option<&str>) -> Self {
        Self {
            deployments: cache(client, ns, prune_deployment),
            pods: cache(client, ns, prune_pod),
            jobs: cache(client, ns, prune_job),
            revisions: cache(client, ns, keep_revision),
            services: cache(client, ns, prune_service),
            ingresses: cache(client, ns, prune_ingress),
        }
    }

    pub async fn ready(&self) -> anyhow::Result<()> {
        self.deployments.wait_until_ready().await?;
        self.pods.wait_until_ready().await?;
        self.jobs.wait_until_ready().await?;
        self.revisions.wait_until_ready().await?;
        self.services.wait_until_ready().await?;
        self.ingresses.wait_until_ready().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::observe::{facts, job_facts};
    use crate::health::targets_from_pods;
    use serde_json::json;

    fn size(v: &impl serde::Serialize) -> usize {
        serde_json::to_string(v).map(|s| s.len()).unwrap_or(0)
    }

    #[test]
    fn prune_keeps_what_is_read() {
        let rev = crate::desired::REVISION_ANNOTATION;
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "api-blue", "namespace": "ns", "generation": 4, "resourceVersion": "7"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"labels": {"app": "api"}, "annotations": {rev: "3"}},
                    "spec": {"containers": [{"name": "api", "image": "api:3",
                        "env": (0..40).map(|i| json!({"name": format!("VAR_{i}"), "value": "x".repeat(40)})).collect::<Vec<_>>()}]}
                }
            },
            "status": {"replicas": 2, "readyReplicas": 1, "updatedReplicas": 2, "observedGeneration": 4}
        }))
        .unwrap();
        let mut pruned = deployment.clone();
        prune_deployment(&mut pruned);
        assert_eq!(facts(&pruned), facts(&deployment));
        assert!(size(&pruned) * 4 < size(&deployment));

        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "api-blue-x", "namespace": "ns", "labels": {"app": "api"},
                         "annotations": {rev: "3"}},
            "spec": {"containers": [{"name": "api", "image": "api:3"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "198.18.0.4", "hostIP": "10.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "api", "image": "api:3", "imageID": "", "ready": true, "restartCount": 0}]}
        }))
        .unwrap();
        let mut pruned = pod.clone();
        prune_pod(&mut pruned);
        let before = targets_from_pods(std::slice::from_ref(&pod), 3);
        let after = targets_from_pods(std::slice::from_ref(&pruned), 3);
        assert_eq!(after.len(), 1);
        assert_eq!(after, before);
        assert!(size(&pruned) < size(&pod));

        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "api-migrate-3", "namespace": "ns"},
            "spec": {"template": {"spec": {"containers": [{"name": "migrate", "image": "api:3"}]}}},
            "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "boom"}]}
        }))
        .unwrap();
        let mut pruned = job.clone();
        prune_job(&mut pruned);
        assert_eq!(job_facts(&pruned), job_facts(&job));
    }
}
