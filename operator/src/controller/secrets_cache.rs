//! Secrets Manager reads, cached per MasBackend for `MAS_SECRETS_REFRESH_SECONDS`: reconciles
//! run often during a release (every Deployment status change), the values change rarely. A
//! failed read is never cached, so a fixed secret is noticed on the next (backed-off) try.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::aws_secrets;
use crate::crd::MasBackendSpec;
use crate::desired::{SecretValues, content_hash};
use crate::metrics::Metrics;

/// What a MasBackend's pods get from Secrets Manager.
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    /// Content hash and values of `spec.secrets`; `None` when it is empty.
    pub values: Option<(String, SecretValues)>,
    /// Docker config of `spec.imagePullSecretsFrom`; `None` when it is empty.
    pub pull_config: Option<Vec<u8>>,
}

struct Entry {
    ids: (Vec<String>, Vec<String>),
    at: Instant,
    fetched: Fetched,
}

pub struct SecretsCache {
    client: aws_sdk_secretsmanager::Client,
    refresh: Duration,
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl SecretsCache {
    pub fn new(client: aws_sdk_secretsmanager::Client, refresh: Duration) -> Self {
        Self {
            client,
            refresh,
            entries: Mutex::default(),
        }
    }

    /// The values for `(namespace, name)`; errors name the secret id, never a value.
    pub async fn get(
        &self,
        key: (&str, &str),
        spec: &MasBackendSpec,
        metrics: &Metrics,
    ) -> Result<Fetched, String> {
        if spec.secrets.is_empty() && spec.image_pull_secrets_from.is_empty() {
            return Ok(Fetched::default());
        }
        let ids = (spec.secrets.clone(), spec.image_pull_secrets_from.clone());
        let k = (key.0.to_owned(), key.1.to_owned());
        if let Ok(entries) = self.entries.lock()
            && let Some(e) = entries.get(&k)
            && e.ids == ids
            && e.at.elapsed() < self.refresh
        {
            return Ok(e.fetched.clone());
        }
        let result = self.fetch(spec).await;
        metrics.secrets_call(result.is_ok());
        let fetched = result.map_err(|e| e.to_string())?;
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                k,
                Entry {
                    ids,
                    at: Instant::now(),
                    fetched: fetched.clone(),
                },
            );
        }
        Ok(fetched)
    }

    async fn fetch(&self, spec: &MasBackendSpec) -> Result<Fetched, aws_secrets::SecretsError> {
        let values = if spec.secrets.is_empty() {
            None
        } else {
            let v = aws_secrets::fetch(&self.client, &spec.secrets).await?;
            Some((content_hash(&v), v))
        };
        let pull_config = if spec.image_pull_secrets_from.is_empty() {
            None
        } else {
            Some(aws_secrets::pull_config(&self.client, &spec.image_pull_secrets_from).await?)
        };
        Ok(Fetched {
            values,
            pull_config,
        })
    }

    /// Drops the entry of a deleted MasBackend.
    pub fn forget(&self, key: (&str, &str)) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&(key.0.to_owned(), key.1.to_owned()));
        }
    }
}
