//! Random tokens and their storage hashes. Only hashes reach the database.

use hmac::{Hmac, KeyInit, Mac};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};

/// A 256-bit random opaque token, hex encoded.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A six-digit one-time code.
pub fn random_otp() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// Plain SHA-256 is enough for high-entropy tokens (nothing to brute force).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Keyed hash for low-entropy codes: a leaked table cannot be brute forced
/// without the server secret.
pub fn hash_code(key: &[u8], scope: &str, code: &str) -> AppResult<String> {
    Ok(hex::encode(
        code_mac(key, scope, code)?.finalize().into_bytes(),
    ))
}

/// Constant-time comparison of `code` against a stored [`hash_code`] value.
pub fn code_matches(key: &[u8], scope: &str, code: &str, stored_hex: &str) -> bool {
    let (Ok(stored), Ok(mac)) = (hex::decode(stored_hex), code_mac(key, scope, code)) else {
        return false;
    };
    mac.verify_slice(&stored).is_ok()
}

fn code_mac(key: &[u8], scope: &str, code: &str) -> AppResult<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .map_err(|e| AppError::internal(anyhow::anyhow!("HMAC key: {e}")))?;
    mac.update(scope.as_bytes());
    mac.update(b":");
    mac.update(code.as_bytes());
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_tokens() {
        let otp = random_otp();
        assert_eq!(otp.len(), 6);
        assert!(otp.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(random_token().len(), 64);
        assert_ne!(random_token(), random_token());

        let stored = hash_code(b"k", "verify_email", "123456").unwrap();
        assert!(code_matches(b"k", "verify_email", "123456", &stored));
        assert!(!code_matches(b"k", "verify_email", "123457", &stored));
        assert!(!code_matches(b"k", "reset_password", "123456", &stored));
        assert!(!code_matches(b"other", "verify_email", "123456", &stored));
        assert_eq!(hash_token("a"), hash_token("a"));
        assert_ne!(hash_token("a"), hash_token("b"));
    }
}
