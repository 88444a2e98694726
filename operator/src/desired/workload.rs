//! Deployments (one per color, running a release's snapshot) and the migration Job.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::Owner;
use super::labels::{
    COMPONENT_LABEL, REVISION_ANNOTATION, REVISION_LABEL, color_labels, color_selector,
};
use super::template::{CONTAINER, Snapshot};
use crate::crd::{Color, MasBackendSpec, Migration, Strategy};

/// The Deployment `<name>-<color>` running release `revision` (`snapshot`), with the color's
/// labels added to the release's pod template.
pub fn deployment(
    owner: &Owner,
    spec: &MasBackendSpec,
    color: Color,
    revision: i64,
    snapshot: &Snapshot,
    scaled_down: bool,
) -> Deployment {
    let labels = color_labels(&owner.name, color);
    let mut template = snapshot.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(Default::default)
        .extend(labels.clone());
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(REVISION_ANNOTATION.to_owned(), revision.to_string());
    let strategy = match spec.strategy {
        Strategy::BlueGreen => None,
        Strategy::Recreate => Some(DeploymentStrategy {
            type_: Some("Recreate".to_owned()),
            rolling_update: None,
        }),
    };
    let mut metadata = owner.meta(owner.color_name(color));
    metadata.labels = Some(labels);
    Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            replicas: Some(if scaled_down { 0 } else { spec.replicas }),
            selector: LabelSelector {
                match_labels: Some(color_selector(&owner.name, color)),
                ..Default::default()
            },
            strategy,
            template,
            ..Default::default()
        }),
        status: None,
    }
}

pub fn migration_job_name(owner: &Owner, revision: i64) -> String {
    format!("{}-migrate-r{revision}", owner.name)
}

/// The migration of release `revision`: its pod template (env, secrets, service account, pull
/// secrets, security context) with the server container running `migration.command` once.
pub fn migration_job(
    owner: &Owner,
    migration: &Migration,
    revision: i64,
    snapshot: &Snapshot,
) -> Job {
    let mut template = snapshot.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.insert(COMPONENT_LABEL.to_owned(), "migration".to_owned());
    labels.insert(REVISION_LABEL.to_owned(), revision.to_string());
    if let Some(pod) = template.spec.as_mut() {
        pod.restart_policy = Some("Never".to_owned());
        // Only the server container: sidecars would keep the Job's pod from completing.
        pod.containers.retain(|c| c.name == CONTAINER);
        for c in &mut pod.containers {
            c.command = Some(migration.command.clone());
            c.args = (!migration.args.is_empty()).then(|| migration.args.clone());
            if let Some(image) = &migration.image {
                c.image = Some(image.clone());
            }
            c.ports = None;
            c.startup_probe = None;
            c.readiness_probe = None;
            c.liveness_probe = None;
            c.lifecycle = None;
            // The pods' switch-off of boot-time migrations does not apply to the migration.
            if let Some(env) = c.env.as_mut() {
                env.retain(|e| e.name != "MIGRATE_ON_START");
            }
        }
    }
    let mut metadata = owner.meta(migration_job_name(owner, revision));
    metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(REVISION_LABEL.to_owned(), revision.to_string());
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(migration.backoff_limit),
            active_deadline_seconds: Some(i64::from(migration.timeout_seconds)),
            template,
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::fixtures::mb;
    use crate::desired::template::snapshot;

    #[test]
    fn deployment_runs_the_snapshot_with_color_labels_revision_and_replicas() {
        let m = mb("  port: 3000\n  env: [{name: A, value: b}]\n");
        let owner = Owner::of(&m).unwrap();
        let snap = snapshot(&owner, &m.spec, None);
        let d = deployment(&owner, &m.spec, Color::Green, 4, &snap, false);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["metadata"]["name"], "api-green");
        assert_eq!(v["spec"]["replicas"], 2);
        assert_eq!(
            v["spec"]["selector"]["matchLabels"]["platform.myanalyticsschool.com/color"],
            "green"
        );
        let pod_meta = &v["spec"]["template"]["metadata"];
        assert_eq!(pod_meta["labels"]["app.kubernetes.io/instance"], "api");
        assert_eq!(
            pod_meta["labels"]["platform.myanalyticsschool.com/color"],
            "green"
        );
        assert_eq!(pod_meta["annotations"][REVISION_ANNOTATION], "4");
        let c = &v["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "reg/api:2");
        assert_eq!(c["ports"][0]["containerPort"], 3000);
        assert_eq!(c["env"][0]["name"], "A");
        assert_eq!(v["metadata"]["ownerReferences"][0]["controller"], true);
        assert!(v["spec"].get("strategy").is_none());
        let down = deployment(&owner, &m.spec, Color::Blue, 4, &snap, true);
        assert_eq!(down.spec.unwrap().replicas, Some(0));
    }

    #[test]
    fn migration_job_runs_the_command_once_with_the_release_env() {
        let m = mb(
            "  secrets: [prod/app]\n  migration: {command: [mas-server, migrate], timeoutSeconds: 120, backoffLimit: 1}\n  podTemplate: {spec: {containers: [{name: app}, {name: sidecar, image: s:1}]}}\n",
        );
        let owner = Owner::of(&m).unwrap();
        let snap = snapshot(&owner, &m.spec, Some("h9"));
        let job = migration_job(&owner, m.spec.migration.as_ref().unwrap(), 7, &snap);
        let v = serde_json::to_value(&job).unwrap();
        assert_eq!(v["metadata"]["name"], "api-migrate-r7");
        assert_eq!(v["spec"]["backoffLimit"], 1);
        assert_eq!(v["spec"]["activeDeadlineSeconds"], 120);
        let pod = &v["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["containers"].as_array().unwrap().len(), 1);
        let c = &pod["containers"][0];
        assert_eq!(c["command"], serde_json::json!(["mas-server", "migrate"]));
        assert_eq!(c["image"], "reg/api:2");
        assert_eq!(c["envFrom"][0]["secretRef"]["name"], "api-secrets-h9");
        assert!(c.get("readinessProbe").is_none() && c.get("lifecycle").is_none());
        assert!(
            !c["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "MIGRATE_ON_START")
        );
        let labels = &v["spec"]["template"]["metadata"]["labels"];
        assert!(
            labels.get("platform.myanalyticsschool.com/color").is_none(),
            "no Service selects it"
        );
        assert_eq!(labels[COMPONENT_LABEL], "migration");
    }
}
