//! Signature checks of inbound webhooks. Every comparison is constant-time: a
//! byte-by-byte `==` would tell an attacker, through timing, how much of a forged
//! signature was right.

use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;
type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// True when `signature_hex` is the hex HMAC-SHA256 of `message` under `key`
/// (Razorpay's `X-Razorpay-Signature`, its checkout `razorpay_signature`, and the hex
/// part of Meta's `X-Hub-Signature-256`). Hex case is ignored; anything that is not
/// 64 hex digits is simply wrong.
pub fn hmac_sha256_hex_matches(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    mac.update(message);
    // verify_slice compares in constant time.
    mac.verify_slice(&signature).is_ok()
}

/// The hex HMAC-SHA256 of `message` under `key` (what a signer sends).
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this branch cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// True when `signature_hex` is the hex HMAC-SHA1 of `message` under `key`
/// (Leegality's `mac` = HMAC-SHA1(documentId, privateSalt)).
pub fn hmac_sha1_hex_matches(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha1::new_from_slice(key) else {
        return false;
    };
    mac.update(message);
    mac.verify_slice(&signature).is_ok()
}

pub fn hmac_sha1_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = match HmacSha1::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time equality of two secrets (tokens). Lengths may leak, contents do not.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2 (HMAC-SHA256, key "Jefe").
    const RFC4231_KEY: &[u8] = b"Jefe";
    const RFC4231_DATA: &[u8] = b"what do ya want for nothing?";
    const RFC4231_MAC: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    #[test]
    fn hmac_sha256_matches_the_rfc_vector() {
        assert_eq!(hmac_sha256_hex(RFC4231_KEY, RFC4231_DATA), RFC4231_MAC);
        assert!(hmac_sha256_hex_matches(
            RFC4231_KEY,
            RFC4231_DATA,
            RFC4231_MAC
        ));
        assert!(hmac_sha256_hex_matches(
            RFC4231_KEY,
            RFC4231_DATA,
            &RFC4231_MAC.to_uppercase()
        ));
        let mut wrong = RFC4231_MAC.to_string();
        wrong.replace_range(0..1, "6");
        assert!(!hmac_sha256_hex_matches(RFC4231_KEY, RFC4231_DATA, &wrong));
        assert!(!hmac_sha256_hex_matches(RFC4231_KEY, RFC4231_DATA, "zz"));
        assert!(!hmac_sha256_hex_matches(RFC4231_KEY, RFC4231_DATA, ""));
        assert!(!hmac_sha256_hex_matches(
            RFC4231_KEY,
            RFC4231_DATA,
            &RFC4231_MAC[..62]
        ));
    }

    #[test]
    fn hmac_sha256_matches_the_published_whatsapp_sdk_example() {
        // https://hexdocs.pm/whatsapp_sdk/WhatsApp.Webhook.html: compute_signature("test", "secret")
        assert_eq!(
            hmac_sha256_hex(b"secret", b"test"),
            "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
        );
    }

    #[test]
    fn hmac_sha1_matches_the_rfc_vector() {
        // RFC 2202 test case 2.
        let mac = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79";
        assert_eq!(hmac_sha1_hex(RFC4231_KEY, RFC4231_DATA), mac);
        assert!(hmac_sha1_hex_matches(RFC4231_KEY, RFC4231_DATA, mac));
        assert!(!hmac_sha1_hex_matches(b"other", RFC4231_DATA, mac));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
        assert!(!secrets_equal("", "a"));
    }
}
