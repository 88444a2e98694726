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
            "bad-image-reference",
            (
                "image: 'Registry/App:1 2'",
                "spec.image must be an image reference",
            ),
        ),
        (
            "image-url",
            (
                "image: 'https://ghcr.io/org/app:1'",
                "spec.image must be an image reference",
            ),
        ),
        (
            "same-ports",
            (
                "image: a:1\n  port: 9090",
                "spec.internalPort must differ from spec.port",
            ),
        ),
        (
            "manual-recreate",
            (
                "image: a:1\n  strategy: Recreate\n  promotion: Manual",
                "spec.promotion: Manual needs spec.strategy: BlueGreen",
            ),
        ),
        (
            "deadline-below-gate",
            (
                "image: a:1\n  progressDeadlineSeconds: 10\n  health: {periodSeconds: 5, successThreshold: 3}",
                "spec.progressDeadlineSeconds must exceed spec.health.periodSeconds",
            ),
        ),
        (
            "verification-cannot-fail",
            (
                "image: a:1\n  verification: {durationSeconds: 5, failureThreshold: 3}\n  health: {periodSeconds: 5}",
                "spec.verification.durationSeconds must be 0 (off) or at least",
            ),
        ),
        (
            "timeout-above-period",
            (
                "image: a:1\n  health: {periodSeconds: 2, timeoutSeconds: 5}",
                "spec.health.timeoutSeconds must not exceed spec.health.periodSeconds",
            ),
        ),
        (
            "operator-env",
            (
                "image: a:1\n  env: [{name: PORT, value: '80'}]",
                "spec.env must not set PORT",
            ),
        ),
        (
            "app-image-in-overlay",
            (
                "image: a:1\n  podTemplate: {spec: {containers: [{name: app, image: 'evil:1'}]}}",
                "spec.podTemplate.spec.containers[name=app].image must not be set",
            ),
        ),
        (
            "overlay-wrong-type",
            (
                "image: a:1\n  podTemplate: {spec: {nodeSelector: linux}}",
                "spec.podTemplate.spec.nodeSelector",
            ),
        ),
        (
            "bad-secret-id",
            (
                "image: a:1\n  secrets: ['prod mas']",
                "spec.secrets entries must be Secrets Manager names or ARNs",
            ),
        ),
        (
            "bad-pull-secret-name",
            (
                "image: a:1\n  imagePullSecrets: [{name: 'Not_A_Name'}]",
                "spec.imagePullSecrets[].name must be a Secret name",
            ),
        ),
        (
            "bad-ingress-class",
            (
                "image: a:1\n  traffic: {host: a.example.com, ingressClassName: 'Nginx Class'}",
                "spec.traffic.ingressClassName must be an IngressClass name",
            ),
        ),
        (
            "bad-annotation-key",
            (
                "image: a:1\n  traffic: {host: a.example.com, annotations: {'bad key': x}}",
                "spec.traffic.annotations keys must be annotation names",
            ),
        ),
        (
            "bad-sa",
            (
                "image: a:1\n  serviceAccountName: 'Mas API'",
                "spec.serviceAccountName must be a DNS-1123 subdomain",
            ),
        ),
        (
            "empty-migration",
            (
                "image: a:1\n  migration: {command: []}",
                "spec.migration.command must not be empty",
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
    let ok = "apiVersion: platform.myanalyticsschool.com/v1alpha1\nkind: MasBackend\nmetadata: {name: ok, namespace: default}\nspec: {image: 'ghcr.io/org/mas-server:main-1a2b3c4@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', traffic: {host: api.example.com, tlsSecretName: api-tls, ingressClassName: nginx, annotations: {nginx.ingress.kubernetes.io/proxy-read-timeout: '3600'}}, secrets: ['prod/mas/backend', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/mas-AbCdEf'], env: [{name: APP_ENV, value: production}], podTemplate: {spec: {nodeSelector: {kubernetes.io/os: linux}, containers: [{name: app, resources: {}}]}}, migration: {command: [mas-server, migrate]}}\n";
    let out = kubectl_with_stdin(&["apply", "--dry-run=server", "-f", "-"], ok);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What users apply: the example and both environments of deploy/ pass the apiserver's own
/// validation (CRD schema and CEL rules included) with a server-side dry run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_and_the_deploy_overlays_pass_a_server_side_dry_run() {
    let client = client().await;
    install_crd(&client).await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    // Objects in a namespace need it to exist (a dry run does not create it).
    for ns in ["mas", "mas-dev"] {
        let manifest = format!("{{apiVersion: v1, kind: Namespace, metadata: {{name: {ns}}}}}");
        let out = kubectl_with_stdin(&["apply", "-f", "-"], &manifest);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let example = std::fs::read_to_string(format!("{root}/examples/masbackend.yaml")).unwrap();
    let out = kubectl_with_stdin(&["apply", "--dry-run=server", "-f", "-"], &example);
    assert!(
        out.status.success(),
        "example: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for overlay in ["production", "development"] {
        let rendered = std::process::Command::new(crate::harness::cluster::kubectl())
            .args(["kustomize", &format!("{root}/deploy/{overlay}")])
            .output()
            .expect("kubectl kustomize");
        assert!(
            rendered.status.success(),
            "{}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let out = kubectl_with_stdin(
            &["apply", "--dry-run=server", "-f", "-"],
            &String::from_utf8_lossy(&rendered.stdout),
        );
        assert!(
            out.status.success(),
            "deploy/{overlay}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
