//! Releases: first deploy, image bump through the gate, failing standby, operator restart,
//! manual promotion, abort, Recreate.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{Patch, PatchParams};
use mas_operator::crd::{Color, Phase};
use serde_json::json;

use crate::harness::cluster::{kubeconfig_path, kubectl};
use crate::harness::env::{Env, base_spec, blue_live, live};
use crate::harness::fake_app::app_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_release_gates_switches_and_scales_old_color_down() {
    let port = app_port();
    let env = Env::new("release", port).await;
    let mut spec = base_spec("api:1", port);
    spec["traffic"] =
        json!({"host": "api.example.com", "tlsSecretName": "api-tls", "ingressClassName": "nginx"});
    env.apply(spec).await;
    env.wait("blue live with api:1", 90, |mb| {
        live(mb, Color::Blue, "api:1")
    })
    .await;
    assert_eq!(env.selector_color("api").await.as_deref(), Some("blue"));

    // Ingress routes the host to the stable Service, with TLS, owned by the MasBackend.
    let ingresses: Api<Ingress> = Api::namespaced(env.client.clone(), &env.ns);
    let ing = ingresses.get("api").await.expect("ingress api");
    let v = serde_json::to_value(&ing).unwrap();
    assert_eq!(v["spec"]["rules"][0]["host"], "api.example.com");
    assert_eq!(
        v["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "api"
    );
    assert_eq!(v["spec"]["tls"][0]["secretName"], "api-tls");
    assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "MasBackend");
    assert_eq!(v["metadata"]["managedFields"][0]["manager"], "mas-operator");

    // Printer columns through the cluster's kubectl.
    let out = std::process::Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args(["-n", &env.ns, "get", "mb", "api"])
        .output()
        .expect("run the cluster's kubectl (set MAS_CLUSTER_BIN)");
    let table = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "ACTIVE", "IMAGE", "STANDBY", "READY", "STATUS", "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..3], ["api", "blue", "api:1"], "{table}");

    // Scale subresource drives spec.replicas and the live Deployment.
    let scale = json!({"spec": {"replicas": 3}});
    env.mbs
        .patch_scale("api", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .expect("scale");
    env.wait("3 live replicas", 30, |mb| {
        mb.status.as_ref().is_some_and(|s| s.active_replicas == 3)
    })
    .await;
    assert_eq!(env.replicas("api-blue").await, Some(3));
    let sc = env.mbs.get_scale("api").await.expect("get scale");
    assert_eq!(
        sc.status
            .as_ref()
            .and_then(|s| s.selector.clone())
            .as_deref(),
        Some("app.kubernetes.io/instance=api,platform.myanalyticsschool.com/color=blue")
    );

    let started = Instant::now();
    env.set_image("api:2").await;
    // While green rolls out and is gated, traffic stays on blue and the preview points at green.
    env.wait("green rolling", 30, |mb| {
        mb.status
            .as_ref()
            .and_then(|s| s.rollout.as_ref())
            .is_some_and(|r| r.color == Color::Green)
    })
    .await;
    assert_eq!(env.selector_color("api").await.as_deref(), Some("blue"));
    assert_eq!(
        env.selector_color("api-preview").await.as_deref(),
        Some("green")
    );

    let mb = env
        .wait("traffic switched to green", 90, |mb| {
            mb.status
                .as_ref()
                .is_some_and(|s| s.active_color == Some(Color::Green) && s.rollout.is_none())
        })
        .await;
    let switch_secs = started.elapsed().as_secs_f64();
    assert_eq!(env.selector_color("api").await.as_deref(), Some("green"));
    let status = mb.status.unwrap();
    assert_eq!(
        status.standby_color,
        Some(Color::Blue),
        "blue kept warm right after the switch"
    );
    assert_eq!(env.replicas("api-blue").await, Some(3));
    assert!(status.last_switch_time.is_some());
    assert_eq!(status.history.len(), 2);

    env.wait("blue scaled down after scaleDownDelaySeconds", 30, |mb| {
        mb.status
            .as_ref()
            .is_some_and(|s| s.phase == Phase::Stable && s.standby_color.is_none())
    })
    .await;
    assert_eq!(env.replicas("api-blue").await, Some(0));
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.selector_color("api-preview").await.is_some() {
        assert!(
            Instant::now() < deadline,
            "preview Service not removed once no standby is warm"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Removing the host removes the Ingress.
    let p = json!({"spec": {"traffic": null}});
    env.mbs
        .patch("api", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("drop traffic");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ingresses.get_opt("api").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "Ingress not removed after spec.traffic was dropped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for r in [
        "RolloutStarted",
        "GateStarted",
        "HealthGatePassed",
        "TrafficSwitched",
        "ScaledDown",
    ] {
        env.event(r).await;
    }
    eprintln!(
        "FIGURE image bump -> traffic switched: {switch_secs:.1}s (3 replicas, 2 gate rounds @1s)"
    );

    // The operator's own endpoint: /healthz and counters at /metrics.
    let addr = env.operator.as_ref().unwrap().http_addr().await;
    let get = |path: &str| {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("http://{addr}{path}"))
            .send()
    };
    assert_eq!(get("/healthz").await.unwrap().text().await.unwrap(), "ok");
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    let ns = &env.ns;
    for line in [
        format!("mas_traffic_switches_total{{namespace=\"{ns}\",name=\"api\"}} 1"),
        format!("mas_masbackend_ready{{namespace=\"{ns}\",name=\"api\"}} 1"),
        format!(
            "mas_release_total{{namespace=\"{ns}\",name=\"api\",trigger=\"NewImage\",outcome=\"Promoted\"}} 1"
        ),
    ] {
        assert!(metrics.contains(&line), "{line} missing from:\n{metrics}");
    }
    assert!(
        metrics.contains("mas_release_switch_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("mas_masbackend_info{{namespace=\"{ns}\",name=\"api\",strategy=\"BlueGreen\",phase=\"Stable\",active_color=\"green\",revision=\"2\"}} 1")), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_standby_keeps_traffic_degrades_and_rejects_image() {
    let port = app_port();
    let env = Env::new("failing", port).await;
    blue_live(&env, port).await;

    env.set_image("api:bad").await;
    let mb = env
        .wait("Degraded after failed gate", 90, |mb| {
            mb.status
                .as_ref()
                .is_some_and(|s| s.phase == Phase::Degraded)
        })
        .await;
    let status = mb.status.unwrap();
    assert_eq!(status.active_color, Some(Color::Blue));
    assert_eq!(status.active_image.as_deref(), Some("api:1"));
    assert_eq!(
        status
            .rejected
            .iter()
            .map(|r| r.image.as_str())
            .collect::<Vec<_>>(),
        ["api:bad"]
    );
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "HealthGateFailed")
    );
    assert!(
        degraded.message.contains("HTTP 503"),
        "{}",
        degraded.message
    );
    assert_eq!(
        env.selector_color("api").await.as_deref(),
        Some("blue"),
        "traffic never moved"
    );

    // The failing body is captured (an earlier round may have found a pod not listening yet).
    env.event_containing("HealthCheckFailed", "database unreachable")
        .await;
    let logs = env.event("StandbyLogs").await;
    assert!(logs.contains("api-green"), "names the standby pods: {logs}");
    eprintln!(
        "StandbyLogs note on kwok pods: {}",
        logs.lines().next().unwrap_or_default()
    );

    // Latched: the rejected image is not retried while spec.image stays the same.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mb = env.mbs.get("api").await.unwrap();
    assert_eq!(mb.status.as_ref().unwrap().history.len(), 2);
    assert_eq!(env.replicas("api-green").await, Some(0));

    // A fixed image releases normally and clears Degraded.
    env.set_image("api:3").await;
    let mb = env
        .wait("green live with api:3", 90, |mb| {
            live(mb, Color::Green, "api:3")
        })
        .await;
    let status = mb.status.unwrap();
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Degraded" && c.status == "False")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_restart_mid_rollout_finishes_the_release() {
    let port = app_port();
    let mut env = Env::new("restart", port).await;
    let mut spec = base_spec("api:1", port);
    spec["health"]["successThreshold"] = json!(4);
    env.apply(spec).await;
    env.wait("blue live", 90, |mb| live(mb, Color::Blue, "api:1"))
        .await;

    env.set_image("api:2").await;
    env.wait("green gating with a pass recorded", 60, |mb| {
        mb.status
            .as_ref()
            .and_then(|s| s.rollout.as_ref())
            .is_some_and(|r| r.color == Color::Green && r.gate_passes >= 1)
    })
    .await;
    env.restart_operator().await;
    let mb = env
        .wait("green live after restart", 90, |mb| {
            live(mb, Color::Green, "api:2")
        })
        .await;
    let s = mb.status.unwrap();
    assert_eq!(s.history[0].release.image, "api:2");
    assert_eq!(env.selector_color("api").await.as_deref(), Some("green"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_promotion_waits_for_promote_annotation() {
    let port = app_port();
    let env = Env::new("manual", port).await;
    let mut spec = base_spec("api:1", port);
    spec["promotion"] = json!("Manual");
    env.apply(spec).await;
    env.wait("blue live", 90, |mb| live(mb, Color::Blue, "api:1"))
        .await;
    env.set_image("api:2").await;
    env.wait("awaiting promotion", 60, |mb| {
        mb.status
            .as_ref()
            .is_some_and(|s| s.phase == Phase::AwaitingPromotion)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.selector_color("api").await.as_deref(), Some("blue"));
    env.annotate("platform.myanalyticsschool.com/promote", "go")
        .await;
    env.wait("green live", 30, |mb| live(mb, Color::Green, "api:2"))
        .await;
    assert_eq!(env.selector_color("api").await.as_deref(), Some("green"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_strategy_gates_in_place_and_restores_previous_image_on_failure() {
    let port = app_port();
    let env = Env::new("recreate", port).await;
    let mut spec = base_spec("api:1", port);
    spec["strategy"] = json!("Recreate");
    env.apply(spec).await;
    env.wait("blue live", 90, |mb| live(mb, Color::Blue, "api:1"))
        .await;
    env.set_image("api:2").await;
    env.wait("api:2 live in place", 90, |mb| {
        live(mb, Color::Blue, "api:2")
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.ns);
    assert!(
        deployments.get_opt("api-green").await.unwrap().is_none(),
        "one Deployment only"
    );
    env.set_image("api:bad").await;
    let mb = env
        .wait("Degraded", 90, |mb| {
            mb.status
                .as_ref()
                .is_some_and(|s| s.phase == Phase::Degraded)
        })
        .await;
    assert_eq!(
        mb.status
            .unwrap()
            .rejected
            .iter()
            .map(|r| r.image.as_str())
            .collect::<Vec<_>>(),
        ["api:bad"]
    );
    let d = deployments.get("api-blue").await.unwrap();
    let image = d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("api:2"), "previous image redeployed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_annotation_stops_a_rollout() {
    let port = app_port();
    let env = Env::new("abort", port).await;
    let mut spec = base_spec("api:1", port);
    spec["promotion"] = json!("Manual");
    env.apply(spec).await;
    env.wait("blue live", 90, |mb| live(mb, Color::Blue, "api:1"))
        .await;
    env.set_image("api:2").await;
    env.wait("awaiting promotion", 60, |mb| {
        mb.status
            .as_ref()
            .is_some_and(|s| s.phase == Phase::AwaitingPromotion)
    })
    .await;
    env.annotate("platform.myanalyticsschool.com/abort", "stop")
        .await;
    let mb = env
        .wait("aborted", 30, |mb| {
            mb.status
                .as_ref()
                .is_some_and(|s| s.phase == Phase::Degraded)
        })
        .await;
    let s = mb.status.unwrap();
    assert_eq!(s.acknowledged.abort.as_deref(), Some("stop"));
    assert_eq!(
        s.rejected
            .iter()
            .map(|r| r.image.as_str())
            .collect::<Vec<_>>(),
        ["api:2"]
    );
    assert_eq!(s.active_color, Some(Color::Blue));
    assert_eq!(env.replicas("api-green").await, Some(0));
    assert_eq!(env.selector_color("api").await.as_deref(), Some("blue"));
}
