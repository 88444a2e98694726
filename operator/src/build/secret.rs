//! The Secret materialized from AWS Secrets Manager values (fetched by `aws_secrets`).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use super::{Owner, instance_labels};

/// Pod template annotation carrying the Secret's content hash: a rotated secret
/// changes the template, so the next rollout picks it up through the same gate.
pub const SECRET_HASH_ANNOTATION: &str = "platform.myanalyticsschool.com/secrets-hash";

pub fn secret_name(owner: &Owner) -> String {
    format!("{}-aws-secrets", owner.name)
}

pub fn aws_secret(owner: &Owner, values: &BTreeMap<String, Vec<u8>>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(owner)),
            namespace: Some(owner.namespace.clone()),
            labels: Some(instance_labels(&owner.name)),
            owner_references: Some(vec![owner.owner_ref.clone()]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(
            values
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// Stable hex digest of keys and values (BTreeMap order), safe to show: it reveals nothing.
pub fn content_hash(values: &BTreeMap<String, Vec<u8>>) -> String {
    let mut hasher = Sha256::new();
    for (k, v) in values {
        hasher.update((k.len() as u64).to_be_bytes());
        hasher.update(k.as_bytes());
        hasher.update((v.len() as u64).to_be_bytes());
        hasher.update(v);
    }
    hex::encode(&hasher.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::mb;

    #[test]
    fn secret_is_owned_and_named_after_the_backend() {
        let owner = Owner::of(&mb("")).unwrap();
        let values = BTreeMap::from([("DATABASE_URL".to_string(), b"postgres://x".to_vec())]);
        let secret = aws_secret(&owner, &values);
        assert_eq!(secret.metadata.name.as_deref(), Some("api-aws-secrets"));
        assert_eq!(
            secret.metadata.owner_references.unwrap()[0].controller,
            Some(true)
        );
        assert_eq!(secret.data.unwrap()["DATABASE_URL"].0, b"postgres://x");
    }

    #[test]
    fn hash_changes_with_any_value_and_is_order_independent() {
        let a = BTreeMap::from([
            ("A".to_string(), b"1".to_vec()),
            ("B".to_string(), b"2".to_vec()),
        ]);
        let mut b = a.clone();
        assert_eq!(content_hash(&a), content_hash(&b));
        b.insert("B".into(), b"3".to_vec());
        assert_ne!(content_hash(&a), content_hash(&b));
        // Moving bytes between key and value must not collide.
        let c = BTreeMap::from([("A1".to_string(), Vec::new())]);
        let d = BTreeMap::from([("A".to_string(), b"1".to_vec())]);
        assert_ne!(content_hash(&c), content_hash(&d));
    }
}
