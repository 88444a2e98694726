//! The Helm chart: ships the generated CRD, renders operator/deploy/operator.yaml exactly,
//! honours every value it declares (each one changes the output) and refuses wrong ones.
//! Uses the helm binary tests/cluster/build.sh builds (`MAS_TOOLS_BIN`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn helm() -> PathBuf {
    mas_harness::cluster::cluster_env("MAS_TOOLS_BIN")
        .map(|b| PathBuf::from(b).join("helm"))
        .expect("MAS_TOOLS_BIN is not set: run scripts/test (tests/cluster/build.sh builds helm)")
}

/// `helm template` of the chart with `args`; Err(stderr) when helm refuses.
fn render(args: &[&str]) -> Result<String, String> {
    let out = Command::new(helm())
        .args([
            "template",
            "mas-operator",
            &format!("{ROOT}/charts/mas-operator"),
            "-n",
            "mas-system",
            "--kube-version",
            "1.36.0",
        ])
        .args(args)
        .output()
        .expect("run helm");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The rendered documents, without the generated control key (random on every render).
fn docs(text: &str) -> Vec<serde_json::Value> {
    text.split("\n---\n")
        .filter_map(|d| serde_yaml::from_str::<serde_json::Value>(d).ok())
        .filter(|v| v.get("kind").is_some())
        .map(|mut v| {
            if v["kind"] == "Secret" {
                v["data"] = serde_json::Value::Null;
            }
            v
        })
        .collect()
}

#[test]
fn chart_crd_matches_generated_crd() {
    let generated = std::fs::read_to_string(format!("{ROOT}/crds/masbackend.yaml")).unwrap();
    let chart = std::fs::read_to_string(format!(
        "{ROOT}/charts/mas-operator/files/masbackend-crd.yaml"
    ))
    .expect("charts/mas-operator/files/masbackend-crd.yaml is missing: run scripts/generate");
    assert!(
        generated == chart,
        "charts/mas-operator/files/masbackend-crd.yaml differs from crds/masbackend.yaml: run scripts/generate"
    );
}

#[test]
fn example_manifest_is_a_valid_masbackend() {
    let text = std::fs::read_to_string(format!("{ROOT}/examples/masbackend.yaml")).unwrap();
    let mb: mas_operator::crd::MasBackend = serde_yaml::from_str(&text).unwrap();
    assert_eq!(mb.spec.secrets, vec!["prod/mas/backend".to_string()]);
    assert_eq!(mb.spec.health.path, "/api/health");
}

#[test]
fn deploy_manifest_is_the_rendered_chart() {
    let rendered = render(&["-f", &format!("{ROOT}/operator/deploy/values.yaml")]).unwrap();
    let checked_in =
        std::fs::read_to_string(format!("{ROOT}/operator/deploy/operator.yaml")).unwrap();
    assert_eq!(
        docs(&checked_in),
        docs(&rendered),
        "operator/deploy/operator.yaml is stale: run scripts/generate"
    );
    let kinds: BTreeSet<String> = docs(&checked_in)
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(kinds.contains("ClusterRole") && kinds.contains("Deployment"));
    assert!(
        !kinds.contains("CustomResourceDefinition"),
        "installed separately"
    );
}

/// Leaf paths of values.yaml (lists and empty maps are leaves).
fn leaves(v: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(x, &p, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

#[test]
fn every_declared_value_changes_the_output() {
    // A value, what it needs set first, how it is changed: the render must differ from the one
    // with only the prerequisites.
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "image.repository",
            &[],
            &[
                "--set",
                "image.repository=registry.example.com/mas-operator",
            ],
        ),
        ("image.tag", &[], &["--set", "image.tag=9.9.9"]),
        (
            "image.pullPolicy",
            &[],
            &["--set", "image.pullPolicy=Always"],
        ),
        (
            "imagePullSecrets",
            &[],
            &["--set", "imagePullSecrets[0].name=ghcr"],
        ),
        ("replicaCount", &[], &["--set", "replicaCount=3"]),
        (
            "leaderElection.enabled",
            &["--set", "replicaCount=1"],
            &["--set", "leaderElection.enabled=false"],
        ),
        (
            "leaderElection.leaseSeconds",
            &[],
            &["--set", "leaderElection.leaseSeconds=30"],
        ),
        ("watchNamespace", &[], &["--set", "watchNamespace=team-a"]),
        ("logLevel", &[], &["--set", "logLevel=debug"]),
        (
            "secretsRefreshSeconds",
            &[],
            &["--set", "secretsRefreshSeconds=120"],
        ),
        (
            "controlKey.existingSecret",
            &[],
            &["--set", "controlKey.existingSecret=mine"],
        ),
        ("aws.region", &[], &["--set", "aws.region=eu-west-1"]),
        (
            "aws.endpointUrl",
            &[],
            &["--set", "aws.endpointUrl=http://moto:5000"],
        ),
        (
            "serviceAccount.create",
            &["--set", "serviceAccount.name=existing"],
            &["--set", "serviceAccount.create=false"],
        ),
        (
            "serviceAccount.name",
            &[],
            &["--set", "serviceAccount.name=ops"],
        ),
        (
            "serviceAccount.annotations",
            &[],
            &[
                "--set",
                "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/x",
            ],
        ),
        ("rbac.create", &[], &["--set", "rbac.create=false"]),
        (
            "rbac.aggregateToViewEdit",
            &[],
            &["--set", "rbac.aggregateToViewEdit=false"],
        ),
        ("installCRDs", &[], &["--set", "installCRDs=false"]),
        ("keepCRDs", &[], &["--set", "keepCRDs=false"]),
        ("podAnnotations", &[], &["--set", "podAnnotations.a=b"]),
        ("podLabels", &[], &["--set", "podLabels.team=platform"]),
        (
            "priorityClassName",
            &[],
            &["--set", "priorityClassName=high"],
        ),
        (
            "topologySpreadConstraints",
            &[],
            &[
                "--set",
                "topologySpreadConstraints[0].maxSkew=1",
                "--set",
                "topologySpreadConstraints[0].topologyKey=zone",
                "--set",
                "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
            ],
        ),
        (
            "extraEnv",
            &[],
            &[
                "--set-string",
                "extraEnv[0].name=X",
                "--set-string",
                "extraEnv[0].value=1",
            ],
        ),
        ("extraArgs", &[], &["--set", "extraArgs[0]=--verbose"]),
        (
            "resources.requests.cpu",
            &[],
            &["--set", "resources.requests.cpu=100m"],
        ),
        (
            "resources.requests.memory",
            &[],
            &["--set", "resources.requests.memory=128Mi"],
        ),
        (
            "resources.limits.memory",
            &[],
            &["--set", "resources.limits.memory=512Mi"],
        ),
        (
            "podSecurityContext.runAsNonRoot",
            &[],
            &["--set", "podSecurityContext.runAsNonRoot=false"],
        ),
        (
            "podSecurityContext.runAsUser",
            &[],
            &["--set", "podSecurityContext.runAsUser=2000"],
        ),
        (
            "podSecurityContext.runAsGroup",
            &[],
            &["--set", "podSecurityContext.runAsGroup=2000"],
        ),
        (
            "podSecurityContext.seccompProfile.type",
            &[],
            &["--set", "podSecurityContext.seccompProfile.type=Unconfined"],
        ),
        (
            "securityContext.allowPrivilegeEscalation",
            &[],
            &["--set", "securityContext.allowPrivilegeEscalation=true"],
        ),
        (
            "securityContext.readOnlyRootFilesystem",
            &[],
            &["--set", "securityContext.readOnlyRootFilesystem=false"],
        ),
        (
            "securityContext.capabilities.drop",
            &[],
            &["--set", "securityContext.capabilities.drop[0]=NET_RAW"],
        ),
        (
            "nodeSelector",
            &[],
            &["--set", "nodeSelector.kubernetes\\.io/os=linux"],
        ),
        (
            "tolerations",
            &[],
            &[
                "--set",
                "tolerations[0].key=dedicated",
                "--set",
                "tolerations[0].operator=Exists",
            ],
        ),
        (
            "affinity",
            &[],
            &[
                "--set",
                "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=zone",
                "--set",
                "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
            ],
        ),
        (
            "podDisruptionBudget.enabled",
            &[],
            &["--set", "podDisruptionBudget.enabled=false"],
        ),
        (
            "podDisruptionBudget.minAvailable",
            &[],
            &["--set", "podDisruptionBudget.minAvailable=2"],
        ),
        (
            "metrics.service.enabled",
            &[],
            &["--set", "metrics.service.enabled=false"],
        ),
        (
            "metrics.service.port",
            &[],
            &["--set", "metrics.service.port=9100"],
        ),
        (
            "metrics.service.annotations",
            &[],
            &[
                "--set-string",
                "metrics.service.annotations.prometheus\\.io/scrape=true",
            ],
        ),
        (
            "metrics.serviceMonitor.enabled",
            &[],
            &["--set", "metrics.serviceMonitor.enabled=true"],
        ),
        (
            "metrics.serviceMonitor.interval",
            &["--set", "metrics.serviceMonitor.enabled=true"],
            &["--set", "metrics.serviceMonitor.interval=10s"],
        ),
        (
            "metrics.serviceMonitor.labels",
            &["--set", "metrics.serviceMonitor.enabled=true"],
            &["--set", "metrics.serviceMonitor.labels.release=prom"],
        ),
        (
            "grafanaDashboard.enabled",
            &[],
            &["--set", "grafanaDashboard.enabled=true"],
        ),
        (
            "grafanaDashboard.labels.grafana_dashboard",
            &["--set", "grafanaDashboard.enabled=true"],
            &[
                "--set-string",
                "grafanaDashboard.labels.grafana_dashboard=2",
            ],
        ),
    ];
    let values: serde_json::Value = serde_yaml::from_str(
        &std::fs::read_to_string(format!("{ROOT}/charts/mas-operator/values.yaml")).unwrap(),
    )
    .unwrap();
    let mut declared = BTreeSet::new();
    leaves(&values, "", &mut declared);
    let tested: BTreeSet<String> = cases.iter().map(|(p, _, _)| (*p).to_owned()).collect();
    let untested: Vec<_> = declared.difference(&tested).collect();
    assert!(
        untested.is_empty(),
        "values without a test here: {untested:?}"
    );
    let readme = std::fs::read_to_string(format!("{ROOT}/charts/mas-operator/README.md")).unwrap();
    let undocumented: Vec<_> = declared
        .iter()
        .filter(|p| !readme.contains(&format!("| `{p}` |")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "values missing from the chart README: {undocumented:?}"
    );
    for (path, prereq, change) in cases {
        let reference = docs(
            &render(prereq).unwrap_or_else(|e| panic!("{path}: helm refused {prereq:?}: {e}")),
        );
        let args: Vec<&str> = prereq.iter().chain(change.iter()).copied().collect();
        let got =
            docs(&render(&args).unwrap_or_else(|e| panic!("{path}: helm refused {args:?}: {e}")));
        assert_ne!(got, reference, "{path}: {change:?} changed nothing");
    }
}

#[test]
fn wrong_values_are_refused_with_a_message() {
    for (args, needle) in [
        (&["--set", "nodeSelector=linux"][..], "nodeSelector"),
        (&["--set", "replicaCount=two"][..], "replicaCount"),
        (&["--set", "replicas=2"][..], "replicas"),
        (&["--set", "image.pullPolicy=Sometimes"][..], "pullPolicy"),
        (
            &[
                "--set",
                "replicaCount=2",
                "--set",
                "leaderElection.enabled=false",
            ][..],
            "leaderElection",
        ),
        (
            &["--set", "serviceAccount.create=false"][..],
            "serviceAccount.name",
        ),
        (
            &[
                "--set",
                "metrics.service.enabled=false",
                "--set",
                "metrics.serviceMonitor.enabled=true",
            ][..],
            "metrics.service.enabled",
        ),
    ] {
        let err = render(args).expect_err(&format!("{args:?} was accepted"));
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn namespaced_mode_grants_nothing_cluster_wide_but_the_aggregated_roles() {
    let out = docs(&render(&["--set", "watchNamespace=team-a"]).unwrap());
    for d in &out {
        if d["kind"] == "ClusterRole" {
            let name = d["metadata"]["name"].as_str().unwrap();
            assert!(
                name.ends_with("-masbackends-view") || name.ends_with("-masbackends-edit"),
                "{name}"
            );
            assert!(!d.to_string().contains("secrets"), "{name} grants secrets");
        }
        if d["kind"] == "ClusterRoleBinding" {
            panic!("a ClusterRoleBinding in namespaced mode: {d}");
        }
    }
    let role = out
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == "team-a")
        .expect("the reconciler's Role in team-a");
    assert!(role["rules"].to_string().contains("secrets"));
    let dep = out.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert!(
        dep.to_string().contains("\"team-a\""),
        "MAS_OPERATOR_NAMESPACE=team-a"
    );
}

#[test]
fn the_crd_is_kept_on_uninstall_unless_asked() {
    let out = docs(&render(&[]).unwrap());
    let crd = out
        .iter()
        .find(|d| d["kind"] == "CustomResourceDefinition")
        .unwrap();
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    assert_eq!(crd["spec"]["group"], "platform.myanalyticsschool.com");
}
