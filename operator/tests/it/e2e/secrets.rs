//! AWS Secrets Manager values reach the pods as one immutable Secret per release; a rotation is
//! a gated release that never touches the live color's Secret; unreadable secrets degrade
//! without changing anything.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use mas_operator::crd::{Color, MasBackend, Phase, Trigger};
use serde_json::json;

use crate::harness::aws::secrets_manager;
use crate::harness::env::{Env, base_spec, live};
use crate::harness::fake_app::app_port;

const HASH_ANNOTATION: &str = mas_operator::desired::SECRET_HASH_ANNOTATION;

pub async fn pod_template(env: &Env, deployment: &str) -> serde_json::Value {
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &env.ns);
    let d = api.get(deployment).await.expect("get deployment");
    serde_json::to_value(d.spec.unwrap().template).unwrap()
}

/// Name of the release Secret a pod template reads.
pub fn env_from_secret(template: &serde_json::Value) -> String {
    template["spec"]["containers"][0]["envFrom"]
        .as_array()
        .and_then(|a| a.iter().find_map(|f| f["secretRef"]["name"].as_str()))
        .unwrap_or_default()
        .to_owned()
}

pub async fn secret_data(env: &Env, name: &str) -> BTreeMap<String, String> {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let s = api
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("Secret {name}: {e}"));
    s.data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

pub fn live_secrets_hash(mb: &MasBackend) -> Option<String> {
    mb.status
        .as_ref()?
        .active_release
        .as_ref()?
        .secrets_hash
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_secrets_reach_pods_and_a_rotation_is_a_gated_release() {
    let sm = secrets_manager().await;
    let id = format!("e2e/{}/app", uuid::Uuid::new_v4().simple());
    sm.create_secret()
        .name(&id)
        .secret_string(r#"{"DATABASE_URL":"postgres://db/one","JWT_SECRET":"jwt-one"}"#)
        .send()
        .await
        .expect("create secret in moto");
    let port = app_port();
    let env = Env::new("secrets", port).await;
    let mut spec = base_spec("api:1", port);
    spec["secrets"] = json!([id]);
    spec["scaleDownDelaySeconds"] = json!(600);
    env.apply(spec).await;
    let mb = env
        .wait("blue live with api:1", 90, |mb| {
            live(mb, Color::Blue, "api:1")
        })
        .await;
    let hash1 = live_secrets_hash(&mb).expect("live secrets hash in status");
    let secret1 = format!("api-secrets-{hash1}");

    // The release's Secret holds the flattened keys, immutable, owned by the MasBackend.
    let data = secret_data(&env, &secret1).await;
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["DATABASE_URL", "JWT_SECRET"]
    );
    assert_eq!(data["DATABASE_URL"], "postgres://db/one");
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let v = serde_json::to_value(secrets.get(&secret1).await.unwrap()).unwrap();
    assert_eq!(v["immutable"], true);
    assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "MasBackend");
    assert_eq!(v["metadata"]["managedFields"][0]["manager"], "mas-operator");
    let blue = pod_template(&env, "api-blue").await;
    assert_eq!(env_from_secret(&blue), secret1);
    assert_eq!(
        blue["metadata"]["annotations"][HASH_ANNOTATION],
        hash1.as_str()
    );
    // Immutable means immutable, for anyone.
    let p = json!({"data": {"DATABASE_URL": "eA=="}});
    let err = secrets
        .patch(&secret1, &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect_err("an immutable Secret refuses data changes");
    assert!(format!("{err}").contains("immutable"), "{err}");

    // Rotation: green gets a new Secret through the gate; blue's template and Secret stay.
    sm.put_secret_value()
        .secret_id(&id)
        .secret_string(r#"{"DATABASE_URL":"postgres://db/two","JWT_SECRET":"jwt-one"}"#)
        .send()
        .await
        .expect("rotate secret in moto");
    let started = Instant::now();
    env.wait("green rolling out the rotated secrets", 30, |mb| {
        mb.status
            .as_ref()
            .and_then(|s| s.rollout.as_ref())
            .is_some_and(|r| r.color == Color::Green && r.trigger == Trigger::SecretsRotated)
    })
    .await;
    assert_eq!(
        env.selector_color("api").await.as_deref(),
        Some("blue"),
        "traffic waits for the gate"
    );
    assert_eq!(
        pod_template(&env, "api-blue").await,
        blue,
        "live color's pod template unchanged"
    );
    let mb = env
        .wait("green live with the rotated secrets", 90, |mb| {
            live(mb, Color::Green, "api:1")
                && live_secrets_hash(mb).as_deref() != Some(hash1.as_str())
        })
        .await;
    let rotate_secs = started.elapsed().as_secs_f64();
    let hash2 = live_secrets_hash(&mb).expect("rotated hash");
    let secret2 = format!("api-secrets-{hash2}");
    assert_eq!(env.selector_color("api").await.as_deref(), Some("green"));
    assert_eq!(
        secret_data(&env, &secret2).await["DATABASE_URL"],
        "postgres://db/two"
    );
    assert_eq!(
        secret_data(&env, &secret1).await["DATABASE_URL"],
        "postgres://db/one",
        "the old release's values are kept for a rollback"
    );
    let green = pod_template(&env, "api-green").await;
    assert_eq!(
        green["metadata"]["annotations"][HASH_ANNOTATION],
        hash2.as_str()
    );
    assert_eq!(env_from_secret(&green), secret2);
    for r in ["HealthGatePassed", "TrafficSwitched"] {
        env.event(r).await;
    }
    eprintln!(
        "FIGURE secret rotation -> traffic switched: {rotate_secs:.1}s (2 replicas, 2 gate rounds @1s, 1s refresh)"
    );

    // A rollback restores the old values too: blue (warm) still reads secret1.
    env.annotate("platform.myanalyticsschool.com/rollback", "previous-1")
        .await;
    let mb = env
        .wait("blue live again", 30, |mb| {
            mb.status
                .as_ref()
                .is_some_and(|s| s.active_color == Some(Color::Blue))
        })
        .await;
    assert_eq!(live_secrets_hash(&mb).as_deref(), Some(hash1.as_str()));
    assert_eq!(
        env_from_secret(&pod_template(&env, "api-blue").await),
        secret1
    );

    // A missing id: Degraded naming it, no value leaked, nothing else changes.
    let missing = format!("{id}-missing");
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.ns);
    let generations = || async {
        deployments
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|d| (d.metadata.name, d.metadata.generation))
            .collect::<Vec<_>>()
    };
    let before = generations().await;
    let p = json!({"spec": {"secrets": [id, missing], "image": "api:2"}});
    env.mbs
        .patch("api", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("add missing id");
    let mb = env
        .wait("Degraded: secrets unavailable", 30, |mb| {
            mb.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Degraded" && c.status == "True" && c.reason == "SecretsUnavailable"
                })
            })
        })
        .await;
    let status = mb.status.unwrap();
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert!(
        degraded.message.contains(&missing),
        "names the id: {}",
        degraded.message
    );
    assert!(
        !degraded.message.contains("postgres://"),
        "no values in messages"
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "SecretsUnavailable")
    );
    assert_eq!(status.phase, Phase::Degraded);
    assert!(
        status.rollout.is_none(),
        "no release starts without its secrets"
    );
    let note = env.event("SecretsUnavailable").await;
    assert!(note.contains(&missing), "{note}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.selector_color("api").await.as_deref(),
        Some("blue"),
        "traffic unchanged"
    );
    assert_eq!(
        before,
        generations().await,
        "no Deployment changed while secrets are unavailable"
    );

    // Fixed: Degraded clears and the new image is released.
    let p = json!({"spec": {"secrets": [id]}});
    env.mbs
        .patch("api", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("drop missing id");
    env.wait("api:2 live", 90, |mb| live(mb, Color::Green, "api:2"))
        .await;
}
