//! The operator installed from deploy/operator.yaml (the chart rendered with
//! operator/deploy/values.yaml), and a kubeconfig acting as its ServiceAccount.

use std::path::PathBuf;

use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

use super::cluster::{kubeconfig_path, kubectl_with_stdin};

/// Applies everything in deploy/operator.yaml but its Deployment (the test runs the binary)
/// and returns a kubeconfig that authenticates as the operator's ServiceAccount.
pub async fn operator_sa_kubeconfig(client: &Client, test_ns: &str) -> PathBuf {
    let out = kubectl_with_stdin(
        &["apply", "-f", "-"],
        "{apiVersion: v1, kind: Namespace, metadata: {name: mas-system}}",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = include_str!("../../../deploy/operator.yaml");
    for doc in manifest.split("\n---\n") {
        let v: serde_json::Value = serde_yaml::from_str(doc).expect("deploy/operator.yaml parses");
        if v.get("kind").is_none() || v["kind"] == "Deployment" {
            continue;
        }
        let out = kubectl_with_stdin(&["apply", "--server-side", "-f", "-"], doc);
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
