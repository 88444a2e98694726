//! The test cluster started by tests/cluster/up.sh: kubeconfig, its kubectl, an admin client.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{conditions, wait::await_condition};
use kube::{Api, Client, CustomResourceExt};
use mas_operator::crd::MasBackend;

pub const COLOR_LABEL: &str = "platform.myanalyticsschool.com/color";

pub fn kubeconfig_path() -> PathBuf {
    match std::env::var("MAS_TEST_KUBECONFIG") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "MAS_TEST_KUBECONFIG is not set: run scripts/test (it starts a cluster with tests/cluster/up.sh)"
        ),
    }
}

/// The cluster's kubectl: $MAS_CLUSTER_BIN, else the MAS_CLUSTER_BIN recorded by up.sh in
/// cluster.env next to the kubeconfig, else `kubectl` on PATH.
pub fn kubectl() -> PathBuf {
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

pub async fn client() -> Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kc = Kubeconfig::read_from(kubeconfig_path()).expect("reading MAS_TEST_KUBECONFIG");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(cfg).expect("client")
}

pub async fn install_crd(client: &Client) {
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
