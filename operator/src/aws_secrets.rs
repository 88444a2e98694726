//! Reads AWS Secrets Manager secrets and flattens them into Secret keys.
//!
//! A secret whose value is a JSON object contributes one key per field (the usual
//! `{"DATABASE_URL": "...", "JWT_SECRET": "..."}` layout); any other value becomes one
//! key named after the secret id. Errors name the secret id, never a value.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SecretsError {
    #[error("AWS Secrets Manager secret {0:?} was not found")]
    NotFound(String),
    #[error("reading AWS Secrets Manager secret {id:?} failed: {reason}")]
    Read { id: String, reason: String },
    #[error("AWS Secrets Manager secret {id:?}: {reason}")]
    Invalid { id: String, reason: String },
    #[error("key {key:?} is defined by both {first:?} and {second:?}")]
    Duplicate {
        key: String,
        first: String,
        second: String,
    },
}

/// Builds the client from the standard AWS chain (IRSA, env, instance role);
/// `AWS_ENDPOINT_URL` points it at an emulator.
pub async fn client() -> aws_sdk_secretsmanager::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&shared)
}

/// Fetches every id and merges their keys; a key defined twice is an error, not a silent override.
pub async fn fetch(
    client: &aws_sdk_secretsmanager::Client,
    ids: &[String],
) -> Result<BTreeMap<String, Vec<u8>>, SecretsError> {
    let mut merged = BTreeMap::new();
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    for id in ids {
        let out = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| read_error(id, e))?;
        let entries = if let Some(text) = out.secret_string() {
            flatten(id, text.as_bytes(), true)?
        } else if let Some(blob) = out.secret_binary() {
            flatten(id, blob.as_ref(), false)?
        } else {
            return Err(SecretsError::Invalid {
                id: id.clone(),
                reason: "the secret has no value".into(),
            });
        };
        for (key, value) in entries {
            if let Some(first) = origin.get(&key) {
                return Err(SecretsError::Duplicate {
                    key,
                    first: first.clone(),
                    second: id.clone(),
                });
            }
            origin.insert(key.clone(), id.clone());
            merged.insert(key, value);
        }
    }
    Ok(merged)
}

/// A Docker config (`{"auths": {...}}`) merging the registry credentials of `ids`. Each value
/// is a Docker config itself, or `{"registry", "username", "password"}`.
pub async fn pull_config(
    client: &aws_sdk_secretsmanager::Client,
    ids: &[String],
) -> Result<Vec<u8>, SecretsError> {
    let mut auths = serde_json::Map::new();
    for id in ids {
        let out = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| read_error(id, e))?;
        let text = out.secret_string().ok_or_else(|| SecretsError::Invalid {
            id: id.clone(),
            reason: "registry credentials must be a JSON string value".into(),
        })?;
        for (registry, auth) in registry_auths(id, text)? {
            auths.insert(registry, auth);
        }
    }
    serde_json::to_vec(&serde_json::json!({ "auths": auths })).map_err(|e| SecretsError::Invalid {
        id: ids.join(","),
        reason: e.to_string(),
    })
}

/// The `auths` entries one secret value contributes (errors never quote the value).
pub fn registry_auths(
    id: &str,
    text: &str,
) -> Result<Vec<(String, serde_json::Value)>, SecretsError> {
    use base64::Engine as _;
    let invalid = |reason: &str| SecretsError::Invalid {
        id: id.to_string(),
        reason: reason.to_string(),
    };
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|_| invalid("registry credentials are not JSON"))?;
    if let Some(auths) = v.get("auths").and_then(|a| a.as_object()) {
        return Ok(auths.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    }
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).filter(|s| !s.is_empty());
    match (field("registry"), field("username"), field("password")) {
        (Some(registry), Some(user), Some(password)) => {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            Ok(vec![(
                registry.to_owned(),
                serde_json::json!({"username": user, "password": password, "auth": auth}),
            )])
        }
        _ => Err(invalid(
            "expected {\"auths\": {...}} or {\"registry\", \"username\", \"password\"}",
        )),
    }
}

fn read_error(id: &str, e: SdkError<GetSecretValueError>) -> SecretsError {
    match e.as_service_error() {
        Some(GetSecretValueError::ResourceNotFoundException(_)) => {
            SecretsError::NotFound(id.to_string())
        }
        Some(service) => SecretsError::Read {
            id: id.to_string(),
            reason: service
                .meta()
                .message()
                .unwrap_or("service error")
                .to_string(),
        },
        // Transport and credential failures: the variant name says enough, no payloads.
        None => SecretsError::Read {
            id: id.to_string(),
            reason: format!("{e}"),
        },
    }
}

/// Turns one secret value into Secret keys.
pub fn flatten(
    id: &str,
    value: &[u8],
    is_text: bool,
) -> Result<Vec<(String, Vec<u8>)>, SecretsError> {
    let invalid = |reason: String| SecretsError::Invalid {
        id: id.to_string(),
        reason,
    };
    if is_text
        && let Ok(serde_json::Value::Object(map)) =
            serde_json::from_slice::<serde_json::Value>(value)
    {
        return map
            .into_iter()
            .map(|(key, v)| {
                if !valid_key(&key) {
                    return Err(invalid(format!(
                        "field {key:?} is not a valid Secret key ([-._a-zA-Z0-9]+)"
                    )));
                }
                let bytes = match v {
                    serde_json::Value::String(s) => s.into_bytes(),
                    serde_json::Value::Number(n) => n.to_string().into_bytes(),
                    serde_json::Value::Bool(b) => b.to_string().into_bytes(),
                    _ => {
                        return Err(invalid(format!(
                            "field {key:?} must be a string, number or boolean"
                        )));
                    }
                };
                Ok((key, bytes))
            })
            .collect();
    }
    Ok(vec![(key_for_id(id), value.to_vec())])
}

/// `prod/mas/jwt-secret` → `JWT_SECRET`.
fn key_for_id(id: &str) -> String {
    let last = id.rsplit(['/', ':']).next().unwrap_or(id);
    last.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_become_one_key_per_field() {
        let got = flatten(
            "prod/mas",
            br#"{"DATABASE_URL":"postgres://x","PORT":8000,"DEBUG":false}"#,
            true,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("DATABASE_URL".to_string(), b"postgres://x".to_vec()),
                ("DEBUG".to_string(), b"false".to_vec()),
                ("PORT".to_string(), b"8000".to_vec()),
            ]
        );
    }

    #[test]
    fn plain_values_are_keyed_by_the_id() {
        assert_eq!(
            flatten("prod/mas/jwt-secret", b"s3cr3t", true).unwrap(),
            vec![("JWT_SECRET".into(), b"s3cr3t".to_vec())]
        );
        assert_eq!(
            flatten(
                "arn:aws:secretsmanager:us-east-1:1:secret:blob",
                b"\x00\x01",
                false
            )
            .unwrap()[0]
                .0,
            "BLOB"
        );
    }

    #[test]
    fn registry_credentials_become_docker_auths() {
        let got = registry_auths(
            "ci/ghcr",
            r#"{"registry":"ghcr.io","username":"bot","password":"tok"}"#,
        )
        .unwrap();
        assert_eq!(got[0].0, "ghcr.io");
        assert_eq!(got[0].1["auth"], "Ym90OnRvaw==");
        let got =
            registry_auths("ci/docker", r#"{"auths":{"docker.io":{"auth":"eDp5"}}}"#).unwrap();
        assert_eq!(got[0].0, "docker.io");
        let err = registry_auths(
            "ci/bad",
            r#"{"registry":"ghcr.io","password":"hidden-value"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("ci/bad") && !err.to_string().contains("hidden-value"));
        assert!(registry_auths("ci/x", "hidden-value").is_err());
    }

    #[test]
    fn bad_fields_are_named_without_values() {
        let err = flatten("prod/mas", br#"{"bad key":"hidden-value"}"#, true).unwrap_err();
        assert!(err.to_string().contains("bad key"));
        assert!(!err.to_string().contains("hidden-value"));
        let err = flatten("prod/mas", br#"{"NESTED":{"a":"hidden-value"}}"#, true).unwrap_err();
        assert!(!err.to_string().contains("hidden-value"));
    }
}
