//! Test harness for the end-to-end tests: the operator process, the fake app on pod IPs, one
//! test's namespace (`Env`), moto, the operator's RBAC and the real data path (`DataPath`);
//! the cluster-level machinery (pod runner, Traefik, load, Socket.IO members, TCP proxy) is the
//! `mas-harness` crate (tests/harness), shared with scripts/demo and the benchmarks.
//!
//! Needs MAS_TEST_KUBECONFIG (scripts/test starts a cluster with tests/cluster/up.sh, inside
//! the run's network namespace where pod IPs 198.18.0.0/16 are bindable and reachable).

pub mod aws;
pub mod crd;
pub mod data_path;
pub mod env;
pub mod fake_app;
pub mod operator;
pub mod rbac;

pub use mas_harness::{cluster, load, members, pod_runner, tcp_proxy, traefik};
