//! ControllerRevisions `<name>-r<revision>`: the snapshot of every release kept for rollbacks
//! (the same object StatefulSets and DaemonSets keep their history in).

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;

use super::Owner;
use super::labels::REVISION_LABEL;
use super::template::Snapshot;

pub fn revision_name(owner: &Owner, revision: i64) -> String {
    format!("{}-r{revision}", owner.name)
}

pub fn revision_object(owner: &Owner, revision: i64, snapshot: &Snapshot) -> ControllerRevision {
    let mut metadata = owner.meta(revision_name(owner, revision));
    metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(REVISION_LABEL.to_owned(), revision.to_string());
    ControllerRevision {
        metadata,
        revision,
        data: Some(RawExtension(
            serde_json::to_value(snapshot).unwrap_or(serde_json::Value::Null),
        )),
    }
}

/// The revision number and snapshot a ControllerRevision holds; `None` for foreign objects.
pub fn parse(cr: &ControllerRevision) -> Option<(i64, Snapshot)> {
    let data = cr.data.as_ref()?;
    let snapshot: Snapshot = serde_json::from_value(data.0.clone()).ok()?;
    Some((cr.revision, snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::fixtures::mb;
    use crate::desired::template::snapshot;

    #[test]
    fn snapshot_round_trips_through_the_revision_object() {
        let m = mb("");
        let owner = Owner::of(&m).unwrap();
        let snap = snapshot(&owner, &m.spec, Some("abc"));
        let cr = revision_object(&owner, 3, &snap);
        assert_eq!(cr.metadata.name.as_deref(), Some("api-r3"));
        // Through JSON, as the apiserver stores it.
        let back: ControllerRevision =
            serde_json::from_value(serde_json::to_value(&cr).unwrap()).unwrap();
        let (rev, got) = parse(&back).unwrap();
        assert_eq!(rev, 3);
        assert_eq!(got, snap);
        assert_eq!(got.template_hash(), snap.template_hash());
    }
}
