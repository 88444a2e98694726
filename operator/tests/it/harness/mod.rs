//! Test harness for the end-to-end tests: the cluster, the operator process, the fake app on
//! pod IPs, one test's namespace (`Env`), moto and the operator's RBAC.
//!
//! Needs MAS_TEST_KUBECONFIG (scripts/test starts a cluster with tests/cluster/up.sh, inside
//! the run's network namespace where pod IPs 198.18.0.0/16 are bindable and reachable).

pub mod aws;
pub mod cluster;
pub mod env;
pub mod fake_app;
pub mod operator;
pub mod rbac;
