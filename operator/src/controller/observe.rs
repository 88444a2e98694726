//! Observe: everything the state machine and the builders need, gathered before either runs.
//! Cluster objects come from the watch caches; the gate and verification probes run here
//! (only when due); Secrets Manager through its cache. Nothing is written.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;

use super::Context;
use crate::crd::{
    ABORT_ANNOTATION, COLOR_LABEL, Color, MasBackend, MasBackendStatus, PROMOTE_ANNOTATION,
    RETRY_ANNOTATION, ROLLBACK_ANNOTATION,
};
use crate::desired::{
    INSTANCE_LABEL, Inputs, Owner, REVISION_ANNOTATION, SecretValues, Snapshot, control_token,
    migration_job_name, parse_revision, snapshot,
};
use crate::health;
use crate::rollout::{self, Candidate, DeploymentFacts, GateResult, JobFacts, Observed, Requests};

/// The observation of one MasBackend, plus what only the builders need.
pub struct World {
    pub observed: Observed,
    pub releases: BTreeMap<i64, Snapshot>,
    pub candidate: Option<Snapshot>,
    pub secret_values: Option<SecretValues>,
    pub pull_config: Option<Vec<u8>>,
    pub control_token: Option<String>,
}

impl World {
    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            releases: &self.releases,
            candidate: self.candidate.as_ref(),
            secret_values: self.secret_values.as_ref(),
            pull_config: self.pull_config.as_deref(),
            control_token: self.control_token.as_deref(),
        }
    }
}

pub fn facts(d: &Deployment) -> DeploymentFacts {
    let spec = d.spec.as_ref();
    let status = d.status.as_ref();
    DeploymentFacts {
        revision: spec
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(REVISION_ANNOTATION))
            .and_then(|r| r.parse().ok()),
        replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
        ready_replicas: status.and_then(|s| s.ready_replicas).unwrap_or(0),
        updated_replicas: status.and_then(|s| s.updated_replicas).unwrap_or(0),
        generation: d.metadata.generation,
        observed_generation: status.and_then(|s| s.observed_generation),
    }
}

pub fn job_facts(job: &Job) -> JobFacts {
    let status = job.status.as_ref();
    if status.and_then(|s| s.succeeded).unwrap_or(0) > 0 {
        return JobFacts::Succeeded;
    }
    let failed = status.and_then(|s| s.conditions.as_ref()).and_then(|cs| {
        cs.iter()
            .find(|c| c.type_ == "Failed" && c.status == "True")
    });
    match failed {
        Some(c) => JobFacts::Failed {
            reason: format!(
                "{}: {}",
                c.reason.as_deref().unwrap_or("Failed"),
                c.message.as_deref().unwrap_or("")
            ),
        },
        None => JobFacts::Running,
    }
}

pub fn requests(mb: &MasBackend) -> Requests {
    let get = |k: &str| {
        mb.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .cloned()
    };
    Requests {
        rollback: get(ROLLBACK_ANNOTATION),
        promote: get(PROMOTE_ANNOTATION),
        abort: get(ABORT_ANNOTATION),
        retry: get(RETRY_ANNOTATION),
    }
}

/// Pods of `color` from the watch cache.
pub fn color_pods(ctx: &Context, owner: &Owner, color: Color) -> Vec<Pod> {
    ctx.stores
        .pods
        .state()
        .iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(owner.namespace.as_str())
                && p.metadata.labels.as_ref().is_some_and(|l| {
                    l.get(INSTANCE_LABEL) == Some(&owner.name)
                        && l.get(COLOR_LABEL).map(String::as_str) == Some(color.as_str())
                })
        })
        .map(|p| (**p).clone())
        .collect()
}

fn releases(ctx: &Context, owner: &Owner) -> BTreeMap<i64, Snapshot> {
    ctx.stores
        .revisions
        .state()
        .iter()
        .filter(|cr| {
            cr.metadata.namespace.as_deref() == Some(owner.namespace.as_str())
                && cr
                    .metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.get(INSTANCE_LABEL) == Some(&owner.name))
        })
        .filter_map(|cr| parse_revision(cr))
        .collect()
}

async fn probe(
    ctx: &Context,
    owner: &Owner,
    mb: &MasBackend,
    target: Option<(Color, i64)>,
) -> Option<GateResult> {
    let (color, revision) = target?;
    let pods = color_pods(ctx, owner, color);
    let result = health::probe_color(&ctx.probes, &pods, revision, &mb.spec).await;
    if matches!(result, GateResult::Fail { .. }) {
        ctx.metrics.gate_failure(&owner.namespace, &owner.name);
    }
    Some(result)
}

pub async fn observe(
    ctx: &Context,
    mb: &MasBackend,
    owner: &Owner,
    prev: &MasBackendStatus,
) -> World {
    let now = Timestamp::now();
    let ns = owner.namespace.as_str();
    let deployment = |color: Color| {
        ctx.stores
            .deployments
            .get(&ObjectRef::new(&owner.color_name(color)).within(ns))
            .map(|d| facts(&d))
    };
    let releases = releases(ctx, owner);
    let fetched = ctx
        .secrets
        .get((ns, &owner.name), &mb.spec, &ctx.metrics)
        .await;
    let (candidate, snapshot_of_spec, secret_values, pull_config) = match fetched {
        Ok(f) => {
            let hash = f.values.as_ref().map(|(h, _)| h.clone());
            let snap = snapshot(owner, &mb.spec, hash.as_deref());
            let candidate = Candidate {
                image: snap.image.clone(),
                secrets_hash: hash,
                template_hash: snap.template_hash(),
            };
            (
                Ok(candidate),
                Some(snap),
                f.values.map(|(_, v)| v),
                f.pull_config,
            )
        }
        Err(e) => (Err(e), None, None, None),
    };
    let gate = probe(ctx, owner, mb, rollout::gate_target(&mb.spec, prev, now)).await;
    let verification = probe(
        ctx,
        owner,
        mb,
        rollout::verification_target(&mb.spec, prev, now),
    )
    .await;
    let migration = rollout::migration_target(prev).map(|rev| {
        ctx.stores
            .jobs
            .get(&ObjectRef::new(&migration_job_name(owner, rev)).within(ns))
            .map_or(JobFacts::Running, |j| job_facts(&j))
    });
    let observed = Observed {
        now,
        generation: mb.metadata.generation,
        blue: deployment(Color::Blue),
        green: deployment(Color::Green),
        candidate,
        releases: releases.keys().copied().collect::<BTreeSet<_>>(),
        gate,
        verification,
        migration,
        requests: requests(mb),
    };
    World {
        observed,
        releases,
        candidate: snapshot_of_spec,
        secret_values,
        pull_config,
        control_token: ctx
            .control_key
            .as_deref()
            .map(|key| control_token(key, &owner.uid)),
    }
}
