//! Deleting a MasBackend garbage-collects what it owns.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{DeleteParams, ListParams};

use crate::harness::env::{Env, blue_live};
use crate::harness::fake_app::app_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_masbackend_garbage_collects_its_children() {
    let port = app_port();
    let env = Env::new("gc", port).await;
    blue_live(&env, port).await;
    env.mbs
        .delete("api", &DeleteParams::foreground())
        .await
        .expect("delete MasBackend");
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.ns);
    let services: Api<Service> = Api::namespaced(env.client.clone(), &env.ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lp = ListParams::default().labels("app.kubernetes.io/instance=api");
        let d = deployments.list(&lp).await.unwrap().items.len();
        let s = services.list(&lp).await.unwrap().items.len();
        if d == 0 && s == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "children left after 60s: {d} deployments, {s} services"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
