//! Provider tokens encrypted at rest with AES-256-GCM (RustCrypto `aes-gcm`).
//!
//! Stored form: `v1:` + base64(nonce ‖ ciphertext ‖ tag). The associated data binds a
//! ciphertext to its row (e.g. the user id), so a value copied onto another row no
//! longer decrypts.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

use crate::config::Secret;
use crate::error::{AppError, AppResult};

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

pub struct TokenCipher {
    cipher: Aes256Gcm,
}

impl TokenCipher {
    /// `key_hex`: the 32-byte key as config.rs stores it (hex).
    pub fn new(key_hex: &Secret) -> AppResult<Self> {
        let key = hex::decode(key_hex.expose())
            .map_err(|_| AppError::internal(anyhow::anyhow!("token key is not hex")))?;
        let cipher = Aes256Gcm::new_from_slice(&key)
            .map_err(|_| AppError::internal(anyhow::anyhow!("token key must be 32 bytes")))?;
        Ok(TokenCipher { cipher })
    }

    pub fn encrypt(&self, plaintext: &str, aad: &str) -> AppResult<String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| AppError::internal(anyhow::anyhow!("encrypting a token failed")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// Fails for a value sealed with another key or for another row.
    pub fn decrypt(&self, stored: &str, aad: &str) -> AppResult<Secret> {
        let undecryptable = || {
            AppError::internal(anyhow::anyhow!(
                "a stored token cannot be decrypted (wrong TOKEN_ENCRYPTION_KEY?)"
            ))
        };
        let raw = stored
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|raw| raw.len() > NONCE_LEN)
            .ok_or_else(undecryptable)?;
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| undecryptable())?;
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| undecryptable())?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| undecryptable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(byte: u8) -> TokenCipher {
        TokenCipher::new(&Secret::new(hex::encode([byte; 32]))).unwrap()
    }

    #[test]
    fn round_trips_and_binds_key_and_row() {
        let c = cipher(7);
        let sealed = c.encrypt("1//refresh-token", "user-a").unwrap();
        assert!(sealed.starts_with("v1:") && !sealed.contains("refresh"));
        assert_eq!(
            c.decrypt(&sealed, "user-a").unwrap().expose(),
            "1//refresh-token"
        );
        // Fresh nonce every time.
        assert_ne!(sealed, c.encrypt("1//refresh-token", "user-a").unwrap());
        assert!(c.decrypt(&sealed, "user-b").is_err());
        assert!(cipher(8).decrypt(&sealed, "user-a").is_err());
        assert!(c.decrypt("v1:AAAA", "user-a").is_err());
        assert!(c.decrypt("plain", "user-a").is_err());
    }
}
