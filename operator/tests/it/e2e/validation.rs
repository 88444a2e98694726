//! The CRD's validation messages, as kubectl shows them.

use std::collections::BTreeMap;

use crate::harness::cluster::client;
use crate::harness::cluster::kubectl_with_stdin;
use crate::harness::crd::install_crd;

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
        let out = kubectl_with_stdin(&["apply", "--dry-run=server", "-f", "-"], &manifest);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} was accepted");
        assert!(
            stderr.contains(message),
            "{name}: expected {message:?} in:\n{stderr}"
        );
    }
    // And a valid one passes the same path.
    let ok = "apiVersion: platform.myanalyticsschool.com/v1alpha1\nkind: MasBackend\nmetadata: {name: ok, namespace: default}\nspec: {image: 'a:1', traffic: {host: api.example.com, tlsSecretName: api-tls}}\n";
    let out = kubectl_with_stdin(&["apply", "--dry-run=server", "-f", "-"], ok);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
