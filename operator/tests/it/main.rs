//! The operator's integration tests in one binary (one link instead of one per file):
//! `e2e` against the real control plane started by tests/cluster/up.sh, `aws_secrets`
//! against moto, `chart` on the checked-in files. The shared machinery is in `harness`.

mod aws_secrets;
mod chart;
mod e2e;
mod harness;

#[path = "../fixtures/mod.rs"]
mod fixtures;
