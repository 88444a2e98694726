//! Thin I/O layer: observe the cluster, run the pure state machine, apply its result with
//! server-side apply (one field manager), write status, publish events.

mod apply;
mod observe;
mod reconcile;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service, networking::v1::Ingress};
use kube::api::ListParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client};

use crate::build::BuildError;
use crate::crd::MasBackend;
use crate::metrics::Metrics;

pub use reconcile::reconcile;

/// Field manager for every write the operator makes (children and status).
pub const FIELD_MANAGER: &str = "mas-operator";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("serializing status: {0}")]
    Serialize(#[source] serde_json::Error),
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(e)
    }
}

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// AWS Secrets Manager client, built once (credentials are refreshed by the SDK).
    pub secrets: aws_sdk_secretsmanager::Client,
    /// Upper bound on the requeue of a MasBackend with `spec.secrets`, to notice rotations.
    pub secrets_refresh: Duration,
}

impl Context {
    pub fn new(
        client: Client,
        instance: Option<String>,
        metrics: Arc<Metrics>,
        secrets: aws_sdk_secretsmanager::Client,
        secrets_refresh: Duration,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            secrets,
            secrets_refresh,
        }
    }
}

fn error_policy(mb: Arc<MasBackend>, err: &Error, ctx: Arc<Context>) -> Action {
    Metrics::inc(&ctx.metrics.reconcile_errors);
    tracing::warn!(name = ?mb.metadata.name, error = %err, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until SIGINT/SIGTERM, over one namespace or all of them.
pub async fn run(ctx: Arc<Context>, namespace: Option<String>) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let mbs: Api<MasBackend> = api(&client, ns);
    mbs.list(&ListParams::default().limit(1)).await.map_err(|e| {
        anyhow::anyhow!("cannot list MasBackends ({e}); install the CRD: mas-operator crd | kubectl apply -f -")
    })?;
    tracing::info!(namespace = ns.unwrap_or("<all>"), "controller starting");
    let owned = || watcher::Config::default().labels("app.kubernetes.io/managed-by=mas-operator");
    Controller::new(mbs, watcher::Config::default())
        .owns(api::<Deployment>(&client, ns), owned())
        .owns(api::<Service>(&client, ns), owned())
        .owns(api::<Ingress>(&client, ns), owned())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
    Ok(())
}
