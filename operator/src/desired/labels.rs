//! Labels and annotations the operator puts on what it owns.

use std::collections::BTreeMap;

use crate::crd::{COLOR_LABEL, Color};

pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const MANAGER: &str = "mas-operator";
/// Revision of the release a pod template, ControllerRevision or Job belongs to.
pub const REVISION_ANNOTATION: &str = "platform.myanalyticsschool.com/revision";
pub const REVISION_LABEL: &str = "platform.myanalyticsschool.com/revision";
/// Pod template annotation carrying the release's secrets hash (shown, never secret itself).
pub const SECRET_HASH_ANNOTATION: &str = "platform.myanalyticsschool.com/secrets-hash";

/// Labels on every child object of one MasBackend.
pub fn instance_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_owned(), name.to_owned()),
        (INSTANCE_LABEL.to_owned(), name.to_owned()),
        (MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned()),
    ])
}

/// Selector for one color's pods (also the Deployment selector, which is immutable).
pub fn color_selector(name: &str, color: Color) -> BTreeMap<String, String> {
    BTreeMap::from([
        (INSTANCE_LABEL.to_owned(), name.to_owned()),
        (COLOR_LABEL.to_owned(), color.as_str().to_owned()),
    ])
}

/// `color_selector` as a label-selector string for list calls and the scale subresource.
pub fn pod_selector_string(name: &str, color: Color) -> String {
    selector_string(&color_selector(name, color))
}

/// Every object the operator owns for `name`.
pub fn owned_selector_string(name: &str) -> String {
    selector_string(&BTreeMap::from([
        (INSTANCE_LABEL.to_owned(), name.to_owned()),
        (MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned()),
    ]))
}

fn selector_string(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn color_labels(name: &str, color: Color) -> BTreeMap<String, String> {
    let mut l = instance_labels(name);
    l.insert(COLOR_LABEL.to_owned(), color.as_str().to_owned());
    l.insert(COMPONENT_LABEL.to_owned(), "server".to_owned());
    l
}
