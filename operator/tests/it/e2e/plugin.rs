//! `kubectl mas` (the kubectl-mas binary) against the real cluster, through kubectl's plugin
//! mechanism: the CI wait's exit codes, the on-call views, and the requests it writes.

use std::process::Output;
use std::time::{Duration, Instant};

use mas_operator::crd::{Color, Phase};

use crate::harness::cluster::{kubeconfig_path, kubectl};
use crate::harness::env::{Env, base_spec, live};
use crate::harness::fake_app::app_port;

/// `kubectl mas <args>` with kubectl finding the plugin on PATH, as a user would run it.
fn mas(ns: &str, args: &[&str]) -> Output {
    let plugin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_kubectl-mas"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        plugin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // kubectl takes no flags before a plugin's name; the plugin reads KUBECONFIG like kubectl.
    std::process::Command::new(kubectl())
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig_path())
        .arg("mas")
        .args(["-n", ns])
        .args(args)
        .output()
        .expect("kubectl mas")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_mas_waits_for_releases_and_writes_requests() {
    let port = app_port();
    let env = Env::new("plugin", port).await;
    let ns = env.ns.clone();
    let mut spec = base_spec("api:1", port);
    spec["scaleDownDelaySeconds"] = serde_json::json!(600);
    env.apply(spec).await;
    env.wait("blue live", 90, |mb| live(mb, Color::Blue, "api:1"))
        .await;
    let o = mas(&ns, &["status", "api"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("r1 (api:1) released on blue"),
        "{}",
        text(&o)
    );

    // CI: set the image, then wait: exit 0 once the new spec is released.
    let o = mas(&ns, &["set", "image", "api", "api:2"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = mas(&ns, &["status", "api"]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "in flight without --watch: {}",
        text(&o)
    );
    let t = Instant::now();
    let o = mas(&ns, &["status", "api", "--watch", "--timeout", "90s"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    eprintln!(
        "FIGURE kubectl mas status --watch returned after {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let mb = env.mbs.get("api").await.unwrap();
    assert!(live(&mb, Color::Green, "api:2"));

    // The on-call view names both colors, the conditions and the history.
    let o = mas(&ns, &["get", "api"]);
    let out = text(&o);
    for needle in [
        "blue",
        "green",
        "warm standby",
        "live",
        "Ready",
        "r2",
        "NewImage",
        "Promoted",
    ] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }
    let o = mas(&ns, &["history", "api"]);
    assert!(
        text(&o).contains("r1") && text(&o).contains("r2"),
        "{}",
        text(&o)
    );

    // A failed release: exit 1 with the reason and the events.
    mas(&ns, &["set", "image", "api", "api:bad"]);
    let o = mas(&ns, &["status", "api", "--watch", "--timeout", "90s"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("ReleaseFailed") && text(&o).contains("HealthCheckFailed"),
        "{}",
        text(&o)
    );

    // A timeout: exit 3.
    mas(&ns, &["pause", "api"]);
    mas(&ns, &["set", "image", "api", "api:3"]);
    let o = mas(&ns, &["status", "api", "--watch", "--timeout", "3s"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    mas(&ns, &["resume", "api"]);
    env.wait("api:3 live after resume", 90, |mb| {
        live(mb, Color::Blue, "api:3")
    })
    .await;

    // Rollback to a named revision through the plugin (r2, warm on green).
    let o = mas(&ns, &["rollback", "api", "--to", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mb = env.mbs.get("api").await.unwrap();
        let s = mb.status.unwrap();
        if s.active_revision == Some(2) && s.phase == Phase::RolledBack {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rollback --to 2 did not happen: {:?}",
            s.message
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Bad usage: exit 2 with usage.
    let o = mas(&ns, &["rollback"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
