//! Failure diagnostics: the last log lines of a failed color's pods (StandbyLogs) or of a
//! failed migration Job's pod (MigrationLogs), read through the kubelet before the failed
//! pods are scaled away. Fake (kwok) pods may have no logs; the note then says so.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::{Api, ResourceExt};

use super::Context;
use super::observe::color_pods;
use crate::crd::Color;
use crate::desired::{Owner, REVISION_LABEL, owned_selector_string};

const LOG_PODS: usize = 3;
const LOG_LINES: i64 = 20;

async fn logs_of(ctx: &Context, ns: &str, pods: &[Pod], what: &str) -> String {
    if pods.is_empty() {
        return format!("{what} logs unavailable: no pods");
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let lp = LogParams {
        tail_lines: Some(LOG_LINES),
        container: Some(crate::desired::CONTAINER.to_owned()),
        ..Default::default()
    };
    let mut parts = Vec::new();
    for pod in pods.iter().take(LOG_PODS) {
        let pod_name = pod.name_any();
        match api.logs(&pod_name, &lp).await {
            Ok(text) if text.trim().is_empty() => {
                parts.push(format!("{pod_name}: (no log output)"))
            }
            Ok(text) => parts.push(format!("{pod_name}:\n{}", text.trim_end())),
            Err(kube::Error::Api(status)) => {
                parts.push(format!("{pod_name}: logs unavailable ({})", status.message))
            }
            Err(e) => parts.push(format!("{pod_name}: logs unavailable ({e})")),
        }
    }
    parts.join("\n")
}

pub async fn color_logs(ctx: &Context, owner: &Owner, color: Color) -> String {
    let pods = color_pods(ctx, owner, color);
    logs_of(ctx, &owner.namespace, &pods, &format!("{color} pod")).await
}

/// The termination message of a failed container (its log tail, with FallbackToLogsOnError).
fn termination_message(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find_map(|s| {
            let t = s.state.as_ref()?.terminated.as_ref()?;
            let msg = t.message.as_deref().filter(|m| !m.trim().is_empty())?;
            Some(format!("exit code {}: {}", t.exit_code, msg.trim_end()))
        })
}

pub async fn job_logs(ctx: &Context, owner: &Owner, revision: i64) -> String {
    // Migration pods are not in the watch cache's color view; list them by revision label.
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let lp = ListParams::default().labels(&format!(
        "{},{REVISION_LABEL}={revision},job-name",
        owned_selector_string(&owner.name)
    ));
    let pods = match api.list(&lp).await {
        Ok(list) => list.items,
        Err(e) => return format!("migration pod logs unavailable: listing pods: {e}"),
    };
    let messages: Vec<String> = pods
        .iter()
        .filter_map(|p| Some(format!("{}: {}", p.name_any(), termination_message(p)?)))
        .collect();
    if messages.is_empty() {
        logs_of(ctx, &owner.namespace, &pods, "migration pod").await
    } else {
        messages.join("\n")
    }
}
