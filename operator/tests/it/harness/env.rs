//! One test's world: a fresh namespace with the fake app on its pod IPs and an operator
//! watching only it, plus helpers to drive and observe the MasBackend `api` in it.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use mas_operator::crd::{Color, MasBackend};
use serde_json::json;

use super::cluster::client;
use super::crd::{COLOR_LABEL, install_crd};
use super::fake_app::PodServers;
use super::operator::Operator;

pub struct Env {
    pub client: Client,
    pub ns: String,
    pub mbs: Api<MasBackend>,
    pub operator: Option<Operator>,
    _servers: Option<PodServers>,
}

impl Env {
    /// A namespace with the fake app serving `port` on every pod IP, and an operator.
    pub async fn new(test: &str, port: u16) -> Self {
        Self::start(test, Some(port)).await
    }

    /// A namespace and an operator, nothing serving the pod IPs (the pod runner does).
    pub async fn bare(test: &str) -> Self {
        Self::start(test, None).await
    }

    async fn start(test: &str, fake_app_port: Option<u16>) -> Self {
        let client = client().await;
        install_crd(&client).await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let ns = format!("e2e-{test}-{:x}", nanos % 0x00ff_ffff);
        let nss: Api<Namespace> = Api::all(client.clone());
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        nss.create(&PostParams::default(), &n)
            .await
            .expect("create namespace");
        let servers = fake_app_port.map(|port| PodServers::start(client.clone(), &ns, port));
        let operator = Some(Operator::start(&ns));
        let mbs = Api::namespaced(client.clone(), &ns);
        Self {
            client,
            ns,
            mbs,
            operator,
            _servers: servers,
        }
    }

    pub async fn apply(&self, spec: serde_json::Value) {
        let mb = json!({
            "apiVersion": "platform.myanalyticsschool.com/v1alpha1",
            "kind": "MasBackend",
            "metadata": {"name": "api"},
            "spec": spec,
        });
        self.mbs
            .patch(
                "api",
                &PatchParams::apply("e2e-user").force(),
                &Patch::Apply(&mb),
            )
            .await
            .expect("apply MasBackend");
    }

    pub async fn set_image(&self, image: &str) {
        let p = json!({"spec": {"image": image}});
        self.mbs
            .patch("api", &PatchParams::default(), &Patch::Merge(&p))
            .await
            .expect("set image");
    }

    pub async fn annotate(&self, key: &str, value: &str) {
        let p = json!({"metadata": {"annotations": {key: value}}});
        self.mbs
            .patch("api", &PatchParams::default(), &Patch::Merge(&p))
            .await
            .expect("annotate");
    }

    pub async fn wait<F: Fn(&MasBackend) -> bool>(
        &self,
        what: &str,
        secs: u64,
        pred: F,
    ) -> MasBackend {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let mb = self.mbs.get("api").await.expect("get MasBackend");
            if pred(&mb) {
                return mb;
            }
            if Instant::now() > deadline {
                let log = self
                    .operator
                    .as_ref()
                    .map(|o| o.log.display().to_string())
                    .unwrap_or_default();
                panic!(
                    "timed out after {secs}s waiting for {what}; status:\n{}\noperator log: {log}",
                    serde_yaml::to_string(&mb.status).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn selector_color(&self, svc: &str) -> Option<String> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), &self.ns);
        let s = api.get_opt(svc).await.expect("get service")?;
        s.spec?.selector?.get(COLOR_LABEL).cloned()
    }

    pub async fn replicas(&self, deployment: &str) -> Option<i32> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.ns);
        api.get_opt(deployment)
            .await
            .expect("get deployment")?
            .spec?
            .replicas
    }

    /// Waits until an event with `reason` exists (events and status are separate writes).
    pub async fn event(&self, reason: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let events = self.events().await;
            if let Some((_, note)) = events.iter().find(|e| e.0 == reason) {
                return note.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {reason} event; have {:?}",
                events.iter().map(|e| &e.0).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The first `reason` event whose message contains `needle`, waiting for it: a gate's
    /// early rounds may fail differently (a pod not listening yet) before the failure
    /// under test shows.
    pub async fn event_containing(&self, reason: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let events = self.events().await;
            if let Some((_, note)) = events
                .iter()
                .find(|e| e.0 == reason && e.1.contains(needle))
            {
                return note.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {reason} event containing {needle:?}; have {:?}",
                events
                    .iter()
                    .filter(|e| e.0 == reason)
                    .map(|e| &e.1)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn events(&self) -> Vec<(String, String)> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        api.list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }

    pub async fn restart_operator(&mut self) {
        if let Some(op) = self.operator.take() {
            op.kill().await;
        }
        self.operator = Some(Operator::start(&self.ns));
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let nss: Api<Namespace> = Api::all(self.client.clone());
        let ns = self.ns.clone();
        // Best-effort cleanup on a fresh runtime thread; the test runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async { nss.delete(&ns, &DeleteParams::default()).await.ok() });
            }
        })
        .join();
    }
}

/// The shared fixture's spec (tests/fixtures/masbackend.yaml) with `image` on `port`.
pub fn base_spec(image: &str, port: u16) -> serde_json::Value {
    let mut spec = crate::fixtures::fixture("")["spec"].clone();
    spec["image"] = image.into();
    spec["port"] = port.into();
    // A second port on the same pod IPs, unused by the fake app.
    spec["internalPort"] = (port + 10_000).into();
    spec
}

pub fn live(mb: &MasBackend, color: Color, image: &str) -> bool {
    mb.status.as_ref().is_some_and(|s| {
        s.active_color == Some(color)
            && s.active_image.as_deref() == Some(image)
            && s.rollout.is_none()
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

pub async fn blue_live(env: &Env, port: u16) {
    env.apply(base_spec("api:1", port)).await;
    env.wait("blue live with api:1", 90, |mb| {
        live(mb, Color::Blue, "api:1")
    })
    .await;
    assert_eq!(env.selector_color("api").await.as_deref(), Some("blue"));
}
