//! Two operator replicas, one Lease: only the leader writes; killing it mid-release hands the
//! release to the other replica within the lease duration, and the release finishes.

use std::time::{Duration, Instant};

use mas_operator::crd::{Color, Stage};

use crate::harness::cluster::kubeconfig_path;
use crate::harness::env::{Env, base_spec, live};
use crate::harness::fake_app::app_port;
use crate::harness::operator::Operator;

async fn metric(op: &Operator, name: &str) -> Option<f64> {
    let addr = op.http_addr().await;
    let text = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn wait_leader(op: &Operator, within: Duration) -> Duration {
    let t = Instant::now();
    loop {
        if metric(op, "mas_operator_leader").await == Some(1.0) {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < within,
            "no leadership within {within:?}; log {}",
            op.log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_mid_release_hands_the_release_over() {
    let port = app_port();
    let mut env = Env::new("ha", port).await;
    if let Some(op) = env.operator.take() {
        op.kill().await;
    }
    let kc = kubeconfig_path();
    let a = Operator::start_with_env(&env.ns, &kc, &[("POD_NAME", &format!("{}-a", env.ns))]);
    wait_leader(&a, Duration::from_secs(30)).await;
    let b = Operator::start_with_env(&env.ns, &kc, &[("POD_NAME", &format!("{}-b", env.ns))]);
    let mut spec = base_spec("api:1", port);
    spec["health"]["successThreshold"] = serde_json::json!(6);
    env.apply(spec).await;
    env.wait("blue live", 90, |mb| live(mb, Color::Blue, "api:1"))
        .await;
    assert_eq!(
        metric(&b, "mas_operator_leader").await,
        Some(0.0),
        "the standby does not lead"
    );
    assert_eq!(
        metric(&b, "mas_operator_reconciles_total").await,
        Some(0.0),
        "only the leader writes"
    );

    env.set_image("api:2").await;
    env.wait("green gating", 60, |mb| {
        mb.status
            .as_ref()
            .and_then(|s| s.rollout.as_ref())
            .is_some_and(|r| r.stage == Stage::Gating && r.gate_passes >= 1)
    })
    .await;
    a.kill().await;
    let failover = wait_leader(&b, Duration::from_secs(20)).await;
    env.wait("green live after the failover", 60, |mb| {
        live(mb, Color::Green, "api:2")
    })
    .await;
    assert!(
        metric(&b, "mas_operator_reconciles_total")
            .await
            .unwrap_or(0.0)
            > 0.0
    );
    eprintln!(
        "FIGURE leader killed -> standby leading: {:.2}s (lease 4 s)",
        failover.as_secs_f64()
    );
    env.operator = Some(b);
}
