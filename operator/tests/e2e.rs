//! End-to-end tests against a real control plane (etcd, kube-apiserver, controller-manager,
//! scheduler, kwok) started by tests/cluster/up.sh. Pods are fake (kwok) but get loopback IPs
//! 127.66.x.y, so each test binds real HTTP servers on the pod IPs and the operator's
//! production health gate probes them over TCP.
//!
//! Each test runs the real `mas-operator run` binary scoped to its own namespace.
//! Needs MAS_TEST_KUBECONFIG (and the cluster's kubectl via MAS_CLUSTER_BIN or PATH).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{conditions, wait::await_condition, watcher};
use kube::{Api, Client, CustomResourceExt};
use mas_operator::crd::{Color, MasBackend, Phase};
use serde_json::json;

const COLOR_LABEL: &str = "platform.myanalyticsschool.com/color";

fn kubeconfig_path() -> PathBuf {
    match std::env::var("MAS_TEST_KUBECONFIG") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "MAS_TEST_KUBECONFIG is not set: run scripts/test (it starts a cluster with tests/cluster/up.sh)"
        ),
    }
}

/// The cluster's kubectl: $MAS_CLUSTER_BIN, else the MAS_CLUSTER_BIN recorded by up.sh in
/// cluster.env next to the kubeconfig, else `kubectl` on PATH.
fn kubectl() -> PathBuf {
    if let Ok(bin) = std::env::var("MAS_CLUSTER_BIN") {
        return PathBuf::from(bin).join("kubectl");
    }
    let env_file = kubeconfig_path().with_file_name("cluster.env");
    std::fs::read_to_string(env_file)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("export MAS_CLUSTER_BIN=")
                    .map(|b| PathBuf::from(b.trim()).join("kubectl"))
            })
        })
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// A distinct app port per test, randomised per run: pod IPs (127.66.x.y) may be shared with
/// other clusters on this machine, the port keeps our fake app servers apart.
fn app_port() -> u16 {
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

async fn client() -> Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kc = Kubeconfig::read_from(kubeconfig_path()).expect("reading MAS_TEST_KUBECONFIG");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(cfg).expect("client")
}

async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = MasBackend::crd();
    let name = crd.metadata.name.clone().unwrap();
    crds.patch(
        &name,
        &PatchParams::apply("mas-e2e").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD established in time")
    .expect("CRD watch");
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
struct PodServers {
    task: tokio::task::JoinHandle<()>,
}

impl PodServers {
    fn start(client: Client, ns: &str, port: u16) -> Self {
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

/// `mas-operator run` as a child process scoped to one namespace.
struct Operator {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Operator {
    fn start(ns: &str) -> Self {
        Self::start_with(ns, &kubeconfig_path())
    }

    fn start_with(ns: &str, kubeconfig: &std::path::Path) -> Self {
        let log = std::env::temp_dir().join(format!("mas-e2e-operator-{ns}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mas-operator"))
            .arg("run")
            .env("KUBECONFIG", kubeconfig)
            .env("MAS_OPERATOR_NAMESPACE", ns)
            .env("MAS_OPERATOR_HTTP_ADDR", "127.0.0.1:0")
            // AWS_ENDPOINT_URL/AWS_REGION/credentials (moto) are inherited from the test env.
            .env("MAS_SECRETS_REFRESH_SECONDS", "1")
            .env("RUST_LOG", "info,mas_operator=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn mas-operator");
        Self { child, log }
    }

    /// Address of /healthz and /metrics, from the operator's startup log line.
    fn http_addr(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut text = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                text.push(c);
            }
        }
        let line = text
            .lines()
            .find(|l| l.contains("serving /healthz"))
            .expect("startup line in operator log");
        let at = line.find("addr=").expect("addr field") + "addr=".len();
        line[at..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

struct Env {
    client: Client,
    ns: String,
    mbs: Api<MasBackend>,
    operator: Option<Operator>,
    _servers: PodServers,
}

impl Env {
    async fn new(test: &str, port: u16) -> Self {
        let client = client().await;
        install_crd(&client).await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let ns = format!("e2e-{test}-{:x}", nanos % 0x00ff_ffff);
        let nss: Api<Namespace> = Api::all(client.clone());
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        nss.create(&PostParams::default(), &n)
            .await
            .expect("create namespace");
        let servers = PodServers::start(client.clone(), &ns, port);
        let operator = Some(Operator::start(&ns));
        let mbs = Api::namespaced(client.clone(), &ns);
        Self {
            client,
            ns,
            mbs,
            operator,
            _servers: servers,
        }
    }

    async fn apply(&self, spec: serde_json::Value) {
        let mb = json!({
            "apiVersion": "platform.myanalyticsschool.com/v1alpha1",
            "kind": "MasBackend",
            "metadata": {"name": "api"},
            "spec": spec,
        });
        self.mbs
            .patch(
                "api",
                &PatchParams::apply("e2e-user").force(),
                &Patch::Apply(&mb),
            )
            .await
            .expect("apply MasBackend");
    }

    async fn set_image(&self, image: &str) {
        let p = json!({"spec": {"image": image}});
        self.mbs
            .patch("api", &PatchParams::default(), &Patch::Merge(&p))
            .await
            .expect("set image");
    }

    async fn annotate(&self, key: &str, value: &str) {
        let p = json!({"metadata": {"annotations": {key: value}}});
        self.mbs
            .patch("api", &PatchParams::default(), &Patch::Merge(&p))
            .await
            .expect("annotate");
    }

    async fn wait<F: Fn(&MasBackend) -> bool>(&self, what: &str, secs: u64, pred: F) -> MasBackend {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let mb = self.mbs.get("api").await.expect("get MasBackend");
            if pred(&mb) {
                return mb;
            }
            if Instant::now() > deadline {
                let log = self
                    .operator
                    .as_ref()
                    .map(|o| o.log.display().to_string())
                    .unwrap_or_default();
                panic!(
                    "timed out after {secs}s waiting for {what}; status:\n{}\noperator log: {log}",
                    serde_yaml::to_string(&mb.status).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn selector_color(&self, svc: &str) -> Option<String> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), &self.ns);
        let s = api.get_opt(svc).await.expect("get service")?;
        s.spec?.selector?.get(COLOR_LABEL).cloned()
    }

    async fn replicas(&self, deployment: &str) -> Option<i32> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.ns);
        api.get_opt(deployment)
            .await
            .expect("get deployment")?
            .spec?
            .replicas
    }

    /// Waits until an event with `reason` exists (events and status are separate writes).
    async fn event(&self, reason: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let events = self.events().await;
            if let Some((_, note)) = events.iter().find(|e| e.0 == reason) {
                return note.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {reason} event; have {:?}",
                events.iter().map(|e| &e.0).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn events(&self) -> Vec<(String, String)> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        api.list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }

    async fn restart_operator(&mut self) {
        if let Some(op) = self.operator.take() {
            op.kill().await;
        }
        self.operator = Some(Operator::start(&self.ns));
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let nss: Api<Namespace> = Api::all(self.client.clone());
        let ns = self.ns.clone();
        // Best-effort cleanup on a fresh runtime thread; the test runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async { nss.delete(&ns, &DeleteParams::default()).await.ok() });
            }
        })
        .join();
    }
}

fn base_spec(image: &str, port: u16) -> serde_json::Value {
    json!({
        "image": image,
        "replicas": 2,
        "port": port,
        "health": {"successThreshold": 2, "failureThreshold": 2, "periodSeconds": 1, "timeoutSeconds": 1},
        "scaleDownDelaySeconds": 4,
        "progressDeadlineSeconds": 120,
    })
}

fn live(mb: &MasBackend, color: Color, image: &str) -> bool {
    mb.status.as_ref().is_some_and(|s| {
        s.active_color == Some(color)
            && s.active_image.as_deref() == Some(image)
            && s.rollout.is_none()
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

async fn blue_live(env: &Env, port: u16) {
    env.apply(base_spec("api:1", port)).await;
    env.wait("blue live with api:1", 90, |mb| {
        live(mb, Color::Blue, "api:1")
    })
    .await;
    assert_eq!(env.selector_color("api").await.as_deref(), Some("blue"));
}

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
        .wait("green live with api:2", 90, |mb| {
            live(mb, Color::Green, "api:2")
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
    let addr = env.operator.as_ref().unwrap().http_addr();
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
    assert!(
        metrics.contains("mas_operator_traffic_switches_total 2\n"),
        "{metrics}"
    );
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
    assert_eq!(status.rejected_images, ["api:bad"]);
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

    let failed = env.event("HealthCheckFailed").await;
    assert!(
        failed.contains("database unreachable"),
        "failing body captured: {failed}"
    );
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
    assert_eq!(status.rejected_images, ["api:2"]);
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
    assert_eq!(s.history[0].image, "api:2");
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
async fn invalid_manifests_are_rejected_by_kubectl_with_the_crd_messages() {
    let client = client().await;
    install_crd(&client).await;
    let cases: BTreeMap<&str, (&str, &str)> = BTreeMap::from([
        ("empty-image", ("image: ''", "spec.image must not be empty")),
        (
            "negative-replicas",
            ("image: a:1\n  replicas: -1", "spec.replicas must be >= 0"),
        ),
        (
            "bad-port",
            (
                "image: a:1\n  port: 70000",
                "spec.port must be between 1 and 65535",
            ),
        ),
        (
            "bad-host",
            (
                "image: a:1\n  traffic: {host: 'Bad_Host.example'}",
                "spec.traffic.host must be a lowercase DNS-1123 hostname",
            ),
        ),
        (
            "tls-no-host",
            (
                "image: a:1\n  traffic: {tlsSecretName: x}",
                "spec.traffic.tlsSecretName requires spec.traffic.host",
            ),
        ),
        (
            "bad-health-path",
            (
                "image: a:1\n  health: {path: health}",
                "spec.health.path must start with '/'",
            ),
        ),
    ]);
    for (name, (spec, message)) in cases {
        let manifest = format!(
            "apiVersion: platform.myanalyticsschool.com/v1alpha1\nkind: MasBackend\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  {spec}\n"
        );
        let mut child = std::process::Command::new(kubectl())
            .args(["--kubeconfig"])
            .arg(kubeconfig_path())
            .args(["apply", "--dry-run=server", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the cluster's kubectl (set MAS_CLUSTER_BIN)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(manifest.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} was accepted");
        assert!(
            stderr.contains(message),
            "{name}: expected {message:?} in:\n{stderr}"
        );
    }
    // And a valid one passes the same path.
    let ok = "apiVersion: platform.myanalyticsschool.com/v1alpha1\nkind: MasBackend\nmetadata: {name: ok, namespace: default}\nspec: {image: 'a:1', traffic: {host: api.example.com, tlsSecretName: api-tls}}\n";
    let mut child = std::process::Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args(["apply", "--dry-run=server", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ok.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    assert_eq!(mb.status.unwrap().rejected_images, ["api:bad"]);
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
    assert_eq!(s.rejected_images, ["api:2"]);
    assert_eq!(s.active_color, Some(Color::Blue));
    assert_eq!(env.replicas("api-green").await, Some(0));
    assert_eq!(env.selector_color("api").await.as_deref(), Some("blue"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_masbackend_garbage_collects_its_children() {
    let port = app_port();
    let env = Env::new("gc", port).await;
    blue_live(&env, port).await;
    env.mbs
        .delete("api", &DeleteParams::foreground())
        .await
        .expect("delete MasBackend");
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.ns);
    let services: Api<Service> = Api::namespaced(env.client.clone(), &env.ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lp = ListParams::default().labels("app.kubernetes.io/instance=api");
        let d = deployments.list(&lp).await.unwrap().items.len();
        let s = services.list(&lp).await.unwrap().items.len();
        if d == 0 && s == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "children left after 60s: {d} deployments, {s} services"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
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
            .is_some_and(|r| r.color == Color::Blue && r.image == "api:1")
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
    assert_eq!(s.rejected_images, ["api:2"]);
    assert_eq!(env.selector_color("api").await.as_deref(), Some("blue"));
    env.event("HealthGatePassed").await;
}

/// Applies deploy/operator.yaml's RBAC (not its Deployment) and returns a kubeconfig that
/// authenticates as the operator's ServiceAccount.
async fn operator_sa_kubeconfig(client: &Client, test_ns: &str) -> PathBuf {
    let manifest = include_str!("../deploy/operator.yaml");
    for doc in manifest.split("\n---\n") {
        let v: serde_json::Value = serde_yaml::from_str(doc).expect("deploy/operator.yaml parses");
        if v["kind"] == "Deployment" {
            continue;
        }
        let mut child = std::process::Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(kubeconfig_path())
            .args(["apply", "--server-side", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the cluster's kubectl (set MAS_CLUSTER_BIN)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(doc.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "applying {}: {}",
            v["kind"],
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), "mas-system");
    let tr: k8s_openapi::api::authentication::v1::TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
            .unwrap();
    let token = sas
        .create_token_request("mas-operator", &PostParams::default(), &tr)
        .await
        .expect("token for mas-operator")
        .status
        .expect("token status")
        .token;
    let admin: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(kubeconfig_path()).unwrap()).unwrap();
    let cluster = &admin["clusters"][0]["cluster"];
    let kc = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": cluster["server"].as_str().unwrap(),
            "certificate-authority-data": cluster["certificate-authority-data"].as_str().unwrap(),
        }}],
        "users": [{"name": "mas-operator", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "mas-operator"}}],
        "current-context": "c",
    });
    let path = std::env::temp_dir().join(format!("mas-e2e-sa-{test_ns}.kubeconfig"));
    std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_works_with_only_its_rbac() {
    let port = app_port();
    let mut env = Env::new("rbac", port).await;
    if let Some(op) = env.operator.take() {
        op.kill().await;
    }
    let kc = operator_sa_kubeconfig(&env.client, &env.ns).await;
    env.operator = Some(Operator::start_with(&env.ns, &kc));
    let sm = secrets_manager().await;
    let id = format!("e2e/{}/rbac", uuid::Uuid::new_v4().simple());
    sm.create_secret()
        .name(&id)
        .secret_string(r#"{"JWT_SECRET":"rbac"}"#)
        .send()
        .await
        .expect("create secret in moto");
    let mut spec = base_spec("api:1", port);
    spec["secrets"] = json!([id]);
    spec["scaleDownDelaySeconds"] = json!(1);
    spec["traffic"] = json!({"host": "api.example.com"});
    env.apply(spec).await;
    env.wait("blue live", 90, |mb| live(mb, Color::Blue, "api:1"))
        .await;
    env.set_image("api:bad").await;
    env.wait("Degraded", 90, |mb| {
        mb.status
            .as_ref()
            .is_some_and(|s| s.phase == Phase::Degraded)
    })
    .await;
    env.event("StandbyLogs").await;
    env.set_image("api:2").await;
    env.wait("green live, blue scaled down, preview removed", 90, |mb| {
        live(mb, Color::Green, "api:2")
            && mb.status.as_ref().is_some_and(|s| s.phase == Phase::Stable)
    })
    .await;
    assert_eq!(secret_data(&env).await["JWT_SECRET"], "rbac");
    // Dropping spec.secrets releases blue without them; the Secret goes once green is scaled down.
    let p = json!({"spec": {"secrets": []}});
    env.mbs
        .patch("api", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("drop secrets");
    env.wait("blue live without secrets, green scaled down", 90, |mb| {
        live(mb, Color::Blue, "api:2")
            && mb
                .status
                .as_ref()
                .is_some_and(|s| s.phase == Phase::Stable && s.active_secrets_hash.is_none())
    })
    .await;
    let blue = pod_template(&env, "api-blue").await;
    assert!(
        blue["spec"]["containers"][0].get("envFrom").is_none(),
        "{blue}"
    );
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let deadline = Instant::now() + Duration::from_secs(10);
    while secrets.get_opt("api-aws-secrets").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "Secret not deleted after spec.secrets was emptied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = std::fs::read_to_string(&env.operator.as_ref().unwrap().log).unwrap_or_default();
    assert!(
        !log.contains("forbidden"),
        "operator hit RBAC denials:\n{log}"
    );
}

/// Secrets Manager on moto, with the same env the operator child process inherits.
async fn secrets_manager() -> aws_sdk_secretsmanager::Client {
    for var in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(
            std::env::var(var).is_ok_and(|v| !v.is_empty()),
            "{var} is not set: run scripts/test (moto env)"
        );
    }
    mas_operator::aws_secrets::client().await
}

async fn pod_template(env: &Env, deployment: &str) -> serde_json::Value {
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &env.ns);
    let d = api.get(deployment).await.expect("get deployment");
    serde_json::to_value(d.spec.unwrap().template).unwrap()
}

async fn secret_data(env: &Env) -> BTreeMap<String, String> {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let s = api
        .get("api-aws-secrets")
        .await
        .expect("Secret api-aws-secrets");
    s.data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

const HASH_ANNOTATION: &str = mas_operator::build::SECRET_HASH_ANNOTATION;

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
    env.apply(spec).await;
    let mb = env
        .wait("blue live with api:1", 90, |mb| {
            live(mb, Color::Blue, "api:1")
        })
        .await;
    let hash1 = mb
        .status
        .unwrap()
        .active_secrets_hash
        .expect("live secrets hash in status");

    // The Secret holds the flattened keys, owned by the MasBackend and applied as mas-operator.
    let data = secret_data(&env).await;
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["DATABASE_URL", "JWT_SECRET"]
    );
    assert_eq!(data["DATABASE_URL"], "postgres://db/one");
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let v = serde_json::to_value(secrets.get("api-aws-secrets").await.unwrap()).unwrap();
    assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "MasBackend");
    assert_eq!(v["metadata"]["managedFields"][0]["manager"], "mas-operator");
    let blue = pod_template(&env, "api-blue").await;
    assert_eq!(
        blue["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"],
        "api-aws-secrets"
    );
    assert_eq!(
        blue["metadata"]["annotations"][HASH_ANNOTATION],
        hash1.as_str()
    );

    // Rotation: green gets the new values through the gate; blue's template is never touched.
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
            .is_some_and(|r| {
                r.color == Color::Green && r.trigger == mas_operator::crd::Trigger::SecretsRotated
            })
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
                && mb
                    .status
                    .as_ref()
                    .and_then(|s| s.active_secrets_hash.as_deref())
                    != Some(hash1.as_str())
        })
        .await;
    let rotate_secs = started.elapsed().as_secs_f64();
    let hash2 = mb
        .status
        .unwrap()
        .active_secrets_hash
        .expect("rotated hash");
    assert_eq!(env.selector_color("api").await.as_deref(), Some("green"));
    assert_eq!(secret_data(&env).await["DATABASE_URL"], "postgres://db/two");
    let green = pod_template(&env, "api-green").await;
    assert_eq!(
        green["metadata"]["annotations"][HASH_ANNOTATION],
        hash2.as_str()
    );
    assert_eq!(
        green["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"],
        "api-aws-secrets"
    );
    for r in ["HealthGatePassed", "TrafficSwitched"] {
        env.event(r).await;
    }
    eprintln!(
        "FIGURE secret rotation -> traffic switched: {rotate_secs:.1}s (2 replicas, 2 gate rounds @1s, 1s refresh)"
    );

    // A missing id: Degraded naming it, no value leaked, nothing else changes.
    let missing = format!("{id}-missing");
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.ns);
    let before: Vec<_> = deployments
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|d| (d.metadata.name, d.metadata.generation))
        .collect();
    let p = json!({"spec": {"secrets": [id, missing]}});
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
    assert_eq!(status.phase, Phase::Degraded);
    let note = env.event("SecretsUnavailable").await;
    assert!(note.contains(&missing), "{note}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.selector_color("api").await.as_deref(),
        Some("green"),
        "traffic unchanged"
    );
    let after: Vec<_> = deployments
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|d| (d.metadata.name, d.metadata.generation))
        .collect();
    assert_eq!(
        before, after,
        "no Deployment changed while secrets are unavailable"
    );
    assert_eq!(secret_data(&env).await["DATABASE_URL"], "postgres://db/two");

    // Fixed: Degraded clears without a new rollout (same values, same hash).
    let p = json!({"spec": {"secrets": [id]}});
    env.mbs
        .patch("api", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("drop missing id");
    let mb = env
        .wait("Degraded cleared", 30, |mb| {
            mb.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Degraded" && c.status == "False")
            })
        })
        .await;
    let status = mb.status.unwrap();
    assert_eq!(status.active_secrets_hash.as_deref(), Some(hash2.as_str()));
    assert!(status.rollout.is_none());
}
