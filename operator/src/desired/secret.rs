//! Secrets the operator writes (it never reads Secrets back):
//! - `<name>-secrets-<hash>`: one release's AWS Secrets Manager values, immutable; a color reads
//!   the Secret of the release it runs, so a live pod that restarts for any reason gets the
//!   values that passed its gate;
//! - `<name>-pull`: registry credentials from `spec.imagePullSecretsFrom`, refreshed in place;
//! - `<name>-control`: the token the operator's drain calls carry.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

use super::Owner;

pub const SECRETS_HASH_LABEL: &str = "platform.myanalyticsschool.com/secrets-hash";
pub const CONTROL_TOKEN_KEY: &str = "token";

/// Values read from Secrets Manager: key → bytes.
pub type SecretValues = BTreeMap<String, Vec<u8>>;

pub fn release_secret_name(owner: &Owner, hash: &str) -> String {
    format!("{}-secrets-{hash}", owner.name)
}

pub fn pull_secret_name(owner: &Owner) -> String {
    format!("{}-pull", owner.name)
}

pub fn control_secret_name(owner: &Owner) -> String {
    format!("{}-control", owner.name)
}

fn data(values: &SecretValues) -> BTreeMap<String, ByteString> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.clone())))
        .collect()
}

/// One release's values; `immutable`, so nothing can change what a color runs with.
pub fn release_secret(owner: &Owner, hash: &str, values: &SecretValues) -> Secret {
    let mut meta = owner.meta(release_secret_name(owner, hash));
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(SECRETS_HASH_LABEL.to_owned(), hash.to_owned());
    Secret {
        metadata: meta,
        type_: Some("Opaque".into()),
        immutable: Some(true),
        data: Some(data(values)),
        ..Default::default()
    }
}

/// Registry credentials for both colors' pods, as a Docker config.
pub fn pull_secret(owner: &Owner, dockerconfigjson: &[u8]) -> Secret {
    Secret {
        metadata: owner.meta(pull_secret_name(owner)),
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_owned(),
            ByteString(dockerconfigjson.to_vec()),
        )])),
        ..Default::default()
    }
}

pub fn control_secret(owner: &Owner, token: &str) -> Secret {
    Secret {
        metadata: owner.meta(control_secret_name(owner)),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            CONTROL_TOKEN_KEY.to_owned(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Default::default()
    }
}

/// The control token of one MasBackend: HMAC of its uid under the operator's control key, so
/// any operator replica derives the same token without reading a Secret.
pub fn control_token(key: &[u8], uid: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"mas-operator control token\0");
    mac.update(uid.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Stable hex digest of keys and values (BTreeMap order), safe to show: it reveals nothing.
pub fn content_hash(values: &SecretValues) -> String {
    let mut hasher = Sha256::new();
    for (k, v) in values {
        hasher.update((k.len() as u64).to_be_bytes());
        hasher.update(k.as_bytes());
        hasher.update((v.len() as u64).to_be_bytes());
        hasher.update(v);
    }
    hex::encode(&hasher.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::fixtures::mb;

    #[test]
    fn release_secret_is_immutable_owned_and_named_by_hash() {
        let owner = Owner::of(&mb("")).unwrap();
        let values = BTreeMap::from([("DATABASE_URL".to_string(), b"postgres://x".to_vec())]);
        let hash = content_hash(&values);
        let secret = release_secret(&owner, &hash, &values);
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some(format!("api-secrets-{hash}").as_str())
        );
        assert_eq!(secret.immutable, Some(true));
        assert_eq!(
            secret.metadata.labels.as_ref().unwrap()[SECRETS_HASH_LABEL],
            hash
        );
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

    #[test]
    fn control_token_is_per_object_and_per_key() {
        let t = control_token(b"k1", "uid-1");
        assert_eq!(t.len(), 64);
        assert_eq!(t, control_token(b"k1", "uid-1"));
        assert_ne!(t, control_token(b"k1", "uid-2"));
        assert_ne!(t, control_token(b"k2", "uid-1"));
    }
}
