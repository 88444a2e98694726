//! MasBackend operator: CRD types, pure builders, the rollout state machine and the thin
//! Kubernetes I/O layer around them.

pub mod crd;
pub mod build;
pub mod rollout;
