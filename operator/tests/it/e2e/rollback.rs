//! Rollback: a warm one (one selector write) and a cold one (through the gate).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::runtime::watcher;
use mas_operator::crd::{Color, Phase};
use serde_json::json;

use crate::harness::crd::COLOR_LABEL;
use crate::harness::env::{Env, base_spec, live};
use crate::harness::fake_app::app_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_annotation_flips_the_active_service_in_one_write() {
    let port = app_port();
    let env = Env::new("rollback", port).await;
    let mut spec = base_spec("api:1", port);
    spec["scaleDownDelaySeconds"] = json!(600);
    env.apply(spec).await;
    env.wait("blue live", 90, |mb| live(mb, Color::Blue, "api:1"))
        .await;
    env.set_image("api:2").await;
    env.wait("green live", 90, |mb| live(mb, Color::Green, "api:2"))
        .await;

    // Record every change of the stable Service's selector from now on.
    let svcs: Api<Service> = Api::namespaced(env.client.clone(), &env.ns);
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen_w = seen.clone();
    let watch = tokio::spawn(async move {
        let cfg = watcher::Config::default().fields("metadata.name=api");
        let mut stream = watcher::watcher(svcs, cfg).boxed();
        while let Some(Ok(ev)) = stream.next().await {
            if let watcher::Event::Apply(s) | watcher::Event::InitApply(s) = ev {
                let c = s
                    .spec
                    .and_then(|s| s.selector)
                    .and_then(|s| s.get(COLOR_LABEL).cloned())
                    .unwrap_or_default();
                let mut v = seen_w.lock().unwrap();
                if v.last() != Some(&c) {
                    v.push(c);
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    env.annotate("platform.myanalyticsschool.com/rollback", "1")
        .await;
    let mb = env
        .wait("blue live again", 30, |mb| {
            mb.status.as_ref().is_some_and(|s| {
                s.active_color == Some(Color::Blue) && s.phase == Phase::RolledBack
            })
        })
        .await;
    let rollback_secs = started.elapsed().as_secs_f64();
    let status = mb.status.unwrap();
    assert_eq!(status.active_image.as_deref(), Some("api:1"));
    assert_eq!(
        status
            .rejected
            .iter()
            .map(|r| r.image.as_str())
            .collect::<Vec<_>>(),
        ["api:2"]
    );
    assert_eq!(status.acknowledged.rollback.as_deref(), Some("1"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    watch.abort();
    assert_eq!(
        *seen.lock().unwrap(),
        ["green", "blue"],
        "exactly one selector change, straight to blue"
    );

    // Re-applying the same annotation value changes nothing; spec.image (api:2) stays rejected.
    env.annotate("platform.myanalyticsschool.com/rollback", "1")
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mb = env.mbs.get("api").await.unwrap();
    let s = mb.status.unwrap();
    assert_eq!(s.active_color, Some(Color::Blue));
    assert!(s.rollout.is_none());
    assert_eq!(env.selector_color("api").await.as_deref(), Some("blue"));
    eprintln!(
        "FIGURE rollback annotation -> status shows blue live: {rollback_secs:.2}s (warm standby)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_scale_down_redeploys_previous_image_through_the_gate() {
    let port = app_port();
    let env = Env::new("coldrollback", port).await;
    let mut spec = base_spec("api:1", port);
    spec["scaleDownDelaySeconds"] = json!(1);
    env.apply(spec).await;
    env.wait("blue live", 90, |mb| live(mb, Color::Blue, "api:1"))
        .await;
    env.set_image("api:2").await;
    env.wait("green live, blue scaled down", 90, |mb| {
        live(mb, Color::Green, "api:2")
            && mb.status.as_ref().is_some_and(|s| s.phase == Phase::Stable)
    })
    .await;
    assert_eq!(env.replicas("api-blue").await, Some(0));

    env.annotate("platform.myanalyticsschool.com/rollback", "cold")
        .await;
    env.wait("rollback rolling out on blue", 30, |mb| {
        mb.status
            .as_ref()
            .and_then(|s| s.rollout.as_ref())
            .is_some_and(|r| r.color == Color::Blue && r.release.image == "api:1")
    })
    .await;
    assert_eq!(
        env.selector_color("api").await.as_deref(),
        Some("green"),
        "traffic waits for the gate"
    );
    let mb = env
        .wait("blue live again", 90, |mb| {
            mb.status.as_ref().is_some_and(|s| {
                s.active_color == Some(Color::Blue)
                    && s.active_image.as_deref() == Some("api:1")
                    && s.rollout.is_none()
            })
        })
        .await;
    let s = mb.status.unwrap();
    assert_eq!(s.phase, Phase::RolledBack);
    assert_eq!(
        s.rejected
            .iter()
            .map(|r| r.image.as_str())
            .collect::<Vec<_>>(),
        ["api:2"]
    );
    assert_eq!(env.selector_color("api").await.as_deref(), Some("blue"));
    env.event("HealthGatePassed").await;
}
