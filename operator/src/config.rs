//! The only place reading environment variables.

use std::net::SocketAddr;

#[derive(Clone, Debug)]
pub struct Config {
    /// Address of the /healthz and /metrics server (`MAS_OPERATOR_HTTP_ADDR`, default 0.0.0.0:8080).
    pub http_addr: SocketAddr,
    /// Distinguishes operator replicas in Events (`POD_NAME`, set via the Downward API).
    pub instance: Option<String>,
    /// Watch only this namespace (`MAS_OPERATOR_NAMESPACE`); all namespaces when unset.
    pub watch_namespace: Option<String>,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let http_addr = std::env::var("MAS_OPERATOR_HTTP_ADDR")
            .unwrap_or_else(|_| "0.0.0.0:8080".to_owned())
            .parse()
            .map_err(|e| anyhow::anyhow!("MAS_OPERATOR_HTTP_ADDR: {e}"))?;
        let instance = std::env::var("POD_NAME").ok();
        let watch_namespace = std::env::var("MAS_OPERATOR_NAMESPACE").ok().filter(|s| !s.is_empty());
        Ok(Self { http_addr, instance, watch_namespace })
    }
}
