//! Traefik (built by tests/cluster/build.sh) as the ingress controller of one test namespace:
//! out of cluster with the test cluster's kubeconfig, its Kubernetes Ingress provider routing
//! `Host: <traffic.host>` on a loopback entrypoint to the ready pod IPs behind the Ingress's
//! Service, as in a real cluster (EndpointSlices, its own propagation delay).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cluster::kubeconfig_path;

pub const INGRESS_CLASS: &str = "traefik";

pub fn traefik_bin() -> PathBuf {
    crate::cluster::cluster_env("MAS_TRAEFIK_BIN")
        .map(PathBuf::from)
        .expect("MAS_TRAEFIK_BIN not set and not in cluster.env: run tests/cluster/up.sh (scripts/test does)")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}

pub struct Traefik {
    child: tokio::process::Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Traefik {
    /// Starts Traefik watching `ns` and waits for its ping endpoint.
    pub async fn start(ns: &str) -> Self {
        let port = free_port();
        let ping = free_port();
        let log = std::env::temp_dir().join(format!("mas-traefik-{ns}.log"));
        let file = std::fs::File::create(&log).expect("traefik log");
        let child = tokio::process::Command::new(traefik_bin())
            .env("KUBECONFIG", kubeconfig_path())
            .args([
                &format!("--entrypoints.web.address=127.0.0.1:{port}"),
                &format!("--entrypoints.ping.address=127.0.0.1:{ping}"),
                "--ping=true",
                "--ping.entrypoint=ping",
                "--providers.kubernetesingress=true",
                &format!("--providers.kubernetesingress.namespaces={ns}"),
                &format!("--providers.kubernetesingress.ingressclass={INGRESS_CLASS}"),
                "--log.level=INFO",
                "--accesslog=true",
                "--global.checknewversion=false",
                "--global.sendanonymoususage=false",
            ])
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn traefik");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http
                .get(format!("http://127.0.0.1:{ping}/ping"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "traefik did not answer /ping; log: {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Self { child, port, log }
    }

    pub fn base(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
