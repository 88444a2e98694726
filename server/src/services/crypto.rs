//! Secrets at rest (OAuth access/refresh tokens of integrations, API keys users hand
//! us): AES-256-GCM (RustCrypto `aes-gcm`) with keys from `DATA_ENCRYPTION_KEYS`.
//!
//! A sealed value is text, `v1.<kid>.<hex nonce>.<hex ciphertext+tag>`, so a column
//! of them can hold values of several keys: rotation adds a new key in front of the
//! list (it encrypts from then on), keeps the old ones for decrypting, and
//! [`SecretBox::reseal`] moves old values to the current key (lazily on read or in
//! a sweep); an old key is removed once nothing is sealed with it.
//!
//! Every value is bound to a `context` (e.g. `"oauth:google:<user id>"`) as the
//! associated data: a sealed value copied to another row or purpose does not open.
//! Nonces are random 96-bit values, which is sound for far more encryptions per key
//! than a rotation period sees.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::config::Config;

const VERSION: &str = "v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("data encryption is not configured: set DATA_ENCRYPTION_KEYS")]
    NotConfigured,
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed with key {0:?}, which is not in DATA_ENCRYPTION_KEYS")]
    UnknownKey(String),
    /// Wrong key, wrong context or a tampered value (AEAD cannot tell them apart).
    #[error("sealed value does not open (tampered, or sealed for another context)")]
    Tampered,
}

/// The configured data keys; the first one seals.
pub struct SecretBox {
    current: Option<String>,
    keys: HashMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("current", &self.current)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SecretBox {
    pub fn from_config(config: &Config) -> Self {
        let keys: Vec<(String, Vec<u8>)> = config
            .security
            .data_keys
            .iter()
            .filter_map(|(kid, hex_key)| Some((kid.clone(), hex::decode(hex_key.expose()).ok()?)))
            .collect();
        Self::new(&keys)
    }

    /// `keys`: `(kid, 32-byte key)`, current first. Keys of another length are skipped
    /// (the configuration rejects them).
    pub fn new(keys: &[(String, Vec<u8>)]) -> Self {
        let mut map = HashMap::new();
        let mut current = None;
        for (kid, key) in keys {
            if let Ok(cipher) = Aes256Gcm::new_from_slice(key) {
                current.get_or_insert_with(|| kid.clone());
                map.insert(kid.clone(), cipher);
            }
        }
        SecretBox { current, keys: map }
    }

    pub fn is_configured(&self) -> bool {
        self.current.is_some()
    }

    /// Encrypts `plaintext` for `context` with the current key.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, CryptoError> {
        let kid = self.current.as_ref().ok_or(CryptoError::NotConfigured)?;
        let cipher = self.keys.get(kid).ok_or(CryptoError::NotConfigured)?;
        let nonce_bytes: [u8; 12] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Tampered)?;
        Ok(format!(
            "{VERSION}.{kid}.{}.{}",
            hex::encode(nonce_bytes),
            hex::encode(sealed)
        ))
    }

    /// Decrypts a value sealed for `context` with any configured key.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, CryptoError> {
        let (kid, nonce, ciphertext) = parse(sealed)?;
        let cipher = self
            .keys
            .get(kid)
            .ok_or_else(|| CryptoError::UnknownKey(kid.to_string()))?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Tampered)
    }

    /// The key id a value was sealed with.
    pub fn key_id_of(sealed: &str) -> Result<&str, CryptoError> {
        parse(sealed).map(|(kid, _, _)| kid)
    }

    /// `Some(re-sealed value)` when `sealed` uses an older key, `None` when it is current.
    pub fn reseal(&self, sealed: &str, context: &str) -> Result<Option<String>, CryptoError> {
        let kid = Self::key_id_of(sealed)?;
        if Some(kid) == self.current.as_deref() {
            return Ok(None);
        }
        let plaintext = self.open(sealed, context)?;
        self.seal(&plaintext, context).map(Some)
    }
}

fn parse(sealed: &str) -> Result<(&str, [u8; 12], Vec<u8>), CryptoError> {
    let mut parts = sealed.split('.');
    let (Some(VERSION), Some(kid), Some(nonce), Some(body), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(CryptoError::Malformed);
    };
    let nonce: [u8; 12] = hex::decode(nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or(CryptoError::Malformed)?;
    let body = hex::decode(body).map_err(|_| CryptoError::Malformed)?;
    Ok((kid, nonce, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Vec<u8> {
        vec![byte; 32]
    }

    #[test]
    fn seals_and_opens_bound_to_the_context() {
        let sb = SecretBox::new(&[("k1".into(), key(1))]);
        let sealed = sb.seal(b"ya29.oauth-token", "oauth:google:u1").unwrap();
        assert!(sealed.starts_with("v1.k1."), "{sealed}");
        assert!(!sealed.contains("oauth-token"));
        assert_eq!(
            sb.open(&sealed, "oauth:google:u1").unwrap(),
            b"ya29.oauth-token"
        );
        assert_eq!(
            sb.open(&sealed, "oauth:google:u2"),
            Err(CryptoError::Tampered),
            "a value moved to another row does not open"
        );
        // Same plaintext, different nonce.
        assert_ne!(
            sealed,
            sb.seal(b"ya29.oauth-token", "oauth:google:u1").unwrap()
        );
    }

    #[test]
    fn tampering_and_garbage_are_refused() {
        let sb = SecretBox::new(&[("k1".into(), key(1))]);
        let sealed = sb.seal(b"secret", "c").unwrap();
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(sb.open(&tampered, "c"), Err(CryptoError::Tampered));
        for garbage in ["", "v1.k1", "v2.k1.00.00", "v1.k1.zz.00", "v1.k1.00.00.00"] {
            assert_eq!(
                sb.open(garbage, "c"),
                Err(CryptoError::Malformed),
                "{garbage}"
            );
        }
        let none = SecretBox::new(&[]);
        assert!(!none.is_configured());
        assert_eq!(none.seal(b"x", "c"), Err(CryptoError::NotConfigured));
    }

    #[test]
    fn rotation_by_key_id() {
        let old = SecretBox::new(&[("k1".into(), key(1))]);
        let sealed_old = old.seal(b"refresh-token", "ctx").unwrap();

        // k2 in front: it seals, k1 still opens.
        let rotated = SecretBox::new(&[("k2".into(), key(2)), ("k1".into(), key(1))]);
        assert_eq!(rotated.open(&sealed_old, "ctx").unwrap(), b"refresh-token");
        let resealed = rotated.reseal(&sealed_old, "ctx").unwrap().unwrap();
        assert_eq!(SecretBox::key_id_of(&resealed).unwrap(), "k2");
        assert_eq!(rotated.reseal(&resealed, "ctx").unwrap(), None);

        // k1 removed: only re-sealed values open.
        let done = SecretBox::new(&[("k2".into(), key(2))]);
        assert_eq!(done.open(&resealed, "ctx").unwrap(), b"refresh-token");
        assert_eq!(
            done.open(&sealed_old, "ctx"),
            Err(CryptoError::UnknownKey("k1".into()))
        );
        // A key id that names the wrong key does not open either.
        let swapped = SecretBox::new(&[("k1".into(), key(9))]);
        assert_eq!(swapped.open(&sealed_old, "ctx"), Err(CryptoError::Tampered));
    }
}
