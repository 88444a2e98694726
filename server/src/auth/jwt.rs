//! HS256 access tokens carrying the user's id and role.
//!
//! Key rotation without logging anyone out: tokens carry the `kid` of the key that
//! signed them. The current key (`JWT_SECRET`, id `JWT_KEY_ID`) signs; the previous
//! one (`JWT_PREVIOUS_SECRET`, id `JWT_PREVIOUS_KEY_ID`) is still accepted until
//! it is removed from the configuration, which is safe once the access-token TTL
//! has passed since the rotation. Tokens without a `kid` (issued before key ids)
//! are tried against both.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Role;
use crate::error::AppError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    pub role: Role,
    pub email: String,
    pub iat: i64,
    pub exp: i64,
    /// Token id, unique per issue.
    pub jti: Uuid,
}

#[derive(Clone)]
pub struct JwtKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    previous: Option<(String, DecodingKey)>,
    validation: Validation,
}

impl JwtKeys {
    /// One key, with an id derived from it.
    pub fn new(secret: &[u8]) -> Self {
        let kid = crate::config::key_fingerprint(&String::from_utf8_lossy(secret));
        Self::with_keys(&kid, secret, None)
    }

    /// `JWT_SECRET` / `JWT_KEY_ID` and, during a rotation, the previous key.
    pub fn from_config(config: &crate::config::Config) -> Self {
        let previous = config
            .security
            .jwt_previous
            .as_ref()
            .map(|(kid, secret)| (kid.as_str(), secret.expose().as_bytes()));
        Self::with_keys(
            &config.security.jwt_key_id,
            config.jwt_secret.expose().as_bytes(),
            previous,
        )
    }

    pub fn with_keys(kid: &str, secret: &[u8], previous: Option<(&str, &[u8])>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        JwtKeys {
            kid: kid.to_string(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            previous: previous
                .map(|(kid, secret)| (kid.to_string(), DecodingKey::from_secret(secret))),
            validation,
        }
    }

    /// The id of the signing key (the `kid` of new tokens).
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        role: Role,
        email: &str,
        ttl: Duration,
    ) -> Result<String, AppError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            role,
            email: email.to_string(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(AppError::internal)
    }

    /// The keys that may have signed a token with this `kid`, in the order to try.
    fn candidates(&self, kid: Option<&str>) -> Vec<&DecodingKey> {
        let previous = self.previous.as_ref();
        match kid {
            Some(kid) if kid == self.kid => vec![&self.decoding],
            Some(kid) => previous
                .filter(|(p, _)| p == kid)
                .map(|(_, key)| vec![key])
                .unwrap_or_default(),
            None => std::iter::once(&self.decoding)
                .chain(previous.map(|(_, key)| key))
                .collect(),
        }
    }

    /// Any failure (bad signature, expired, malformed) is a 401 with a reason that
    /// does not leak the token.
    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        use jsonwebtoken::errors::ErrorKind;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AppError::unauthorized("access token is malformed"))?;
        let keys = self.candidates(header.kid.as_deref());
        if keys.is_empty() {
            // A key that was rotated out (or never ours).
            return Err(AppError::unauthorized("access token signature is invalid"));
        }
        let mut last = ErrorKind::InvalidSignature;
        for key in keys {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = e.into_kind(),
            }
        }
        Err(AppError::unauthorized(match last {
            ErrorKind::ExpiredSignature => "access token expired",
            ErrorKind::InvalidSignature => "access token signature is invalid",
            _ => "access token is malformed",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_verify_and_reject() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let id = Uuid::new_v4();
        let token = keys
            .issue(id, Role::Mentor, "m@x.io", Duration::from_secs(60))
            .unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub, claims.role), (id, Role::Mentor));

        let other = JwtKeys::new(b"another-secret-another-secret-xx");
        assert!(other.verify(&token).is_err());
        let mut tampered = token.clone();
        tampered.pop();
        assert!(keys.verify(&tampered).is_err());
        assert!(keys.verify("garbage").is_err());
    }

    #[test]
    fn rotation_keeps_tokens_of_the_previous_key_valid() {
        let old = JwtKeys::with_keys("k1", b"old-secret-old-secret-old-secret", None);
        let id = Uuid::new_v4();
        let ttl = Duration::from_secs(60);
        let before = old.issue(id, Role::Student, "s@x.io", ttl).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&before).unwrap().kid.as_deref(),
            Some("k1")
        );

        let rotated = JwtKeys::with_keys(
            "k2",
            b"new-secret-new-secret-new-secret",
            Some(("k1", b"old-secret-old-secret-old-secret")),
        );
        assert_eq!(rotated.verify(&before).unwrap().sub, id);
        let after = rotated.issue(id, Role::Student, "s@x.io", ttl).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(),
            Some("k2")
        );
        assert!(
            old.verify(&after).is_err(),
            "the old key cannot verify new tokens"
        );

        // Once the previous key is dropped its tokens stop working.
        let done = JwtKeys::with_keys("k2", b"new-secret-new-secret-new-secret", None);
        assert!(done.verify(&after).is_ok());
        assert_eq!(
            done.verify(&before).unwrap_err().to_string(),
            "access token signature is invalid"
        );

        // A token naming the current kid but signed by another key is refused.
        let forged = JwtKeys::with_keys("k2", b"forged-forged-forged-forged-forg", None)
            .issue(id, Role::Admin, "s@x.io", ttl)
            .unwrap();
        assert!(rotated.verify(&forged).is_err());
    }

    #[test]
    fn tokens_without_a_kid_are_tried_against_both_keys() {
        let claims = Claims {
            sub: Uuid::new_v4(),
            role: Role::Mentor,
            email: "m@x.io".into(),
            iat: chrono::Utc::now().timestamp(),
            exp: chrono::Utc::now().timestamp() + 60,
            jti: Uuid::new_v4(),
        };
        let legacy = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"old-secret-old-secret-old-secret"),
        )
        .unwrap();
        let rotated = JwtKeys::with_keys(
            "k2",
            b"new-secret-new-secret-new-secret",
            Some(("k1", b"old-secret-old-secret-old-secret")),
        );
        assert_eq!(rotated.verify(&legacy).unwrap(), claims);
    }

    #[test]
    fn expired_tokens_are_rejected() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: Uuid::new_v4(),
            role: Role::Student,
            email: "s@x.io".into(),
            iat: now - 120,
            exp: now - 60,
            jti: Uuid::new_v4(),
        };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &keys.encoding).unwrap();
        let err = keys.verify(&token).unwrap_err();
        assert_eq!(err.to_string(), "access token expired");
    }
}
