//! Pure builders: (MasBackend, next status, observed release snapshots) → every object the
//! operator owns, as typed structs. No client, no clock: the same input always yields the same
//! objects, so server-side apply of the result is idempotent.

mod labels;
mod network;
mod revision;
mod secret;
mod template;
mod workload;

use std::collections::{BTreeMap, BTreeSet};

pub use labels::{
    COMPONENT_LABEL, INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGER, REVISION_ANNOTATION,
    REVISION_LABEL, SECRET_HASH_ANNOTATION, color_selector, instance_labels, owned_selector_string,
    pod_selector_string,
};
pub use network::{AFFINITY_COOKIE, active_service, color_service, ingress, preview_service};
pub use revision::{parse as parse_revision, revision_name, revision_object};
pub use secret::{
    SecretValues, content_hash, control_secret, control_secret_name, control_token, pull_secret,
    pull_secret_name, release_secret, release_secret_name,
};
pub use template::{CONTAINER, PRE_STOP_SECONDS, Snapshot, TERMINATION_GRACE_SECONDS, snapshot};
pub use workload::{deployment, migration_job, migration_job_name};

use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use crate::crd::{Color, MasBackend, MasBackendStatus, Stage, Strategy};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BuildError {
    #[error("MasBackend has no {0}; cannot build owned objects")]
    MissingMetadata(&'static str),
}

/// Name, namespace and controller owner reference shared by every child.
#[derive(Clone, Debug)]
pub struct Owner {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub owner_ref: OwnerReference,
}

impl Owner {
    pub fn of(mb: &MasBackend) -> Result<Self, BuildError> {
        let meta = mb.meta();
        let name = meta
            .name
            .clone()
            .ok_or(BuildError::MissingMetadata("name"))?;
        let namespace = meta
            .namespace
            .clone()
            .ok_or(BuildError::MissingMetadata("namespace"))?;
        let uid = meta.uid.clone().ok_or(BuildError::MissingMetadata("uid"))?;
        let owner_ref = mb
            .controller_owner_ref(&())
            .ok_or(BuildError::MissingMetadata("uid"))?;
        Ok(Self {
            name,
            namespace,
            uid,
            owner_ref,
        })
    }

    pub fn color_name(&self, color: Color) -> String {
        format!("{}-{}", self.name, color)
    }

    /// Metadata every child starts from: name, namespace, instance labels, owner reference.
    pub fn meta(&self, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(instance_labels(&self.name)),
            owner_references: Some(vec![self.owner_ref.clone()]),
            ..Default::default()
        }
    }
}

/// What the builders need besides the MasBackend and the next status.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// Snapshots of the releases that exist (their ControllerRevisions).
    pub releases: &'a BTreeMap<i64, Snapshot>,
    /// The release the current spec describes; `None` while its secrets cannot be read.
    pub candidate: Option<&'a Snapshot>,
    /// The freshly read values of the candidate's secrets.
    pub secret_values: Option<&'a SecretValues>,
    /// Docker config built from `spec.imagePullSecretsFrom`.
    pub pull_config: Option<&'a [u8]>,
    pub control_token: Option<&'a str>,
}

/// Everything the operator owns for one MasBackend, in apply order: Secrets and revisions
/// before the Job and Deployments that read them, Deployments before the Services that select
/// their pods, the Ingress last.
#[derive(Clone, Debug, Default)]
pub struct Desired {
    pub secrets: Vec<Secret>,
    pub revisions: Vec<ControllerRevision>,
    pub job: Option<Job>,
    pub deployments: Vec<Deployment>,
    pub services: Vec<Service>,
    pub ingress: Option<Ingress>,
    /// Revisions a color or the rollout runs whose snapshot is gone (their Deployment is left
    /// as it is rather than rebuilt from something else).
    pub missing_releases: Vec<i64>,
}

/// Color whose pods the preview Service should select: the rollout target, else the standby.
pub fn preview_color(status: &MasBackendStatus) -> Option<Color> {
    status
        .rollout
        .as_ref()
        .map(|r| r.color)
        .or(status.standby_color)
}

static NO_RELEASES: BTreeMap<i64, Snapshot> = BTreeMap::new();

impl Default for Inputs<'_> {
    fn default() -> Self {
        Self {
            releases: &NO_RELEASES,
            candidate: None,
            secret_values: None,
            pull_config: None,
            control_token: None,
        }
    }
}

impl Inputs<'_> {
    /// The snapshot of `revision`: its ControllerRevision, or the candidate when `revision` is
    /// the rollout just started from it (its ControllerRevision is created in this apply).
    fn release(&self, status: &MasBackendStatus, revision: i64) -> Option<&Snapshot> {
        self.releases.get(&revision).or_else(|| {
            let rollout = status.rollout.as_ref()?;
            let candidate = self.candidate?;
            (rollout.release.revision == revision
                && candidate.template_hash() == rollout.release.template_hash)
                .then_some(candidate)
        })
    }
}

pub fn desired(
    mb: &MasBackend,
    status: &MasBackendStatus,
    inputs: Inputs<'_>,
) -> Result<Desired, BuildError> {
    let owner = Owner::of(mb)?;
    let spec = &mb.spec;
    let mut out = Desired::default();
    if let Some(token) = inputs.control_token {
        out.secrets.push(control_secret(&owner, token));
    }
    if !spec.image_pull_secrets_from.is_empty()
        && let Some(config) = inputs.pull_config
    {
        out.secrets.push(pull_secret(&owner, config));
    }
    if let Some(r) = &status.rollout {
        let rev = r.release.revision;
        if let (Some(hash), Some(values)) = (&r.release.secrets_hash, inputs.secret_values)
            && content_hash(values) == *hash
        {
            out.secrets.push(release_secret(&owner, hash, values));
        }
        match inputs.release(status, rev) {
            Some(snap) => {
                if !inputs.releases.contains_key(&rev) {
                    out.revisions.push(revision_object(&owner, rev, snap));
                }
                if r.stage == Stage::Migrating
                    && let Some(m) = &spec.migration
                {
                    out.job = Some(migration_job(&owner, m, rev, snap));
                }
            }
            None => out.missing_releases.push(rev),
        }
    }
    for color in Color::ALL {
        let Some(state) = status.colors.get(color) else {
            continue;
        };
        let rev = state.release.revision;
        match inputs.release(status, rev) {
            Some(snap) => out.deployments.push(deployment(
                &owner,
                spec,
                color,
                rev,
                snap,
                state.scaled_down,
            )),
            None => out.missing_releases.push(rev),
        }
        out.services.push(color_service(&owner, spec, color));
    }
    out.missing_releases.sort_unstable();
    out.missing_releases.dedup();
    if let Some(active) = status.active_color {
        out.services.push(active_service(&owner, spec, active));
    }
    if spec.strategy == Strategy::BlueGreen
        && let Some(preview) = preview_color(status).filter(|c| Some(*c) != status.active_color)
    {
        out.services.push(preview_service(&owner, spec, preview));
    }
    out.ingress = ingress(&owner, spec);
    Ok(out)
}

/// Names of the owned objects that exist only while `status` refers to them (revisions,
/// release Secrets, migration Jobs): what one status has and the next lacks is deleted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Referenced {
    pub revisions: BTreeSet<String>,
    pub release_secrets: BTreeSet<String>,
    pub jobs: BTreeSet<String>,
    pub pull_secret: Option<String>,
}

pub fn referenced(owner: &Owner, mb: &MasBackend, status: &MasBackendStatus) -> Referenced {
    Referenced {
        revisions: status
            .referenced_revisions()
            .into_iter()
            .map(|r| revision_name(owner, r))
            .collect(),
        release_secrets: status
            .referenced_secrets()
            .iter()
            .map(|h| release_secret_name(owner, h))
            .collect(),
        jobs: status
            .rollout
            .as_ref()
            .filter(|_| mb.spec.migration.is_some())
            .map(|r| migration_job_name(owner, r.release.revision))
            .into_iter()
            .collect(),
        pull_secret: status.pull_secret.then(|| pull_secret_name(owner)),
    }
}

impl Referenced {
    /// What `self` (the previous status) refers to and `next` no longer does.
    pub fn released_by(&self, next: &Referenced) -> Referenced {
        Referenced {
            revisions: self
                .revisions
                .difference(&next.revisions)
                .cloned()
                .collect(),
            release_secrets: self
                .release_secrets
                .difference(&next.release_secrets)
                .cloned()
                .collect(),
            jobs: self.jobs.difference(&next.jobs).cloned().collect(),
            pull_secret: self
                .pull_secret
                .clone()
                .filter(|_| next.pull_secret.is_none()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.revisions.is_empty()
            && self.release_secrets.is_empty()
            && self.jobs.is_empty()
            && self.pull_secret.is_none()
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::crd::MasBackend;

    /// The shared fixture (tests/fixtures/masbackend.yaml) as the unit tests see it: namespaced,
    /// with a uid and generation, `reg/api:2`, plus `extra_spec` (YAML lines under `spec:`).
    pub fn mb(extra_spec: &str) -> MasBackend {
        let mut v = crate::testing::fixture(&format!("  image: 'reg/api:2'\n{extra_spec}"));
        v["metadata"]["namespace"] = "prod".into();
        v["metadata"]["uid"] = "11111111-2222-3333-4444-555555555555".into();
        v["metadata"]["generation"] = 3.into();
        serde_json::from_value(v).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::mb;
    use super::*;
    use crate::crd::{ColorState, ReleaseRef, Rollout, Trigger};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn rref(rev: i64, snap: &Snapshot) -> ReleaseRef {
        ReleaseRef {
            revision: rev,
            image: snap.image.clone(),
            secrets_hash: snap.secrets_hash.clone(),
            template_hash: snap.template_hash(),
        }
    }

    struct Case {
        mb: MasBackend,
        status: MasBackendStatus,
        releases: BTreeMap<i64, Snapshot>,
        candidate: Snapshot,
    }

    /// Blue live on r1 (api:1), green rolling out r2 (the spec's reg/api:2).
    fn blue_live_green_rolling(extra: &str) -> Case {
        let m = mb(extra);
        let owner = Owner::of(&m).unwrap();
        let mut old_spec = m.spec.clone();
        old_spec.image = "reg/api:1".into();
        let live = snapshot(&owner, &old_spec, None);
        let candidate = snapshot(&owner, &m.spec, None);
        let mut s = MasBackendStatus {
            active_color: Some(Color::Blue),
            active_image: Some("reg/api:1".into()),
            ..Default::default()
        };
        s.colors.blue = Some(ColorState {
            release: rref(1, &live),
            scaled_down: false,
        });
        s.colors.green = Some(ColorState {
            release: rref(2, &candidate),
            scaled_down: false,
        });
        s.rollout = Some(Rollout {
            stage: Stage::Progressing,
            trigger: Trigger::NewImage,
            color: Color::Green,
            release: rref(2, &candidate),
            started_at: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            deployed_at: None,
            gating_since: None,
            gate_passes: 0,
            gate_failures: 0,
            last_probe: None,
        });
        Case {
            mb: m,
            status: s,
            releases: BTreeMap::from([(1, live)]),
            candidate,
        }
    }

    fn build(c: &Case) -> Desired {
        desired(
            &c.mb,
            &c.status,
            Inputs {
                releases: &c.releases,
                candidate: Some(&c.candidate),
                control_token: Some("t0k"),
                ..Default::default()
            },
        )
        .unwrap()
    }

    fn svc<'a>(d: &'a Desired, name: &str) -> &'a Service {
        d.services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    fn image(d: &Deployment) -> String {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .clone()
            .unwrap()
    }

    #[test]
    fn each_color_runs_its_own_release_and_the_new_one_gets_a_revision() {
        let c = blue_live_green_rolling("");
        let d = build(&c);
        let names: Vec<_> = d
            .deployments
            .iter()
            .map(|d| d.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["api-blue", "api-green"]);
        assert_eq!(
            image(&d.deployments[0]),
            "reg/api:1",
            "blue keeps the live release"
        );
        assert_eq!(image(&d.deployments[1]), "reg/api:2");
        assert_eq!(
            d.revisions.len(),
            1,
            "only the new release's ControllerRevision"
        );
        assert_eq!(d.revisions[0].metadata.name.as_deref(), Some("api-r2"));
        assert_eq!(d.secrets[0].metadata.name.as_deref(), Some("api-control"));
        let sel = |n| svc(&d, n).spec.as_ref().unwrap().selector.clone().unwrap();
        assert_eq!(sel("api")[crate::crd::COLOR_LABEL], "blue");
        assert_eq!(sel("api-preview")[crate::crd::COLOR_LABEL], "green");
        assert_eq!(sel("api-blue")[crate::crd::COLOR_LABEL], "blue");
        assert_eq!(sel("api-green")[crate::crd::COLOR_LABEL], "green");
        assert_eq!(sel("api")["app.kubernetes.io/instance"], "api");
        assert!(d.ingress.is_none() && d.job.is_none());
        assert!(d.missing_releases.is_empty());
        for s in &d.services {
            let o = &s.metadata.owner_references.as_ref().unwrap()[0];
            assert_eq!(o.controller, Some(true));
            assert_eq!(o.kind, "MasBackend");
            assert_eq!(s.metadata.namespace.as_deref(), Some("prod"));
        }
    }

    #[test]
    fn a_spec_edit_never_rebuilds_the_live_color() {
        let mut c = blue_live_green_rolling("");
        let before = build(&c).deployments[0].clone();
        c.mb.spec.env.push(k8s_openapi::api::core::v1::EnvVar {
            name: "NEW".into(),
            value: Some("1".into()),
            ..Default::default()
        });
        c.mb.spec.replicas = 2;
        let after = build(&c).deployments[0].clone();
        assert_eq!(before, after);
    }

    #[test]
    fn missing_snapshot_leaves_that_color_alone() {
        let mut c = blue_live_green_rolling("");
        c.releases.clear();
        let d = build(&c);
        assert_eq!(d.deployments.len(), 1, "green from the candidate only");
        assert_eq!(d.missing_releases, [1]);
    }

    #[test]
    fn migrating_rollout_has_its_job_and_the_release_secret() {
        let mut c = blue_live_green_rolling("  migration: {command: [mas-server, migrate]}\n");
        let owner = Owner::of(&c.mb).unwrap();
        let values = BTreeMap::from([("JWT_SECRET".to_owned(), b"x".to_vec())]);
        let hash = content_hash(&values);
        c.candidate = snapshot(&owner, &c.mb.spec, Some(&hash));
        let r = c.status.rollout.as_mut().unwrap();
        r.stage = Stage::Migrating;
        r.release = rref(2, &c.candidate);
        c.status.colors.green = None;
        let d = desired(
            &c.mb,
            &c.status,
            Inputs {
                releases: &c.releases,
                candidate: Some(&c.candidate),
                secret_values: Some(&values),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            d.job.unwrap().metadata.name.as_deref(),
            Some("api-migrate-r2")
        );
        assert_eq!(
            d.secrets[0].metadata.name.as_deref(),
            Some(format!("api-secrets-{hash}").as_str())
        );
        assert_eq!(d.deployments.len(), 1, "green starts after the migration");
    }

    #[test]
    fn recreate_has_no_preview_service() {
        let mut c = blue_live_green_rolling("  strategy: Recreate\n");
        c.status.rollout.as_mut().unwrap().color = Color::Blue;
        c.status.colors.green = None;
        let d = build(&c);
        assert!(
            d.services
                .iter()
                .all(|s| s.metadata.name.as_deref() != Some("api-preview"))
        );
        let strat = d.deployments[0]
            .spec
            .as_ref()
            .unwrap()
            .strategy
            .as_ref()
            .unwrap();
        assert_eq!(strat.type_.as_deref(), Some("Recreate"));
    }

    #[test]
    fn references_released_by_the_next_status_are_deleted() {
        let c = blue_live_green_rolling("  migration: {command: [m]}\n");
        let owner = Owner::of(&c.mb).unwrap();
        let prev = referenced(&owner, &c.mb, &c.status);
        assert!(prev.jobs.contains("api-migrate-r2"));
        let mut next_status = c.status.clone();
        next_status.rollout = None;
        next_status.colors.blue = None;
        let next = referenced(&owner, &c.mb, &next_status);
        let gone = prev.released_by(&next);
        assert_eq!(gone.revisions, BTreeSet::from(["api-r1".to_owned()]));
        assert_eq!(gone.jobs, BTreeSet::from(["api-migrate-r2".to_owned()]));
        assert!(!gone.is_empty());
        assert!(next.released_by(&next).is_empty());
    }

    #[test]
    fn missing_uid_is_an_error_not_a_panic() {
        let mut m = mb("");
        m.metadata.uid = None;
        assert_eq!(
            desired(&m, &MasBackendStatus::default(), Inputs::default()).unwrap_err(),
            BuildError::MissingMetadata("uid")
        );
    }
}
