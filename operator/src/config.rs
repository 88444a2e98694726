//! The only place reading environment variables.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    /// Address of the /healthz, /readyz and /metrics server (`MAS_OPERATOR_HTTP_ADDR`, default
    /// 0.0.0.0:8080).
    pub http_addr: SocketAddr,
    /// Distinguishes operator replicas in Events and the leader Lease (`POD_NAME`, set via the
    /// Downward API; the host name otherwise).
    pub instance: Option<String>,
    /// Watch only this namespace (`MAS_OPERATOR_NAMESPACE`); all namespaces when unset.
    pub watch_namespace: Option<String>,
    /// How often `spec.secrets` are re-read to notice rotations (`MAS_SECRETS_REFRESH_SECONDS`,
    /// default 60).
    pub secrets_refresh: Duration,
    /// Key deriving each MasBackend's control token (`MAS_OPERATOR_CONTROL_KEY`, at least 32
    /// bytes); unset: no connection draining after a switch.
    pub control_key: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let http_addr = non_empty("MAS_OPERATOR_HTTP_ADDR")
            .unwrap_or_else(|| "0.0.0.0:8080".to_owned())
            .parse()
            .map_err(|e| invalid("MAS_OPERATOR_HTTP_ADDR", format!("{e}")))?;
        let secrets_refresh = match non_empty("MAS_SECRETS_REFRESH_SECONDS") {
            Some(v) => Duration::from_secs(
                v.parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| invalid("MAS_SECRETS_REFRESH_SECONDS", "expected a positive number of seconds"))?,
            ),
            None => Duration::from_secs(60),
        };
        let control_key = match non_empty("MAS_OPERATOR_CONTROL_KEY") {
            Some(k) if k.len() < 32 => {
                return Err(invalid("MAS_OPERATOR_CONTROL_KEY", "must be at least 32 bytes"));
            }
            Some(k) => Some(k.into_bytes()),
            None => None,
        };
        Ok(Self {
            http_addr,
            instance: non_empty("POD_NAME").or_else(|| non_empty("HOSTNAME")),
            watch_namespace: non_empty("MAS_OPERATOR_NAMESPACE"),
            secrets_refresh,
            control_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: std::collections::HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_and_errors_name_the_variable_never_the_key() {
        let c = with(&[]).unwrap();
        assert_eq!(c.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.secrets_refresh, Duration::from_secs(60));
        assert!(c.control_key.is_none() && c.watch_namespace.is_none());
        let e = with(&[("MAS_SECRETS_REFRESH_SECONDS", "0")]).unwrap_err();
        assert_eq!(e.var, "MAS_SECRETS_REFRESH_SECONDS");
        let e = with(&[("MAS_OPERATOR_CONTROL_KEY", "short-secret")]).unwrap_err();
        assert!(!e.to_string().contains("short-secret"));
        let c = with(&[("MAS_OPERATOR_CONTROL_KEY", &"k".repeat(32)), ("MAS_OPERATOR_NAMESPACE", "mas")]).unwrap();
        assert_eq!(c.control_key.unwrap().len(), 32);
        assert_eq!(c.watch_namespace.as_deref(), Some("mas"));
    }
}
