//! The `MasBackend` custom resource (group platform.myanalyticsschool.com, v1alpha1).

pub mod conditions;
mod schema;
mod spec;
mod status;

pub use conditions::{ConditionType, Reason};
pub use spec::{
    Connections, HealthCheck, IMAGE_PATTERN, MasBackend, MasBackendSpec, Migration, PodMetadata,
    PodTemplateOverlay, Promotion, SessionAffinity, Strategy, Traffic, Verification,
};
pub use status::*;

use kube::CustomResourceExt;

pub const GROUP: &str = "platform.myanalyticsschool.com";
pub const ROLLBACK_ANNOTATION: &str = "platform.myanalyticsschool.com/rollback";
pub const PROMOTE_ANNOTATION: &str = "platform.myanalyticsschool.com/promote";
pub const ABORT_ANNOTATION: &str = "platform.myanalyticsschool.com/abort";
/// Clears the rejection of the current spec's release once, so it is rolled out again.
pub const RETRY_ANNOTATION: &str = "platform.myanalyticsschool.com/retry";
/// Pod label carrying the color; the Services select on it.
pub const COLOR_LABEL: &str = "platform.myanalyticsschool.com/color";

/// The CRD rendered as YAML, exactly what `mas-operator crd` prints and crds/masbackend.yaml holds.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&MasBackend::crd())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKED_IN: &str = include_str!("../../../crds/masbackend.yaml");

    #[test]
    fn checked_in_crd_is_current() {
        let generated = crd_yaml().unwrap();
        assert!(
            generated == CHECKED_IN,
            "crds/masbackend.yaml is stale; regenerate with:\n  cargo run --bin mas-operator -- crd > crds/masbackend.yaml"
        );
    }

    #[test]
    fn crd_has_names_scale_and_columns() {
        let crd = MasBackend::crd();
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.names.short_names, Some(vec!["mb".to_owned()]));
        assert_eq!(crd.spec.scope, "Namespaced");
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        let scale = v
            .subresources
            .as_ref()
            .and_then(|s| s.scale.as_ref())
            .unwrap();
        assert_eq!(scale.spec_replicas_path, ".spec.replicas");
        let cols: Vec<_> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            cols,
            [
                "Active", "Image", "Standby", "Ready", "Status", "Revision", "Reason", "Age"
            ]
        );
    }

    #[test]
    fn schema_carries_cel_messages_and_defaults() {
        let json = serde_json::to_string(&MasBackend::crd()).unwrap();
        for msg in [
            "spec.image must not be empty",
            "spec.replicas must be >= 0",
            "spec.port must be between 1 and 65535",
            "spec.traffic.host must be a lowercase DNS-1123 hostname",
            "spec.image must be an image reference",
        ] {
            assert!(json.contains(msg), "missing CEL message {msg}");
        }
        assert!(json.contains(r#""default":"/api/health""#));
        assert!(json.contains(r#""default":8000"#));
        assert!(json.contains(r#""default":"success""#));
    }

    #[test]
    fn minimal_manifest_gets_defaults() {
        let mb: MasBackend = serde_yaml::from_str(
            "apiVersion: platform.myanalyticsschool.com/v1alpha1\nkind: MasBackend\nmetadata: {name: api, namespace: default}\nspec: {image: 'api:1'}\n",
        )
        .unwrap();
        assert_eq!(mb.spec.port, 8000);
        assert_eq!(mb.spec.replicas, 1);
        assert_eq!(mb.spec.health.path, "/api/health");
        assert_eq!(mb.spec.health.field, "success");
        assert_eq!(mb.spec.strategy, Strategy::BlueGreen);
        assert_eq!(mb.spec.promotion, Promotion::Auto);
        assert_eq!(mb.spec.internal_port, 9090);
        assert_eq!(mb.spec.verification.duration_seconds, 30);
        assert!(mb.spec.connections.drain_after_switch);
    }

    /// The CEL rule uses RE2 (no look-around), the same syntax as the `regex` crate, so the
    /// reference grammar is checked here on real image names.
    #[test]
    fn image_pattern_follows_the_distribution_reference_grammar() {
        let re = regex_lite::Regex::new(IMAGE_PATTERN).unwrap();
        for ok in [
            "nginx",
            "api:1",
            "ghcr.io/myanalyticsschool/mas-server:main-1a2b3c4",
            "localhost:5000/team/app_x:1.2.3",
            "registry.example.com/a/b/c@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "mas-server:v1.2.3-rc.1",
        ] {
            assert!(re.is_match(ok), "{ok} should be accepted");
        }
        for bad in [
            "",
            "Upper/App:1",
            "app:",
            "app:1 2",
            "-app:1",
            "app:bad tag",
            "app@sha256:short",
            "https://ghcr.io/app:1",
        ] {
            assert!(!re.is_match(bad), "{bad:?} should be refused");
        }
    }

    #[test]
    fn pod_template_overlay_schema_is_the_pod_spec_without_required_or_descriptions() {
        let crd = serde_json::to_value(MasBackend::crd()).unwrap();
        let overlay = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["podTemplate"]["properties"]["spec"];
        assert!(
            overlay["properties"]["nodeSelector"].is_object(),
            "{overlay}"
        );
        assert!(overlay["properties"]["tolerations"].is_object());
        assert!(overlay.get("required").is_none());
        let text = overlay["properties"].to_string();
        assert!(
            !text.contains("\"description\":\""),
            "descriptions stripped"
        );
    }
}
