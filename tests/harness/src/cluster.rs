//! The test cluster started by tests/cluster/up.sh: kubeconfig, its kubectl, an admin client.

use std::path::PathBuf;
use std::process::{Output, Stdio};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// `MAS_TEST_KUBECONFIG` (the tests), else `KUBECONFIG` (the demo).
pub fn kubeconfig_path() -> PathBuf {
    ["MAS_TEST_KUBECONFIG", "KUBECONFIG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|p| !p.is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("MAS_TEST_KUBECONFIG is not set: run scripts/test (it starts a cluster with tests/cluster/up.sh)")
        })
}

/// `var` from the environment, else as recorded by up.sh in cluster.env next to the kubeconfig.
pub fn cluster_env(var: &str) -> Option<String> {
    if let Ok(v) = std::env::var(var) {
        return Some(v);
    }
    let text = std::fs::read_to_string(kubeconfig_path().with_file_name("cluster.env")).ok()?;
    let prefix = format!("export {var}=");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_owned()))
}

/// The cluster's kubectl (`MAS_CLUSTER_BIN`), else `kubectl` on PATH.
pub fn kubectl() -> PathBuf {
    cluster_env("MAS_CLUSTER_BIN")
        .map(|b| PathBuf::from(b).join("kubectl"))
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// An admin client of the test cluster.
pub async fn client() -> Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kc = Kubeconfig::read_from(kubeconfig_path()).expect("reading MAS_TEST_KUBECONFIG");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(cfg).expect("client")
}

/// Runs the cluster's kubectl with `args`, feeding `stdin` (a manifest) to it.
pub fn kubectl_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = std::process::Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args(args)
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
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
