//! The operator works with only the RBAC in deploy/operator.yaml.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use mas_operator::crd::{Color, Phase};
use serde_json::json;

use super::secrets::{live_secrets_hash, pod_template, secret_data};
use crate::harness::aws::secrets_manager;
use crate::harness::env::{Env, base_spec, live};
use crate::harness::fake_app::app_port;
use crate::harness::operator::Operator;
use crate::harness::rbac::operator_sa_kubeconfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_works_with_only_its_rbac() {
    let port = app_port();
    let mut env = Env::new("rbac", port).await;
    if let Some(op) = env.operator.take() {
        op.kill().await;
    }
    let kc = operator_sa_kubeconfig(&env.client, &env.ns).await;
    env.operator = Some(Operator::start_with_env(
        &env.ns,
        &kc,
        &[
            ("MAS_OPERATOR_LEASE_NAMESPACE", "mas-system"),
            ("MAS_OPERATOR_LEASE_NAME", &format!("lease-{}", env.ns)),
        ],
    ));
    let sm = secrets_manager().await;
    let id = format!("e2e/{}/rbac", uuid::Uuid::new_v4().simple());
    sm.create_secret()
        .name(&id)
        .secret_string(r#"{"JWT_SECRET":"rbac"}"#)
        .send()
        .await
        .expect("create secret in moto");
    let mut spec = base_spec("api:1", port);
    spec["secrets"] = json!([id]);
    spec["scaleDownDelaySeconds"] = json!(1);
    spec["traffic"] = json!({"host": "api.example.com"});
    env.apply(spec).await;
    env.wait("blue live", 90, |mb| live(mb, Color::Blue, "api:1"))
        .await;
    env.set_image("api:bad").await;
    env.wait("Degraded", 90, |mb| {
        mb.status
            .as_ref()
            .is_some_and(|s| s.phase == Phase::Degraded)
    })
    .await;
    env.event("StandbyLogs").await;
    env.set_image("api:2").await;
    env.wait("green live, blue scaled down, preview removed", 90, |mb| {
        live(mb, Color::Green, "api:2")
            && mb.status.as_ref().is_some_and(|s| s.phase == Phase::Stable)
    })
    .await;
    let mb = env.mbs.get("api").await.unwrap();
    let hash = live_secrets_hash(&mb).expect("secrets hash");
    assert_eq!(
        secret_data(&env, &format!("api-secrets-{hash}")).await["JWT_SECRET"],
        "rbac"
    );
    // Dropping spec.secrets is a release without them; the old Secret stays for a rollback.
    let p = json!({"spec": {"secrets": []}});
    env.mbs
        .patch("api", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("drop secrets");
    env.wait("blue live without secrets, green scaled down", 90, |mb| {
        live(mb, Color::Blue, "api:2")
            && mb.status.as_ref().is_some_and(|s| s.phase == Phase::Stable)
            && live_secrets_hash(mb).is_none()
    })
    .await;
    let blue = pod_template(&env, "api-blue").await;
    assert!(
        blue["spec"]["containers"][0].get("envFrom").is_none(),
        "{blue}"
    );
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    assert!(
        secrets
            .get_opt(&format!("api-secrets-{hash}"))
            .await
            .unwrap()
            .is_some()
    );
    // The migration Job runs under the same RBAC (kwok completes its pod).
    let p =
        json!({"spec": {"image": "api:3", "migration": {"command": ["mas-server", "migrate"]}}});
    env.mbs
        .patch("api", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("add migration");
    env.wait("api:3 live after its migration", 90, |mb| {
        live(mb, Color::Green, "api:3")
    })
    .await;
    env.event("MigrationSucceeded").await;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(env.client.clone(), &env.ns);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !jobs
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "migration Job not deleted after the release"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = std::fs::read_to_string(&env.operator.as_ref().unwrap().log).unwrap_or_default();
    assert!(
        !log.contains("forbidden"),
        "operator hit RBAC denials:\n{log}"
    );
}
