//! Zero downtime on the real data path: the real server on the pod IPs behind Traefik, HTTP
//! load and Socket.IO meeting members (websocket and polling) going through the ingress the
//! whole time. Pass: zero failed requests, every member back in its meeting within the bound,
//! no acknowledged chat message lost (or stored twice), and the right version served after.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mas_operator::crd::{Color, Phase};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::cluster::{kubeconfig_path, kubectl};
use crate::harness::data_path::DataPath;
use crate::harness::env::live;
use crate::harness::load::{Load, Stats};
use crate::harness::members::Member;

/// A member must be back in its meeting this long after it was disconnected.
const RECONNECT_BOUND_MS: u64 = 15_000;

/// Load of the scenarios: scripts/bench-zero-downtime raises it (MAS_ZD_WORKERS HTTP workers,
/// MAS_ZD_MEMBER_PAIRS pairs of websocket + polling members); the defaults are the tests'.
fn load_setting(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One scenario at a time: each runs six debug-build server pods, Traefik and an operator,
/// and two of them at once on a 2-core machine starve the pods they measure.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Scenario {
    _alone: tokio::sync::MutexGuard<'static, ()>,
    dp: DataPath,
    load: Load,
    members: Vec<Member>,
    meeting: String,
    mentor: String,
    /// Offsets (from the load's start) of the switches, for the latency figures.
    switches: Vec<Duration>,
}

impl Scenario {
    /// Marks "a switch happens around now" for the switch-window latency figure.
    fn switching(&mut self) {
        self.switches.push(self.load.started.elapsed());
    }
}

/// The spec every scenario starts from: fast gate, drain shortly after a switch (Traefik's
/// provider throttle is 2 s), the old color warm for a while.
fn spec(dp: &DataPath, tag: &str, replicas: i32) -> Value {
    let mut s = dp.server_spec(tag, replicas);
    s["propagationSeconds"] = json!(4);
    s["connections"] = json!({"reconnectWithinSeconds": 3});
    s["scaleDownDelaySeconds"] = json!(600);
    s
}

async fn setup(test: &str, replicas: i32) -> Scenario {
    let alone = ONE_AT_A_TIME.lock().await;
    let dp = DataPath::new(test).await;
    dp.env.apply(spec(&dp, "v1", replicas)).await;
    dp.env
        .wait("blue live with v1", 120, |mb| {
            live(mb, Color::Blue, "mas-server:v1")
        })
        .await;
    dp.wait_serving("v1", 30).await;
    let (meeting, mentor, student) = dp.meeting().await;
    let base = dp.base();
    let mut members = Vec::new();
    for _ in 0..load_setting("MAS_ZD_MEMBER_PAIRS", 2) {
        for (token, transport) in [(&student, "websocket"), (&mentor, "polling")] {
            members.push(Member::join(&base, token, &meeting, transport).await);
        }
    }
    let workers = load_setting("MAS_ZD_WORKERS", 4);
    let load = Load::start(
        format!("{base}/api/colleges"),
        workers,
        2_000_000,
        // Bounded, and long enough for setup plus every step on a busy 2-core machine.
        Duration::from_secs(900),
    );
    Scenario {
        _alone: alone,
        dp,
        load,
        members,
        meeting,
        mentor,
        switches: Vec::new(),
    }
}

async fn stored_messages(dp: &DataPath, meeting: &str, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("/api/meetings/{meeting}/messages?limit=100{after}");
        let (status, body) = dp.call(Method::GET, &path, Some(token), None).await;
        assert_eq!(status, 200, "{body}");
        let items = body["data"]["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        out.extend(items);
        // The cursor is a number (the message's `cursor`).
        match body["data"]["nextCursor"].as_i64() {
            Some(c) => after = format!("&after={c}"),
            None => return out,
        }
    }
}

/// Stops the load and the members and checks the promise; returns the load figures.
async fn finish(s: Scenario, label: &str) -> Stats {
    let switches = s.switches.clone();
    let stats = s.load.stop().await;
    let mut acked = Vec::new();
    let mut reconnects: Vec<u64> = Vec::new();
    for m in s.members {
        let transport = m.transport.clone();
        let summary = m.stop().await;
        assert_eq!(
            summary["unacked"],
            json!([]),
            "{transport} member lost messages: {summary}"
        );
        assert_eq!(
            summary["stillDisconnected"], false,
            "{transport} member not back: {summary}"
        );
        for r in summary["reconnects"].as_array().unwrap() {
            let ms = r.as_u64().unwrap();
            assert!(
                ms <= RECONNECT_BOUND_MS,
                "{transport} member took {ms} ms to rejoin"
            );
            reconnects.push(ms);
        }
        acked.extend(summary["acked"].as_array().unwrap().iter().cloned());
    }
    let stored = stored_messages(&s.dp, &s.meeting, &s.mentor).await;
    let stored_ids: HashSet<String> = stored
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    for a in &acked {
        let id = a["id"].as_str().unwrap_or_default();
        assert!(stored_ids.contains(id), "acked message {a} not stored");
    }
    let client_ids: Vec<&str> = stored
        .iter()
        .filter_map(|m| m["clientMessageId"].as_str())
        .collect();
    let unique: HashSet<&&str> = client_ids.iter().collect();
    assert_eq!(
        unique.len(),
        client_ids.len(),
        "a re-sent message was stored twice"
    );
    reconnects.sort_unstable();
    let pct = |q: f64| {
        reconnects
            .get(((reconnects.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    // Switch windows: from 2 s before each switch to 10 s after; steady state: before the first.
    let first = switches.first().copied().unwrap_or(Duration::MAX);
    let steady = Duration::ZERO..first.saturating_sub(Duration::from_secs(2));
    let in_window = |at: Duration| {
        switches
            .iter()
            .any(|s| at + Duration::from_secs(2) >= *s && at <= *s + Duration::from_secs(10))
    };
    let window = Stats {
        latencies: stats
            .latencies
            .iter()
            .filter(|(at, _)| in_window(*at))
            .copied()
            .collect(),
        ..Default::default()
    };
    let ms = |d: Option<Duration>| {
        d.map_or("-".to_owned(), |d| {
            format!("{:.1}", d.as_secs_f64() * 1000.0)
        })
    };
    eprintln!(
        "FIGURE {label}: {} requests, {} failed; latency p50/p99 steady {}/{} ms, switch windows {}/{} ms; {} chat messages acked (all stored); {} reconnects, p50 {:?} ms, p99 {:?} ms",
        stats.requests,
        stats.failures.len(),
        ms(stats.quantile(0.5, steady.clone())),
        ms(stats.quantile(0.99, steady)),
        ms(window.quantile(0.5, Duration::ZERO..Duration::MAX)),
        ms(window.quantile(0.99, Duration::ZERO..Duration::MAX)),
        acked.len(),
        reconnects.len(),
        pct(0.5),
        pct(0.99)
    );
    assert!(
        stats.failures.is_empty(),
        "{label}: {} of {} requests failed through the ingress: {:?}",
        stats.failures.len(),
        stats.requests,
        &stats.failures[..stats.failures.len().min(10)]
    );
    stats
}

/// `kubectl wait --for=condition=Ready` as CI runs it; returns when it exited successfully.
async fn kubectl_wait_ready(ns: &str, timeout: &str) -> Instant {
    let out = tokio::process::Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args([
            "-n",
            ns,
            "wait",
            "mb/api",
            "--for=condition=Ready",
            &format!("--timeout={timeout}"),
        ])
        .output()
        .await
        .expect("run the cluster's kubectl");
    assert!(
        out.status.success(),
        "kubectl wait failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Instant::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn release_rollback_and_scale_down_never_reach_clients() {
    let mut s = setup("zd-release", 3).await;
    let ns = s.dp.env.ns.clone();

    // (a) image bump → gated switch; CI's `kubectl wait` returns only once v2 serves.
    s.dp.env.set_image("mas-server:v2").await;
    let waited = kubectl_wait_ready(&ns, "180s").await;
    let waited_at = waited - s.load.started;
    let first_v2 = s.load.first_seen("v2").unwrap_or_else(|| {
        let st = s.load.snapshot();
        panic!(
            "kubectl wait returned at {waited_at:?} but v2 never answered through the ingress: \
                 {} requests, first seen {:?}, last version {:?}, {} failures",
            st.requests,
            st.first_seen,
            st.last_version,
            st.failures.len()
        )
    });
    s.switches.push(first_v2);
    assert!(
        waited_at >= first_v2,
        "kubectl wait returned {:?} before the first v2 response",
        first_v2 - waited_at
    );
    eprintln!(
        "FIGURE kubectl wait Ready returned {:.2}s after the first v2 response through the ingress",
        (waited_at - first_v2).as_secs_f64()
    );
    let mb = s.dp.env.mbs.get("api").await.unwrap();
    assert!(live(&mb, Color::Green, "mas-server:v2"));
    s.dp.wait_serving("v2", 10).await;
    tokio::time::sleep(Duration::from_secs(8)).await; // the drain moves the members
    assert_eq!(s.load.snapshot().last_version.as_deref(), Some("v2"));

    // (b) rollback annotation → one selector write back to the warm blue.
    let t = Instant::now();
    s.switching();
    s.dp.env
        .annotate("platform.myanalyticsschool.com/rollback", "now-1")
        .await;
    s.dp.env
        .wait("blue live again", 30, |mb| {
            mb.status
                .as_ref()
                .is_some_and(|st| st.active_color == Some(Color::Blue))
        })
        .await;
    s.dp.wait_serving("v1", 15).await;
    eprintln!(
        "FIGURE rollback annotation -> v1 served through the ingress: {:.2}s",
        t.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(s.load.snapshot().last_version.as_deref(), Some("v1"));

    // (e) the old color's scale-down (its pods get preStop, SIGTERM, SIGKILL) under load.
    s.switching();
    let p = json!({"spec": {"scaleDownDelaySeconds": 2}});
    s.dp.env
        .mbs
        .patch("api", &Default::default(), &kube::api::Patch::Merge(&p))
        .await
        .unwrap();
    s.dp.env
        .wait("green scaled down", 60, |mb| {
            mb.status
                .as_ref()
                .is_some_and(|st| st.phase == Phase::RolledBack && st.standby_color.is_none())
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while s
        .dp
        .runner
        .pods()
        .values()
        .filter(|p| p.terminated_at.is_none())
        .count()
        > 3
    {
        assert!(
            Instant::now() < deadline,
            "green pods never terminated: {:?}",
            s.dp.runner.pods()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    finish(s, "image bump, rollback and scale-down (3 replicas)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_releases_never_reach_clients() {
    let mut s = setup("zd-failed", 2).await;

    // (c) a standby whose process exits: traffic never moves.
    let p = json!({"spec": {"image": "mas-server-crash:v3", "progressDeadlineSeconds": 20}});
    s.dp.env
        .mbs
        .patch("api", &Default::default(), &kube::api::Patch::Merge(&p))
        .await
        .unwrap();
    s.dp.env
        .wait("Degraded after the crashing standby", 90, |mb| {
            mb.status
                .as_ref()
                .is_some_and(|st| st.phase == Phase::Degraded)
        })
        .await;
    assert_eq!(
        s.dp.env.selector_color("api").await.as_deref(),
        Some("blue")
    );

    // (d) a release that passes the gate and then loses its Redis in the verification window.
    let redis: std::net::SocketAddr =
        s.dp.redis_url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .parse()
            .expect("REDIS_URL host:port");
    let proxy = crate::harness::tcp_proxy::Proxy::start(redis).await;
    let mut spec = spec(&s.dp, "v4", 2);
    for e in spec["env"].as_array_mut().unwrap() {
        if e["name"] == "REDIS_URL" {
            e["value"] = format!("redis://{}", proxy.addr).into();
        }
    }
    spec["verification"] = json!({"durationSeconds": 60, "failureThreshold": 2});
    s.dp.env.apply(spec).await;
    s.dp.wait_serving("v4", 120).await;
    s.switching();
    proxy.cut();
    let mb =
        s.dp.env
            .wait(
                "traffic back on blue after the failed verification",
                60,
                |mb| {
                    mb.status.as_ref().is_some_and(|st| {
                        st.active_color == Some(Color::Blue)
                            && st
                                .conditions
                                .iter()
                                .any(|c| c.type_ == "Degraded" && c.reason == "VerificationFailed")
                    })
                },
            )
            .await;
    let event = s.dp.env.event("VerificationFailed").await;
    assert!(
        event.contains("redis") || event.contains("503"),
        "the failing response is in the Event: {event}"
    );
    assert!(
        mb.status
            .unwrap()
            .rejected
            .iter()
            .any(|r| r.image == "mas-server:v4")
    );
    s.dp.wait_serving("v1", 20).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let stats = finish(s, "crashing standby and a post-switch failure").await;
    assert!(
        !stats.first_seen.contains_key("v3"),
        "the crashing image never served"
    );
    assert_eq!(stats.last_version.as_deref(), Some("v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_killed_during_a_switch_changes_nothing_for_clients() {
    let mut s = setup("zd-killed", 2).await;
    s.dp.env.set_image("mas-server:v2").await;
    s.dp.env
        .wait("green gating", 120, |mb| {
            mb.status
                .as_ref()
                .and_then(|st| st.rollout.as_ref())
                .is_some_and(|r| r.stage == mas_operator::crd::Stage::Gating)
        })
        .await;
    // (f) kill it mid-release, and again right after the switch.
    s.dp.env.restart_operator().await;
    s.dp.wait_serving("v2", 120).await;
    s.switching();
    s.dp.env.restart_operator().await;
    s.dp.env
        .wait("green live", 60, |mb| {
            live(mb, Color::Green, "mas-server:v2")
        })
        .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let stats = finish(s, "operator killed during a switch").await;
    assert_eq!(stats.last_version.as_deref(), Some("v2"));
}
