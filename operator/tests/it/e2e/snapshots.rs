//! A release is an immutable snapshot: each color runs exactly what passed its gate, down to
//! the process env (per-release Secrets), whatever restarts its pods; migrations run as a Job
//! of the release before its pods; the pod spec carries what production needs; rollbacks go to
//! any kept revision; a rejected spec can be retried.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use mas_operator::crd::{Color, MasBackend, Outcome, Phase, Trigger};
use serde_json::json;

use super::secrets::live_secrets_hash;
use crate::harness::aws::secrets_manager;
use crate::harness::cluster::{kubeconfig_path, kubectl, kubectl_with_stdin};
use crate::harness::data_path::DataPath;
use crate::harness::env::{Env, base_spec, live};
use crate::harness::fake_app::app_port;

/// MAS_E2E_MARKER as each running pod's process got it, by color.
fn markers(dp: &DataPath, color: Color) -> BTreeMap<String, String> {
    dp.runner
        .pods()
        .into_iter()
        .filter(|(name, rec)| {
            name.starts_with(&format!("api-{color}-"))
                && rec.terminated_at.is_none()
                && !rec.env.is_empty()
        })
        .map(|(name, rec)| {
            (
                name,
                rec.env.get("MAS_E2E_MARKER").cloned().unwrap_or_default(),
            )
        })
        .collect()
}

async fn wait_markers(
    dp: &DataPath,
    color: Color,
    n: usize,
    want: &str,
    what: &str,
) -> BTreeMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = markers(dp, color);
        if m.len() == n && m.values().all(|v| v == want) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {color} processes have {m:?}, want {n} with {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_color_keeps_the_secret_values_it_was_released_with() {
    let sm = secrets_manager().await;
    let id = format!("e2e/{}/marker", uuid::Uuid::new_v4().simple());
    sm.create_secret()
        .name(&id)
        .secret_string(r#"{"MAS_E2E_MARKER":"one"}"#)
        .send()
        .await
        .unwrap();
    let dp = DataPath::new("snap-secrets").await;
    let mut spec = dp.server_spec("v1", 2);
    spec["secrets"] = json!([id]);
    spec["scaleDownDelaySeconds"] = json!(600);
    spec["health"]["successThreshold"] = json!(6);
    dp.env.apply(spec).await;
    dp.env
        .wait("blue live", 120, |mb| {
            live(mb, Color::Blue, "mas-server:v1")
        })
        .await;
    wait_markers(&dp, Color::Blue, 2, "one", "first release").await;

    // kubectl scale: the new live pod reads the live release's values.
    let out = std::process::Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args(["-n", &dp.env.ns, "scale", "mb/api", "--replicas=3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_markers(&dp, Color::Blue, 3, "one", "after kubectl scale").await;

    // Rotation in flight; meanwhile a live pod is deleted by hand: its replacement gets "one".
    sm.put_secret_value()
        .secret_id(&id)
        .secret_string(r#"{"MAS_E2E_MARKER":"two"}"#)
        .send()
        .await
        .unwrap();
    dp.env
        .wait("green rolling out the rotation", 30, |mb| {
            mb.status
                .as_ref()
                .and_then(|s| s.rollout.as_ref())
                .is_some_and(|r| r.trigger == Trigger::SecretsRotated)
        })
        .await;
    let victim = markers(&dp, Color::Blue).into_keys().next().unwrap();
    let pods: Api<Pod> = Api::namespaced(dp.env.client.clone(), &dp.env.ns);
    pods.delete(&victim, &DeleteParams::default())
        .await
        .expect("delete a live pod");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = markers(&dp, Color::Blue);
        if m.len() == 3 && !m.contains_key(&victim) {
            assert!(
                m.values().all(|v| v == "one"),
                "a restarted live pod read unreleased values: {m:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no replacement for {victim}: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mb = dp
        .env
        .wait("green live with the rotation", 120, |mb| {
            live(mb, Color::Green, "mas-server:v1")
                && mb
                    .status
                    .as_ref()
                    .is_some_and(|s| s.active_revision == Some(2))
        })
        .await;
    assert!(live_secrets_hash(&mb).is_some());
    wait_markers(&dp, Color::Green, 3, "two", "rotated release").await;
    assert!(
        markers(&dp, Color::Blue).values().all(|v| v == "one"),
        "the warm color still runs its own values"
    );

    // A rollback puts the old values back in front of traffic.
    dp.env
        .annotate("platform.myanalyticsschool.com/rollback", "undo-1")
        .await;
    dp.env
        .wait("blue live again", 30, |mb| {
            mb.status
                .as_ref()
                .is_some_and(|s| s.active_color == Some(Color::Blue))
        })
        .await;
    wait_markers(&dp, Color::Blue, 3, "one", "after the rollback").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_job_runs_each_release_before_its_pods() {
    let dp = DataPath::new("snap-migrate").await;
    let mut spec = dp.server_spec("v1", 1);
    spec["migration"] = json!({"command": ["mas-server", "migrate"], "timeoutSeconds": 60});
    dp.env.apply(spec.clone()).await;
    // The Job migrates the fresh database; the pods (MIGRATE_ON_START=false) only serve it.
    dp.env
        .wait("v1 live after its migration", 120, |mb| {
            live(mb, Color::Blue, "mas-server:v1")
        })
        .await;
    for r in ["MigrationStarted", "MigrationSucceeded", "TrafficSwitched"] {
        dp.env.event(r).await;
    }
    dp.wait_serving("v1", 30).await;
    let (status, body) = dp
        .call(reqwest::Method::GET, "/api/health", None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let job_pod = dp
        .runner
        .pods()
        .into_iter()
        .find(|(n, _)| n.starts_with("api-migrate-r1-"))
        .expect("the Job's pod ran");
    assert!(
        dp.runner.log(&job_pod.0).contains("migrat"),
        "{}",
        dp.runner.log(&job_pod.0)
    );
    let server_pod = dp
        .runner
        .pods()
        .into_iter()
        .find(|(n, _)| n.starts_with("api-blue-"))
        .unwrap();
    assert_eq!(
        server_pod.1.env.get("MIGRATE_ON_START").map(String::as_str),
        Some("false")
    );
    let jobs: Api<k8s_openapi::api::batch::v1::Job> =
        Api::namespaced(dp.env.client.clone(), &dp.env.ns);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the migration Job outlived its release"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A migration that fails: the release is rejected, its pods never start, v1 keeps serving.
    spec["image"] = json!("mas-server:v2");
    for e in spec["env"].as_array_mut().unwrap() {
        if e["name"] == "DATABASE_URL" {
            e["value"] = json!(
                dp.database_url
                    .replace(&dp.env.ns.replace('-', "_"), "no_such_database")
            );
        }
    }
    dp.env.apply(spec).await;
    let mb = dp
        .env
        .wait("Degraded by the failed migration", 120, |mb| {
            mb.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Degraded" && c.reason == "MigrationFailed")
            })
        })
        .await;
    let status = mb.status.unwrap();
    assert_eq!(status.active_color, Some(Color::Blue));
    assert_eq!(status.history[0].outcome, Outcome::Failed);
    assert!(
        status.colors.green.is_none(),
        "the failed release's pods never started"
    );
    let logs = dp.env.event("MigrationLogs").await;
    assert!(
        logs.contains("no_such_database"),
        "the Job's own error is in the Event: {logs}"
    );
    dp.wait_serving("v1", 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_service_account_registry_credentials_and_pass_restricted_security() {
    let sm = secrets_manager().await;
    let id = format!("e2e/{}/ghcr", uuid::Uuid::new_v4().simple());
    sm.create_secret()
        .name(&id)
        .secret_string(r#"{"registry":"ghcr.io","username":"bot","password":"token-one"}"#)
        .send()
        .await
        .unwrap();
    let port = app_port();
    let env = Env::new("snap-podspec", port).await;
    // Pods that break the restricted Pod Security Standard are refused in this namespace.
    let nss: Api<Namespace> = Api::all(env.client.clone());
    let label =
        json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}});
    nss.patch(&env.ns, &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(env.client.clone(), &env.ns);
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "mas-api"}})).unwrap();
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let mut spec = base_spec("api:1", port);
    spec["serviceAccountName"] = json!("mas-api");
    spec["imagePullSecretsFrom"] = json!([id]);
    spec["imagePullSecrets"] = json!([{"name": "team-registry"}]);
    let classes: Api<k8s_openapi::api::scheduling::v1::PriorityClass> =
        Api::all(env.client.clone());
    let class = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "mas-e2e-high"}, "value": 1000});
    classes
        .patch(
            "mas-e2e-high",
            &PatchParams::apply("mas-e2e").force(),
            &Patch::Apply(&class),
        )
        .await
        .unwrap();
    spec["podTemplate"] = json!({"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "priorityClassName": "mas-e2e-high"}});
    env.apply(spec).await;
    env.wait("blue live", 90, |mb| live(mb, Color::Blue, "api:1"))
        .await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let pod = pods
        .list(&ListParams::default().labels("app.kubernetes.io/instance=api"))
        .await
        .unwrap()
        .items
        .remove(0);
    let v = serde_json::to_value(&pod).unwrap();
    assert_eq!(v["spec"]["serviceAccountName"], "mas-api");
    assert_eq!(
        v["spec"]["imagePullSecrets"],
        json!([{"name": "team-registry"}, {"name": "api-pull"}])
    );
    assert_eq!(v["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(v["spec"]["priorityClassName"], "mas-e2e-high");
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let config = |s: Secret| -> serde_json::Value {
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
        serde_json::from_slice(&s.data.unwrap()[".dockerconfigjson"].0).unwrap()
    };
    let c = config(secrets.get("api-pull").await.unwrap());
    assert_eq!(c["auths"]["ghcr.io"]["auth"], "Ym90OnRva2VuLW9uZQ==");

    // A server-side dry run of the generated pod in the restricted namespace passes too.
    let d: Deployment = Api::namespaced(env.client.clone(), &env.ns)
        .get("api-blue")
        .await
        .unwrap();
    let template = serde_json::to_value(d.spec.unwrap().template).unwrap();
    let pod_manifest = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pss-check", "namespace": env.ns}, "spec": template["spec"]});
    let out = kubectl_with_stdin(
        &["apply", "--dry-run=server", "-f", "-"],
        &pod_manifest.to_string(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Rotated registry credentials are refreshed in place: no release, no pod restart.
    let before: MasBackend = env.mbs.get("api").await.unwrap();
    let generation = d.metadata.generation;
    sm.put_secret_value()
        .secret_id(&id)
        .secret_string(r#"{"registry":"ghcr.io","username":"bot","password":"token-two"}"#)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = config(secrets.get("api-pull").await.unwrap());
        if c["auths"]["ghcr.io"]["password"] == "token-two" {
            break;
        }
        assert!(Instant::now() < deadline, "pull Secret not refreshed: {c}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let after: MasBackend = env.mbs.get("api").await.unwrap();
    assert_eq!(
        before.status.unwrap().history.len(),
        after.status.unwrap().history.len(),
        "no new release"
    );
    let d: Deployment = Api::namespaced(env.client.clone(), &env.ns)
        .get("api-blue")
        .await
        .unwrap();
    assert_eq!(
        d.metadata.generation, generation,
        "the live pods were not touched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_to_a_named_revision_and_retry_a_rejected_spec() {
    let port = app_port();
    let env = Env::new("snap-history", port).await;
    let mut spec = base_spec("api:1", port);
    spec["scaleDownDelaySeconds"] = json!(1);
    env.apply(spec).await;
    env.wait("r1 live", 90, |mb| live(mb, Color::Blue, "api:1"))
        .await;
    for (i, image) in ["api:2", "api:3"].iter().enumerate() {
        env.set_image(image).await;
        let color = if i == 0 { Color::Green } else { Color::Blue };
        env.wait("next release live", 90, |mb| live(mb, color, image))
            .await;
    }
    // Named revision 1 (two releases back, cold): redeployed through the gate.
    env.annotate("platform.myanalyticsschool.com/rollback", "1")
        .await;
    let mb = env
        .wait("r1 live again", 90, |mb| {
            mb.status
                .as_ref()
                .is_some_and(|s| s.active_revision == Some(1) && s.rollout.is_none())
        })
        .await;
    let s = mb.status.unwrap();
    assert_eq!(s.active_image.as_deref(), Some("api:1"));
    assert_eq!(s.history[0].outcome, Outcome::RolledBack);
    assert_eq!(s.phase, Phase::RolledBack);
    assert!(
        s.rejected.iter().any(|r| r.revision == 3),
        "the release left is rejected"
    );
    env.event("HealthGatePassed").await;

    // A rejected spec (a failing image) is not retried until asked: then once.
    env.set_image("api:bad").await;
    env.wait("api:bad rejected", 90, |mb| {
        mb.status
            .as_ref()
            .is_some_and(|s| s.phase == Phase::Degraded)
    })
    .await;
    let attempts = |mb: &MasBackend| {
        mb.status.as_ref().map_or(0, |s| {
            s.history
                .iter()
                .filter(|h| h.release.image == "api:bad")
                .count()
        })
    };
    let before = attempts(&env.mbs.get("api").await.unwrap());
    env.annotate("platform.myanalyticsschool.com/retry", "r1")
        .await;
    env.wait("retried and rejected again", 90, |mb| {
        attempts(mb) == before + 1
            && mb
                .status
                .as_ref()
                .is_some_and(|s| s.phase == Phase::Degraded)
    })
    .await;
    env.event("RetryRequested").await;
    let mb = env.mbs.get("api").await.unwrap();
    let s = mb.status.unwrap();
    assert_eq!(s.history[0].trigger, Trigger::Retry);
    assert_eq!(s.acknowledged.retry.as_deref(), Some("r1"));
    // CI's wait for a failed release: Degraded=True, and Ready=False with a reason.
    let out = std::process::Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args([
            "-n",
            &env.ns,
            "wait",
            "mb/api",
            "--for=condition=Degraded",
            "--timeout=10s",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args([
            "-n",
            &env.ns,
            "get",
            "mb/api",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Ready")].reason}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ReleaseFailed");
}
