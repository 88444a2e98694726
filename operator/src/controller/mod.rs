//! The I/O around the pure parts, once per reconcile: observe the cluster (from watch caches,
//! probes and Secrets Manager) → step the state machine → build every desired object → apply
//! them with server-side apply under one field manager → write the status.

mod apply;
mod caches;
mod connections;
mod diagnostics;
pub mod leader;
mod observe;
mod reconcile;
mod secrets_cache;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};

use crate::crd::MasBackend;
use crate::desired::BuildError;
use crate::metrics::Metrics;

pub use caches::Stores;
pub use reconcile::reconcile;
pub use secrets_cache::SecretsCache;

/// Field manager for every write the operator makes (children and status).
pub const FIELD_MANAGER: &str = "mas-operator";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API ({step}): {source}")]
    Kube {
        step: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("serializing status: {0}")]
    Serialize(#[source] serde_json::Error),
}

impl Error {
    pub fn kube(step: &'static str) -> impl FnOnce(kube::Error) -> Error {
        move |source| Error::Kube { step, source }
    }

    /// Low-cardinality label for the reconcile-errors metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { step, .. } => step,
            Error::Build(_) => "build",
            Error::Serialize(_) => "serialize",
        }
    }

    /// Conflicts and throttling clear up quickly; anything else backs off longer.
    fn requeue(&self) -> Duration {
        match self {
            Error::Kube {
                source: kube::Error::Api(s),
                ..
            } if s.code == 409 || s.code == 429 => Duration::from_secs(1),
            Error::Kube { .. } => Duration::from_secs(5),
            Error::Build(_) | Error::Serialize(_) => Duration::from_secs(60),
        }
    }
}

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub secrets: SecretsCache,
    /// Upper bound on the requeue of a MasBackend with `spec.secrets`, to notice rotations.
    pub secrets_refresh: Duration,
    /// Derives each MasBackend's control token; `None`: connection draining is off.
    pub control_key: Option<Vec<u8>>,
    pub stores: Stores,
    /// What was last applied, to skip unchanged writes.
    pub applied: apply::Applied,
    /// HTTP client for the drain calls to pods.
    pub http: reqwest::Client,
    /// HTTP client for the health gates' probes (see `health::http_client`).
    pub probes: reqwest::Client,
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

impl Context {
    pub fn new(
        client: Client,
        instance: Option<String>,
        metrics: Arc<Metrics>,
        secrets: SecretsCache,
        secrets_refresh: Duration,
        control_key: Option<Vec<u8>>,
        stores: Stores,
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
            control_key,
            stores,
            applied: apply::Applied::default(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(3))
                .build()
                .unwrap_or_default(),
            probes: crate::health::http_client().unwrap_or_default(),
        }
    }
}

/// A client counting every request it sends (`mas_operator_api_requests_total`).
pub fn counted_client(config: kube::Config, metrics: Arc<Metrics>) -> anyhow::Result<Client> {
    let count = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        metrics.api_request(req.method().as_str(), req.uri().path(), req.uri().query());
        req
    });
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&count)
        .build())
}

fn error_policy(mb: Arc<MasBackend>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error(err.metric_label());
    tracing::warn!(
        namespace = ?mb.metadata.namespace,
        name = ?mb.metadata.name,
        error = %err,
        "reconcile failed"
    );
    Action::requeue(err.requeue())
}

/// Runs the controller over one namespace or all of them until `shutdown` resolves.
/// Checks the CRD is installed and waits for the watch caches; then the replica is ready to
/// lead.
pub async fn prepare(ctx: &Context, namespace: Option<&str>) -> anyhow::Result<()> {
    let mbs: Api<MasBackend> = api(&ctx.client, namespace);
    mbs.list(&ListParams::default().limit(1)).await.map_err(|e| {
        anyhow::anyhow!("cannot list MasBackends ({e}); install the CRD: mas-operator crd | kubectl apply --server-side -f -")
    })?;
    ctx.stores.ready().await
}

pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let mbs: Api<MasBackend> = api(&client, ns);
    tracing::info!(namespace = ns.unwrap_or("<all>"), "controller starting");
    // The MasBackend cache, like the others, without managedFields (see `caches`).
    let (reader, writer) = reflector::store();
    let masbackends = watcher(mbs, watcher::Config::default())
        .default_backoff()
        .modify(|mb: &mut MasBackend| mb.metadata.managed_fields = None)
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(masbackends, reader)
        .owns(api::<Deployment>(&client, ns), caches::owned())
        .owns(api::<Service>(&client, ns), caches::owned())
        .owns(api::<Ingress>(&client, ns), caches::owned())
        .owns(api::<Job>(&client, ns), caches::owned())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|res| {
            let ctx = ctx.clone();
            async move {
                ctx.metrics.loop_progress();
                if let Err(e) = res {
                    tracing::debug!(error = %e, "controller event");
                }
            }
        })
        .await;
    Ok(())
}
