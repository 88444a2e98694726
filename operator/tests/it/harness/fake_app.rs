//! The fake app: a tiny HTTP server on every pod IP of a namespace, answering the health
//! path by image (images containing "bad" answer 503 like a broken backend). Fast tests of
//! the state machine run against it; the data-path tests run the real server instead.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{Router, extract::State, http::StatusCode, routing::get};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::json;

/// A distinct app port per test, randomised per run: pod IPs are reused by kwok across
/// namespaces, the port keeps each test's fake app servers apart.
pub fn app_port() -> u16 {
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU16> = std::sync::OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        std::sync::atomic::AtomicU16::new(20000 + u16::try_from(nanos % 9000).unwrap())
    });
    next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Behaviour of the fake app by image: images containing "bad" answer 503 like a broken backend.
fn respond(image: Option<&str>) -> (StatusCode, String) {
    match image {
        Some(img) if img.contains("bad") => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"success": false, "error": {"code": "db_down", "message": "database unreachable"}}).to_string(),
        ),
        Some(img) => (StatusCode::OK, json!({"success": true, "data": {"image": img}}).to_string()),
        None => (StatusCode::NOT_FOUND, json!({"success": false}).to_string()),
    }
}

type IpImages = Arc<Mutex<HashMap<String, String>>>;

async fn health(State((ips, ip)): State<(IpImages, String)>) -> (StatusCode, String) {
    let image = ips.lock().unwrap().get(&ip).cloned();
    respond(image.as_deref())
}

/// Serves the fake app on every pod IP of the namespace, following pods as they come and go.
pub struct PodServers {
    task: tokio::task::JoinHandle<()>,
}

impl PodServers {
    pub fn start(client: Client, ns: &str, port: u16) -> Self {
        let pods: Api<Pod> = Api::namespaced(client, ns);
        let task = tokio::spawn(async move {
            let ips: IpImages = Arc::default();
            let mut bound: HashSet<String> = HashSet::new();
            loop {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    let mut map = HashMap::new();
                    for p in list.items {
                        let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone());
                        let image = p
                            .spec
                            .as_ref()
                            .and_then(|s| s.containers.first())
                            .and_then(|c| c.image.clone());
                        if let (Some(ip), Some(image)) = (ip, image)
                            && p.metadata.deletion_timestamp.is_none()
                        {
                            map.insert(ip, image);
                        }
                    }
                    for ip in map.keys() {
                        if bound.contains(ip) {
                            continue;
                        }
                        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
                        match tokio::net::TcpListener::bind(addr).await {
                            Ok(l) => {
                                let app = Router::new()
                                    .route("/api/health", get(health))
                                    .with_state((ips.clone(), ip.clone()));
                                tokio::spawn(async move {
                                    let _ = axum::serve(l, app).await;
                                });
                                bound.insert(ip.clone());
                            }
                            Err(e) => eprintln!("pod server: cannot bind {addr}: {e}"),
                        }
                    }
                    *ips.lock().unwrap() = map;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        });
        Self { task }
    }
}

impl Drop for PodServers {
    fn drop(&mut self) {
        self.task.abort();
    }
}
