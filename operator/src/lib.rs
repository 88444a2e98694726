//! MasBackend operator: CRD types, pure builders, the rollout state machine and the thin
//! Kubernetes I/O layer around them.

pub mod aws_secrets;
pub mod config;
pub mod controller;
pub mod crd;
pub mod desired;
pub mod health;
pub mod http;
pub mod metrics;
pub mod rollout;

/// The fixture shared with the end-to-end tests.
#[cfg(test)]
#[path = "../tests/fixtures/mod.rs"]
pub(crate) mod testing;
