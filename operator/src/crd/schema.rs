//! Schema of `spec.podTemplate.spec`: the real PodSpec schema (so the apiserver validates an
//! overlay like any pod), without its top-level `required` (an overlay names only what it
//! changes) and without descriptions (they would triple the CRD's size; the Kubernetes API
//! reference documents PodSpec).

use k8s_openapi::api::core::v1::PodSpec;
use schemars::{Schema, SchemaGenerator};

pub fn pod_spec_overlay(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<PodSpec>();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("required");
    }
    let mut value = schema.to_value();
    strip_descriptions(&mut value);
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "description".into(),
            "PodSpec fields merged over the generated pod spec".into(),
        );
    }
    Schema::try_from(value).unwrap_or_else(|_| Schema::from(true))
}

fn strip_descriptions(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            // A property may itself be called "description"; only drop string annotations.
            if map
                .get("description")
                .is_some_and(serde_json::Value::is_string)
            {
                map.remove("description");
            }
            map.values_mut().for_each(strip_descriptions);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}
