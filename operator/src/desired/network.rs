use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use std::collections::BTreeMap;

use super::Owner;
use super::labels::color_selector;
use crate::crd::{Color, MasBackendSpec, SessionAffinity, Traffic};

/// Cookie the ingress controller sets to pin a client to one pod (Engine.IO long-polling keeps
/// its session in one process).
pub const AFFINITY_COOKIE: &str = "mas_affinity";

/// Ingress controllers whose sticky-session annotations the operator knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Controller {
    Traefik,
    Nginx,
    Other,
}

fn controller(traffic: &Traffic) -> Controller {
    match traffic.ingress_class_name.as_deref() {
        Some(c) if c.contains("traefik") => Controller::Traefik,
        Some(c) if c.contains("nginx") => Controller::Nginx,
        _ => Controller::Other,
    }
}

fn sticky(spec: &MasBackendSpec) -> Option<Controller> {
    let traffic = spec.traffic.as_ref()?;
    (traffic.session_affinity == SessionAffinity::Cookie).then(|| controller(traffic))
}

/// Traefik reads stickiness from the backend Service (kubernetesingress provider).
fn service_annotations(spec: &MasBackendSpec) -> Option<BTreeMap<String, String>> {
    (sticky(spec) == Some(Controller::Traefik)).then(|| {
        BTreeMap::from([
            (
                "traefik.ingress.kubernetes.io/service.sticky.cookie".into(),
                "true".into(),
            ),
            (
                "traefik.ingress.kubernetes.io/service.sticky.cookie.name".into(),
                AFFINITY_COOKIE.into(),
            ),
            (
                "traefik.ingress.kubernetes.io/service.sticky.cookie.httponly".into(),
                "true".into(),
            ),
            (
                "traefik.ingress.kubernetes.io/service.sticky.cookie.samesite".into(),
                "lax".into(),
            ),
        ])
    })
}

/// ingress-nginx reads stickiness from the Ingress.
fn ingress_annotations(spec: &MasBackendSpec) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if sticky(spec) == Some(Controller::Nginx) {
        for (k, v) in [
            ("nginx.ingress.kubernetes.io/affinity", "cookie"),
            ("nginx.ingress.kubernetes.io/affinity-mode", "balanced"),
            (
                "nginx.ingress.kubernetes.io/session-cookie-name",
                AFFINITY_COOKIE,
            ),
            ("nginx.ingress.kubernetes.io/session-cookie-samesite", "Lax"),
        ] {
            out.insert(k.to_owned(), v.to_owned());
        }
    }
    out
}

fn service(owner: &Owner, spec: &MasBackendSpec, name: String, color: Color) -> Service {
    let mut metadata = owner.meta(name);
    metadata.annotations = service_annotations(spec);
    Service {
        metadata,
        spec: Some(ServiceSpec {
            selector: Some(color_selector(&owner.name, color)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: spec.port,
                target_port: Some(IntOrString::String("http".to_owned())),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

/// `<name>-<color>`: always that color's pods.
pub fn color_service(owner: &Owner, spec: &MasBackendSpec, color: Color) -> Service {
    service(owner, spec, owner.color_name(color), color)
}

/// `<name>`: the stable Service; switching traffic is one write of its selector.
pub fn active_service(owner: &Owner, spec: &MasBackendSpec, active: Color) -> Service {
    service(owner, spec, owner.name.clone(), active)
}

/// `<name>-preview`: the color being released (or kept warm), for smoke tests before the switch.
pub fn preview_service(owner: &Owner, spec: &MasBackendSpec, color: Color) -> Service {
    service(owner, spec, format!("{}-preview", owner.name), color)
}

/// Ingress for `spec.traffic.host`, always routed to the stable Service.
pub fn ingress(owner: &Owner, spec: &MasBackendSpec) -> Option<Ingress> {
    let traffic = spec.traffic.as_ref()?;
    let host = traffic.host.clone()?;
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: owner.name.clone(),
            port: Some(ServiceBackendPort {
                name: Some("http".to_owned()),
                number: None,
            }),
        }),
        resource: None,
    };
    // User annotations win over the affinity defaults.
    let mut annotations = ingress_annotations(spec);
    annotations.extend(traffic.annotations.clone());
    let mut metadata = owner.meta(owner.name.clone());
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: traffic.ingress_class_name.clone(),
            tls: traffic.tls_secret_name.as_ref().map(|secret| {
                vec![IngressTLS {
                    hosts: Some(vec![host.clone()]),
                    secret_name: Some(secret.clone()),
                }]
            }),
            rules: Some(vec![IngressRule {
                host: Some(host),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".to_owned()),
                        path_type: "Prefix".to_owned(),
                        backend,
                    }],
                }),
            }]),
            ..Default::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::fixtures::mb;

    #[test]
    fn ingress_routes_host_to_stable_service_with_tls() {
        let m = mb(
            "  traffic: {host: api.example.com, tlsSecretName: api-tls, ingressClassName: nginx, annotations: {a: b}}\n",
        );
        let owner = Owner::of(&m).unwrap();
        let v = serde_json::to_value(ingress(&owner, &m.spec).unwrap()).unwrap();
        assert_eq!(v["spec"]["rules"][0]["host"], "api.example.com");
        assert_eq!(
            v["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
            "api"
        );
        assert_eq!(v["spec"]["tls"][0]["secretName"], "api-tls");
        assert_eq!(v["spec"]["tls"][0]["hosts"][0], "api.example.com");
        assert_eq!(v["spec"]["ingressClassName"], "nginx");
        assert_eq!(v["metadata"]["annotations"]["a"], "b");
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "MasBackend");
    }

    #[test]
    fn ingress_without_tls_or_host() {
        let m = mb("  traffic: {host: api.example.com}\n");
        let owner = Owner::of(&m).unwrap();
        let v = serde_json::to_value(ingress(&owner, &m.spec).unwrap()).unwrap();
        assert!(v["spec"].get("tls").is_none());
        let m = mb("  traffic: {ingressClassName: nginx}\n");
        assert!(ingress(&Owner::of(&m).unwrap(), &m.spec).is_none());
    }

    #[test]
    fn session_affinity_annotations_follow_the_ingress_class() {
        let m = mb("  traffic: {host: api.example.com, ingressClassName: traefik}\n");
        let owner = Owner::of(&m).unwrap();
        let svc = serde_json::to_value(active_service(&owner, &m.spec, Color::Blue)).unwrap();
        assert_eq!(
            svc["metadata"]["annotations"]["traefik.ingress.kubernetes.io/service.sticky.cookie"],
            "true"
        );
        let ing = serde_json::to_value(ingress(&owner, &m.spec).unwrap()).unwrap();
        assert!(ing["metadata"].get("annotations").is_none());

        let m = mb(
            "  traffic: {host: api.example.com, ingressClassName: nginx, annotations: {nginx.ingress.kubernetes.io/affinity-mode: persistent}}\n",
        );
        let owner = Owner::of(&m).unwrap();
        let ing = serde_json::to_value(ingress(&owner, &m.spec).unwrap()).unwrap();
        let a = &ing["metadata"]["annotations"];
        assert_eq!(a["nginx.ingress.kubernetes.io/affinity"], "cookie");
        assert_eq!(
            a["nginx.ingress.kubernetes.io/affinity-mode"], "persistent",
            "user wins"
        );
        let svc = serde_json::to_value(active_service(&owner, &m.spec, Color::Blue)).unwrap();
        assert!(svc["metadata"].get("annotations").is_none());

        let m = mb(
            "  traffic: {host: api.example.com, ingressClassName: traefik, sessionAffinity: None}\n",
        );
        let owner = Owner::of(&m).unwrap();
        let svc = serde_json::to_value(active_service(&owner, &m.spec, Color::Blue)).unwrap();
        assert!(svc["metadata"].get("annotations").is_none());
    }

    #[test]
    fn active_service_selects_live_color_on_named_port() {
        let m = mb("  port: 3000\n");
        let owner = Owner::of(&m).unwrap();
        let v = serde_json::to_value(active_service(&owner, &m.spec, Color::Green)).unwrap();
        assert_eq!(v["metadata"]["name"], "api");
        assert_eq!(
            v["spec"]["selector"]["platform.myanalyticsschool.com/color"],
            "green"
        );
        assert_eq!(v["spec"]["ports"][0]["port"], 3000);
        assert_eq!(v["spec"]["ports"][0]["targetPort"], "http");
    }
}
