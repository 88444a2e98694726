//! The pod runner: a kubelet for the pods of one namespace labelled
//! `test.mas/kubelet=pod-runner` (kwok gives them an IP and phase Running, Ready=False; see
//! tests/cluster/kwok-pod-stages.yaml). For each such pod it runs the real process the image
//! stands for, bound to the pod IP (inside the run's network namespace), with the env the pod
//! spec gives it (`env`, `envFrom` Secrets and ConfigMaps, field refs), and behaves like a
//! kubelet where zero downtime depends on it:
//! - Ready only while the process answers the pod's readinessProbe (after its startupProbe);
//!   a failing livenessProbe or an exited process restarts it (restartCount);
//! - deleting a pod runs its preStop sleep, then SIGTERM, then SIGKILL after
//!   `terminationGracePeriodSeconds`, and only then removes the pod object;
//! - Job pods run their command once; the exit code decides Succeeded or Failed;
//! - stdout and stderr go to a file per pod (`logs`), for the test to read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Probe, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::sync::watch;

pub const RUNNER_LABEL: &str = "test.mas/kubelet";
pub const RUNNER_VALUE: &str = "pod-runner";

/// What an image (by repository, without tag) runs: a program and default arguments. The tag
/// is given to the process as `APP_VERSION`, as a real image bakes its version in.
#[derive(Clone, Debug)]
pub struct Program {
    pub path: PathBuf,
    pub args: Vec<String>,
}

/// Repository → program; also consulted for `command[0]` (e.g. `mas-server` in a Job).
pub type Images = HashMap<String, Program>;

/// The `mas-server` binary: `MAS_SERVER_BIN`, else next to this executable or one level up
/// (test binaries live in target/<profile>/deps; cargo builds every workspace binary for
/// `cargo test --workspace`).
pub fn mas_server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MAS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    [dir.join("mas-server"), dir.join("../mas-server")]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "mas-server not found near {}: cargo build --workspace, or set MAS_SERVER_BIN",
                exe.display()
            )
        })
}

/// `mas-server:<tag>` runs the server; `mas-server-crash:<tag>` is an image whose process exits
/// at once (its entrypoint is `false`).
pub fn default_images() -> Images {
    let server = Program {
        path: mas_server_bin(),
        args: vec![],
    };
    HashMap::from([
        ("mas-server".to_owned(), server),
        (
            "mas-server-crash".to_owned(),
            Program {
                path: PathBuf::from("/bin/false"),
                args: vec![],
            },
        ),
    ])
}

fn split_image(image: &str) -> (String, String) {
    let (repo, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (image, "latest"),
    };
    let repo = repo.rsplit('/').next().unwrap_or(repo);
    (repo.to_owned(), tag.to_owned())
}

/// A snapshot of what the runner does, for assertions.
#[derive(Clone, Debug, Default)]
pub struct PodRecord {
    pub ip: String,
    pub ready: bool,
    pub restarts: u32,
    pub log: PathBuf,
    /// The env the process got (for assertions on secrets), without the inherited PATH.
    pub env: BTreeMap<String, String>,
    pub terminated_at: Option<Instant>,
}

#[derive(Default)]
struct Shared {
    pods: HashMap<String, PodRecord>,
}

pub struct PodRunner {
    task: Option<tokio::task::JoinHandle<()>>,
    shared: Arc<Mutex<Shared>>,
    stop: watch::Sender<bool>,
    pub log_dir: PathBuf,
}

impl PodRunner {
    pub fn start(client: Client, ns: &str, images: Images) -> Self {
        let log_dir = std::env::temp_dir().join(format!("mas-pods-{ns}"));
        std::fs::create_dir_all(&log_dir).expect("pod log dir");
        let shared: Arc<Mutex<Shared>> = Arc::default();
        let (stop, stopped) = watch::channel(false);
        let ctx = Arc::new(RunCtx {
            client: client.clone(),
            ns: ns.to_owned(),
            images,
            log_dir: log_dir.clone(),
            shared: shared.clone(),
            stopped,
        });
        let task = tokio::spawn(supervise(ctx));
        Self {
            task: Some(task),
            shared,
            stop,
            log_dir,
        }
    }

    pub fn pods(&self) -> HashMap<String, PodRecord> {
        self.shared.lock().unwrap().pods.clone()
    }

    /// Log text of a pod (what `kubectl logs` would show).
    pub fn log(&self, pod: &str) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("{pod}.log"))).unwrap_or_default()
    }

    /// Stops every process now (SIGKILL), for test teardown.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

impl Drop for PodRunner {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct RunCtx {
    client: Client,
    ns: String,
    images: Images,
    log_dir: PathBuf,
    shared: Arc<Mutex<Shared>>,
    stopped: watch::Receiver<bool>,
}

/// Watches the namespace's runner pods and starts one task per pod.
async fn supervise(ctx: Arc<RunCtx>) {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let lp = ListParams::default().labels(&format!("{RUNNER_LABEL}={RUNNER_VALUE}"));
    let mut running: HashSet<String> = HashSet::new();
    let mut tasks = Vec::new();
    let mut stopped = ctx.stopped.clone();
    loop {
        if *stopped.borrow() {
            break;
        }
        if let Ok(list) = pods.list(&lp).await {
            for pod in list.items {
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                let has_ip = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.pod_ip.as_ref())
                    .is_some();
                if running.contains(&uid) || !has_ip {
                    continue;
                }
                running.insert(uid);
                tasks.push(tokio::spawn(run_pod(ctx.clone(), pod)));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stopped.changed() => {}
        }
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
}

fn container_port(c: &Container, name: &str) -> Option<i32> {
    c.ports
        .as_ref()?
        .iter()
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.container_port)
}

fn probe_url(ip: &str, c: &Container, probe: &Probe) -> Option<String> {
    let http = probe.http_get.as_ref()?;
    let port = match &http.port {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => *n,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => {
            container_port(c, s)?
        }
    };
    Some(format!(
        "http://{ip}:{port}{}",
        http.path.as_deref().unwrap_or("/")
    ))
}

/// Env of the container as the kubelet would resolve it.
async fn resolve_env(
    ctx: &RunCtx,
    pod: &Pod,
    c: &Container,
) -> Result<BTreeMap<String, String>, String> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let mut env = BTreeMap::new();
    for from in c.env_from.iter().flatten() {
        if let Some(s) = &from.secret_ref {
            match secrets.get_opt(&s.name).await.map_err(|e| e.to_string())? {
                Some(secret) => {
                    for (k, v) in secret.data.unwrap_or_default() {
                        env.insert(k, String::from_utf8_lossy(&v.0).into_owned());
                    }
                }
                None if s.optional == Some(true) => {}
                None => return Err(format!("secret {:?} not found", s.name)),
            }
        }
        if let Some(m) = &from.config_map_ref {
            match maps.get_opt(&m.name).await.map_err(|e| e.to_string())? {
                Some(cm) => env.extend(cm.data.unwrap_or_default()),
                None if m.optional == Some(true) => {}
                None => return Err(format!("configmap {:?} not found", m.name)),
            }
        }
    }
    for e in c.env.iter().flatten() {
        if let Some(v) = &e.value {
            env.insert(e.name.clone(), v.clone());
            continue;
        }
        let Some(from) = &e.value_from else {
            env.insert(e.name.clone(), String::new());
            continue;
        };
        if let Some(f) = &from.field_ref {
            let v = match f.field_path.as_str() {
                "metadata.name" => pod.metadata.name.clone(),
                "metadata.namespace" => pod.metadata.namespace.clone(),
                "status.podIP" => pod.status.as_ref().and_then(|s| s.pod_ip.clone()),
                _ => None,
            };
            env.insert(e.name.clone(), v.unwrap_or_default());
        } else if let Some(k) = &from.secret_key_ref {
            let secret = secrets.get_opt(&k.name).await.map_err(|e| e.to_string())?;
            match secret
                .and_then(|s| s.data)
                .and_then(|d| d.get(&k.key).cloned())
            {
                Some(v) => {
                    env.insert(e.name.clone(), String::from_utf8_lossy(&v.0).into_owned());
                }
                None if k.optional == Some(true) => {}
                None => return Err(format!("secret key {}/{} not found", k.name, k.key)),
            }
        } else if let Some(k) = &from.config_map_key_ref {
            let cm = maps.get_opt(&k.name).await.map_err(|e| e.to_string())?;
            match cm.and_then(|m| m.data).and_then(|d| d.get(&k.key).cloned()) {
                Some(v) => {
                    env.insert(e.name.clone(), v);
                }
                None if k.optional == Some(true) => {}
                None => return Err(format!("configmap key {}/{} not found", k.name, k.key)),
            }
        }
    }
    Ok(env)
}

fn program_for(ctx: &RunCtx, c: &Container) -> Result<(Program, Vec<String>, String), String> {
    let image = c.image.clone().unwrap_or_default();
    let (repo, tag) = split_image(&image);
    let entry = ctx
        .images
        .get(&repo)
        .cloned()
        .ok_or_else(|| format!("image {image:?} is not known to the pod runner"))?;
    let mut args = Vec::new();
    let program = match c.command.as_ref().and_then(|cmd| cmd.first()) {
        Some(cmd0) => {
            let p = ctx.images.get(cmd0).cloned().unwrap_or(Program {
                path: PathBuf::from(cmd0),
                args: vec![],
            });
            args.extend(c.command.iter().flatten().skip(1).cloned());
            p
        }
        None => {
            args.extend(entry.args.clone());
            entry
        }
    };
    args.extend(c.args.iter().flatten().cloned());
    Ok((program, args, tag))
}

async fn spawn(
    ctx: &RunCtx,
    pod_name: &str,
    ip: &str,
    c: &Container,
    env: &BTreeMap<String, String>,
) -> Result<Child, String> {
    let (program, args, tag) = program_for(ctx, c)?;
    let log_path = ctx.log_dir.join(format!("{pod_name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&program.path);
    cmd.args(&args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_VERSION", &tag)
        .envs(env)
        // The pod's own network: bind the pod IP, as a container binds 0.0.0.0 in its netns.
        .env("HOST", ip)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    // The server's assets, relative to the repository like in the image.
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    cmd.spawn()
        .map_err(|e| format!("starting {}: {e}", program.path.display()))
}

async fn patch_status(ctx: &RunCtx, pod: &str, status: serde_json::Value) {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let _ = pods
        .patch_status(
            pod,
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": status})),
        )
        .await;
}

fn ready_status(c: &Container, ready: bool, restarts: u32, started: bool) -> serde_json::Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let cond = if ready { "True" } else { "False" };
    json!({
        "conditions": [
            {"type": "Ready", "status": cond, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": cond, "lastTransitionTime": now},
        ],
        "containerStatuses": [{
            "name": c.name, "image": c.image, "imageID": "", "ready": ready, "started": started,
            "restartCount": restarts,
            "state": if started { json!({"running": {"startedAt": now}}) } else { json!({"waiting": {"reason": "ContainerCreating"}}) },
        }],
    })
}

async fn http_ok(client: &reqwest::Client, url: &str) -> bool {
    client
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

fn record(ctx: &RunCtx, pod: &str, f: impl FnOnce(&mut PodRecord)) {
    let mut shared = ctx.shared.lock().unwrap();
    f(shared.pods.entry(pod.to_owned()).or_default());
}

/// SIGTERM (preStop done), then SIGKILL after `grace`.
async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

async fn run_pod(ctx: Arc<RunCtx>, pod: Pod) {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let Some(c) = spec.containers.first().cloned() else {
        return;
    };
    let is_job = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "Job");
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut stopped = ctx.stopped.clone();
    // Env (retried while a referenced Secret is missing, like CreateContainerConfigError).
    let env = loop {
        match resolve_env(&ctx, &pod, &c).await {
            Ok(env) => break env,
            Err(e) => {
                record(&ctx, &name, |r| r.ip = format!("{ip} (waiting: {e})"));
                if *stopped.borrow() || pods.get_opt(&name).await.ok().flatten().is_none() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    record(&ctx, &name, |r| {
        r.ip = ip.clone();
        r.env = env.clone();
        r.log = ctx.log_dir.join(format!("{name}.log"));
    });
    if is_job {
        let code = match spawn(&ctx, &name, &ip, &c, &env).await {
            Ok(mut child) => child.wait().await.ok().and_then(|s| s.code()).unwrap_or(1),
            Err(e) => {
                std::fs::write(ctx.log_dir.join(format!("{name}.log")), e).ok();
                128
            }
        };
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let phase = if code == 0 { "Succeeded" } else { "Failed" };
        // terminationMessagePolicy FallbackToLogsOnError: the log tail of a failed container.
        let message = if code != 0
            && c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError")
        {
            let log = std::fs::read_to_string(ctx.log_dir.join(format!("{name}.log")))
                .unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(80)..].join("\n");
            let start = tail.len().saturating_sub(2048);
            let start = (start..tail.len())
                .find(|i| tail.is_char_boundary(*i))
                .unwrap_or(tail.len());
            tail[start..].to_owned()
        } else {
            String::new()
        };
        patch_status(
            &ctx,
            &name,
            json!({
                "phase": phase,
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
                "containerStatuses": [{
                    "name": c.name, "image": c.image, "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }, "finishedAt": now, "message": message}},
                }],
            }),
        )
        .await;
        return;
    }
    let startup = c.startup_probe.clone();
    let readiness = c.readiness_probe.clone();
    let liveness = c.liveness_probe.clone();
    let pre_stop = c
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        .and_then(|h| h.sleep.as_ref())
        .map_or(0, |s| s.seconds);
    let grace = spec.termination_grace_period_seconds.unwrap_or(30);
    let period = |p: &Option<Probe>, d: i32| {
        Duration::from_secs(
            u64::try_from(p.as_ref().and_then(|p| p.period_seconds).unwrap_or(d))
                .unwrap_or(1)
                .max(1),
        )
    };
    let threshold =
        |p: &Option<Probe>, d: i32| p.as_ref().and_then(|p| p.failure_threshold).unwrap_or(d);
    let mut restarts = 0u32;
    'lifecycle: loop {
        let mut child = match spawn(&ctx, &name, &ip, &c, &env).await {
            Ok(child) => child,
            Err(e) => {
                std::fs::write(ctx.log_dir.join(format!("{name}.log")), e).ok();
                return;
            }
        };
        patch_status(&ctx, &name, ready_status(&c, false, restarts, true)).await;
        let mut started = startup.is_none();
        let mut startup_failures = 0;
        let mut ready = false;
        let mut live_failures = 0;
        let mut ready_failures = 0;
        let mut next_ready = Instant::now();
        let mut next_live = Instant::now() + period(&liveness, 10);
        loop {
            // Deletion: preStop sleep (still serving, still in endpoints as terminating),
            // SIGTERM, SIGKILL after the grace period, then the pod object goes.
            let current = pods.get_opt(&name).await.ok().flatten();
            let deleting = current
                .as_ref()
                .is_none_or(|p| p.metadata.deletion_timestamp.is_some());
            if deleting || *stopped.borrow() {
                let hurry = *stopped.borrow() || current.is_none();
                if !hurry {
                    tokio::time::sleep(Duration::from_secs(u64::try_from(pre_stop).unwrap_or(0)))
                        .await;
                    let left =
                        Duration::from_secs(u64::try_from((grace - pre_stop).max(1)).unwrap_or(1));
                    terminate(&mut child, left).await;
                } else {
                    let _ = child.kill().await;
                }
                record(&ctx, &name, |r| {
                    r.ready = false;
                    r.terminated_at = Some(Instant::now());
                });
                // What a kubelet does once the containers are gone (also on teardown, so the
                // namespace can go: without a kubelet, a pod on a node is never removed).
                if current.is_some() {
                    let _ = pods
                        .delete(&name, &DeleteParams::default().grace_period(0))
                        .await;
                }
                break 'lifecycle;
            }
            if let Ok(Some(status)) = child.try_wait() {
                // Exited: not ready, restart after a short backoff (CrashLoopBackOff).
                let _ = status;
                restarts += 1;
                record(&ctx, &name, |r| {
                    r.ready = false;
                    r.restarts = restarts;
                });
                patch_status(&ctx, &name, ready_status(&c, false, restarts, false)).await;
                tokio::time::sleep(Duration::from_millis(500 * u64::from(restarts.min(10)))).await;
                continue 'lifecycle;
            }
            let now = Instant::now();
            if now >= next_ready {
                if !started {
                    let url = startup.as_ref().and_then(|p| probe_url(&ip, &c, p));
                    if url.is_none() || http_ok(&http, url.as_deref().unwrap_or_default()).await {
                        started = true;
                    } else {
                        startup_failures += 1;
                        if startup_failures >= threshold(&startup, 3) {
                            let _ = child.kill().await;
                        }
                    }
                    next_ready = now + period(&startup, 10).min(Duration::from_millis(500));
                } else {
                    let url = readiness.as_ref().and_then(|p| probe_url(&ip, &c, p));
                    let ok = match url {
                        Some(u) => http_ok(&http, &u).await,
                        None => true,
                    };
                    ready_failures = if ok { 0 } else { ready_failures + 1 };
                    let want = ok || (ready && ready_failures < threshold(&readiness, 3));
                    if want != ready {
                        ready = want;
                        record(&ctx, &name, |r| r.ready = ready);
                        patch_status(&ctx, &name, ready_status(&c, ready, restarts, true)).await;
                    }
                    next_ready = now + period(&readiness, 10);
                }
            }
            if started && now >= next_live {
                let url = liveness.as_ref().and_then(|p| probe_url(&ip, &c, p));
                let ok = match url {
                    Some(u) => http_ok(&http, &u).await,
                    None => true,
                };
                live_failures = if ok { 0 } else { live_failures + 1 };
                if live_failures >= threshold(&liveness, 3) {
                    let _ = child.kill().await;
                    live_failures = 0;
                }
                next_live = now + period(&liveness, 10);
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stopped.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn images_split_into_repository_and_tag() {
        assert_eq!(
            split_image("mas-server:v2"),
            ("mas-server".into(), "v2".into())
        );
        assert_eq!(
            split_image("ghcr.io/o/mas-server:main-1a2"),
            ("mas-server".into(), "main-1a2".into())
        );
        assert_eq!(
            split_image("localhost:5000/mas-server"),
            ("mas-server".into(), "latest".into())
        );
    }
}
