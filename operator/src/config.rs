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
    /// Only the holder of this Lease reconciles (`MAS_OPERATOR_LEADER_ELECTION`, default on).
    pub leader_election: Option<LeaseConfig>,
}

/// Where the leader Lease lives; replicas of one install share it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// `MAS_OPERATOR_LEASE_NAMESPACE`, else `POD_NAMESPACE`, else the watched namespace, else
    /// `default`.
    pub namespace: String,
    /// `MAS_OPERATOR_LEASE_NAME`, default `mas-operator`.
    pub name: String,
    /// `MAS_OPERATOR_LEASE_SECONDS`, default 15: a dead leader is replaced within it.
    pub duration_seconds: u64,
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
            Some(v) => {
                Duration::from_secs(v.parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                    invalid(
                        "MAS_SECRETS_REFRESH_SECONDS",
                        "expected a positive number of seconds",
                    )
                })?)
            }
            None => Duration::from_secs(60),
        };
        let control_key = match non_empty("MAS_OPERATOR_CONTROL_KEY") {
            Some(k) if k.len() < 32 => {
                return Err(invalid(
                    "MAS_OPERATOR_CONTROL_KEY",
                    "must be at least 32 bytes",
                ));
            }
            Some(k) => Some(k.into_bytes()),
            None => None,
        };
        let watch_namespace = non_empty("MAS_OPERATOR_NAMESPACE");
        let leader_election = match non_empty("MAS_OPERATOR_LEADER_ELECTION").as_deref() {
            None | Some("true" | "1" | "on") => Some(LeaseConfig {
                namespace: non_empty("MAS_OPERATOR_LEASE_NAMESPACE")
                    .or_else(|| non_empty("POD_NAMESPACE"))
                    .or_else(|| watch_namespace.clone())
                    .unwrap_or_else(|| "default".to_owned()),
                name: non_empty("MAS_OPERATOR_LEASE_NAME")
                    .unwrap_or_else(|| "mas-operator".to_owned()),
                duration_seconds: match non_empty("MAS_OPERATOR_LEASE_SECONDS") {
                    Some(v) => v
                        .parse::<u64>()
                        .ok()
                        .filter(|s| (2..=300).contains(s))
                        .ok_or_else(|| {
                            invalid("MAS_OPERATOR_LEASE_SECONDS", "expected 2 to 300 seconds")
                        })?,
                    None => 15,
                },
            }),
            Some("false" | "0" | "off") => None,
            Some(_) => {
                return Err(invalid(
                    "MAS_OPERATOR_LEADER_ELECTION",
                    "expected true or false",
                ));
            }
        };
        Ok(Self {
            http_addr,
            instance: non_empty("POD_NAME").or_else(|| non_empty("HOSTNAME")),
            watch_namespace,
            secrets_refresh,
            control_key,
            leader_election,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
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
        let c = with(&[
            ("MAS_OPERATOR_CONTROL_KEY", &"k".repeat(32)),
            ("MAS_OPERATOR_NAMESPACE", "mas"),
        ])
        .unwrap();
        assert_eq!(c.control_key.unwrap().len(), 32);
        assert_eq!(c.watch_namespace.as_deref(), Some("mas"));
        let lease = c.leader_election.unwrap();
        assert_eq!(
            (
                lease.namespace.as_str(),
                lease.name.as_str(),
                lease.duration_seconds
            ),
            ("mas", "mas-operator", 15)
        );
        let c = with(&[
            ("POD_NAMESPACE", "mas-system"),
            ("MAS_OPERATOR_LEASE_SECONDS", "5"),
        ])
        .unwrap();
        assert_eq!(c.leader_election.as_ref().unwrap().namespace, "mas-system");
        assert_eq!(c.leader_election.unwrap().duration_seconds, 5);
        assert!(
            with(&[("MAS_OPERATOR_LEADER_ELECTION", "false")])
                .unwrap()
                .leader_election
                .is_none()
        );
        assert!(with(&[("MAS_OPERATOR_LEADER_ELECTION", "maybe")]).is_err());
    }
}
