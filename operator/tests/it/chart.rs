//! The Helm chart ships the same CRD that the operator generates.

#[test]
fn chart_crd_matches_generated_crd() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let generated = std::fs::read_to_string(format!("{root}/crds/masbackend.yaml")).unwrap();
    let chart = std::fs::read_to_string(format!("{root}/charts/mas-operator/files/masbackend-crd.yaml"))
        .expect("charts/mas-operator/files/masbackend-crd.yaml is missing: run scripts/generate");
    assert!(
        generated == chart,
        "charts/mas-operator/files/masbackend-crd.yaml differs from crds/masbackend.yaml: run scripts/generate"
    );
}

#[test]
fn example_manifest_is_a_valid_masbackend() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let text = std::fs::read_to_string(format!("{root}/examples/masbackend.yaml")).unwrap();
    let mb: mas_operator::crd::MasBackend = serde_yaml::from_str(&text).unwrap();
    assert_eq!(mb.spec.secrets, vec!["prod/mas/backend".to_string()]);
    assert_eq!(mb.spec.health.path, "/api/health");
}
