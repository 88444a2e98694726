//! The only place reading environment variables.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    /// Address of the /healthz and /metrics server (`MAS_OPERATOR_HTTP_ADDR`, default 0.0.0.0:8080).
    pub http_addr: SocketAddr,
    /// Distinguishes operator replicas in Events (`POD_NAME`, set via the Downward API).
    pub instance: Option<String>,
    /// Watch only this namespace (`MAS_OPERATOR_NAMESPACE`); all namespaces when unset.
    pub watch_namespace: Option<String>,
    /// How often `spec.secrets` are re-read to notice rotations (`MAS_SECRETS_REFRESH_SECONDS`, default 60).
    pub secrets_refresh: Duration,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let http_addr = std::env::var("MAS_OPERATOR_HTTP_ADDR")
            .unwrap_or_else(|_| "0.0.0.0:8080".to_owned())
            .parse()
            .map_err(|e| anyhow::anyhow!("MAS_OPERATOR_HTTP_ADDR: {e}"))?;
        let instance = std::env::var("POD_NAME").ok();
        let watch_namespace = std::env::var("MAS_OPERATOR_NAMESPACE")
            .ok()
            .filter(|s| !s.is_empty());
        let secrets_refresh = match std::env::var("MAS_SECRETS_REFRESH_SECONDS") {
            Ok(v) => {
                Duration::from_secs(v.parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                    anyhow::anyhow!(
                        "MAS_SECRETS_REFRESH_SECONDS: expected a positive number of seconds"
                    )
                })?)
            }
            Err(_) => Duration::from_secs(60),
        };
        Ok(Self {
            http_addr,
            instance,
            watch_namespace,
            secrets_refresh,
        })
    }
}
