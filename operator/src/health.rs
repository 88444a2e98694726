//! Health gate (and post-switch verification): HTTP GET of the health path on every pod of a
//! color, straight to the pod IP (not through a Service), requiring a 2xx JSON body whose
//! `field` is `true`.

use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;

use crate::crd::{HealthCheck, MasBackendSpec};
use crate::desired::REVISION_ANNOTATION;
use crate::rollout::GateResult;

/// Longest body excerpt put into events and status.
const SNIPPET: usize = 300;

/// One pod to probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub pod: String,
    pub ip: String,
}

/// Checks one response: 2xx and `body[field] == true`.
pub fn evaluate(status: u16, body: &[u8], field: &str) -> Result<(), String> {
    let text = String::from_utf8_lossy(body);
    let snippet: String = text.chars().take(SNIPPET).collect();
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}: {snippet}"));
    }
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("HTTP {status}, body is not JSON ({e}): {snippet}"))?;
    match json.get(field) {
        Some(serde_json::Value::Bool(true)) => Ok(()),
        Some(other) => Err(format!(
            "HTTP {status}, \"{field}\" is {other}, not true: {snippet}"
        )),
        None => Err(format!("HTTP {status}, no \"{field}\" field: {snippet}")),
    }
}

/// HTTP client for probes, shared by every gate (building one per round cost a TLS setup
/// each time): no proxy (pod IPs are never behind one), no idle connections kept, so every
/// probe connects afresh as a new client would. Timeouts are per request.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
}

/// Probes every target once; passes only if `expected` targets exist and all pass.
pub async fn probe_targets(
    http: &reqwest::Client,
    targets: &[Target],
    expected: usize,
    port: i32,
    health: &HealthCheck,
) -> GateResult {
    if targets.len() < expected {
        return GateResult::Pending {
            reason: format!("{} of {expected} pods have an IP", targets.len()),
        };
    }
    let timeout = Duration::from_secs(u64::try_from(health.timeout_seconds).unwrap_or(2).max(1));
    let checks = targets.iter().map(|t| {
        let http = http.clone();
        let url = format!("http://{}{}", host_port(&t.ip, port), health.path);
        async move {
            let res = match http.get(&url).timeout(timeout).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match resp.bytes().await {
                        Ok(body) => evaluate(status, &body, &health.field),
                        Err(e) => Err(format!("reading body: {e}")),
                    }
                }
                Err(e) => Err(format!("GET {url}: {}", error_chain(&e))),
            };
            res.map_err(|e| format!("pod {} ({}): {e}", t.pod, t.ip))
        }
    });
    let failures: Vec<String> = join_all(checks)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if failures.is_empty() {
        GateResult::Pass
    } else {
        GateResult::Fail {
            detail: failures.join("; "),
        }
    }
}

/// reqwest's Display hides the cause ("error sending request"); include the whole chain.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

fn host_port(ip: &str, port: i32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Revision a pod runs (its template's revision annotation).
pub fn pod_revision(p: &Pod) -> Option<i64> {
    p.metadata
        .annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)?
        .parse()
        .ok()
}

/// Running, not terminating pods of release `revision` that have an IP.
pub fn targets_from_pods(pods: &[Pod], revision: i64) -> Vec<Target> {
    let mut out: Vec<Target> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| pod_revision(p) == Some(revision))
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.clone()?;
            Some(Target {
                pod: p.metadata.name.clone().unwrap_or_default(),
                ip,
            })
        })
        .collect();
    out.sort_by(|a, b| a.pod.cmp(&b.pod));
    out
}

/// One probe round over the pods of `color` running `revision`.
pub async fn probe_color(
    http: &reqwest::Client,
    pods: &[Pod],
    revision: i64,
    spec: &MasBackendSpec,
) -> GateResult {
    let expected = usize::try_from(spec.replicas).unwrap_or(0);
    probe_targets(
        http,
        &targets_from_pods(pods, revision),
        expected,
        spec.port,
        &spec.health,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{Router, http::StatusCode, routing::get};

    #[test]
    fn evaluate_requires_2xx_and_true_field() {
        assert_eq!(evaluate(200, br#"{"success":true}"#, "success"), Ok(()));
        assert!(
            evaluate(503, br#"{"success":true}"#, "success")
                .unwrap_err()
                .contains("HTTP 503")
        );
        assert!(
            evaluate(200, br#"{"success":false}"#, "success")
                .unwrap_err()
                .contains("is false")
        );
        assert!(
            evaluate(200, br#"{"ok":true}"#, "success")
                .unwrap_err()
                .contains("no \"success\"")
        );
        assert!(
            evaluate(200, b"<html>", "success")
                .unwrap_err()
                .contains("not JSON")
        );
        assert_eq!(evaluate(200, br#"{"ready":true}"#, "ready"), Ok(()));
    }

    fn client() -> reqwest::Client {
        http_client().unwrap()
    }

    async fn serve(status: StatusCode, body: &'static str) -> std::net::SocketAddr {
        let app = Router::new().route("/api/health", get(move || async move { (status, body) }));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        addr
    }

    #[tokio::test]
    async fn probes_real_http_servers() {
        let good = serve(StatusCode::OK, r#"{"success":true}"#).await;
        let bad = serve(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"success":false,"error":"db down"}"#,
        )
        .await;
        let health = HealthCheck::default();
        let t = |pod: &str| Target {
            pod: pod.into(),
            ip: "127.0.0.1".into(),
        };
        let pass = probe_targets(&client(), &[t("a")], 1, i32::from(good.port()), &health).await;
        assert_eq!(pass, GateResult::Pass);
        match probe_targets(&client(), &[t("b")], 1, i32::from(bad.port()), &health).await {
            GateResult::Fail { detail } => {
                assert!(detail.contains("pod b (127.0.0.1)"), "{detail}");
                assert!(detail.contains("HTTP 503"), "{detail}");
                assert!(detail.contains("db down"), "{detail}");
            }
            other => panic!("expected failure, got {other:?}"),
        }
        assert!(matches!(
            probe_targets(&client(), &[t("a")], 2, i32::from(good.port()), &health).await,
            GateResult::Pending { .. }
        ));
    }

    #[tokio::test]
    async fn connection_refused_is_a_failure() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let t = Target {
            pod: "c".into(),
            ip: "127.0.0.1".into(),
        };
        assert!(matches!(
            probe_targets(&client(), &[t], 1, i32::from(port), &HealthCheck::default()).await,
            GateResult::Fail { .. }
        ));
    }

    #[test]
    fn targets_skip_terminating_other_revision_and_ipless_pods() {
        let pod = |name: &str, revision: &str, ip: Option<&str>, deleting: bool| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {
                    "name": name,
                    "annotations": {REVISION_ANNOTATION: revision},
                    "deletionTimestamp": if deleting { Some("2026-01-01T00:00:00Z") } else { None },
                },
                "spec": {"containers": [{"name": "app", "image": "api:2"}]},
                "status": {"phase": "Running", "podIP": ip},
            }))
            .unwrap()
        };
        let pods = [
            pod("a", "2", Some("198.18.0.2"), false),
            pod("b", "1", Some("198.18.0.3"), false),
            pod("c", "2", None, false),
            pod("d", "2", Some("198.18.0.5"), true),
        ];
        assert_eq!(
            targets_from_pods(&pods, 2),
            [Target {
                pod: "a".into(),
                ip: "198.18.0.2".into()
            }]
        );
    }
}
