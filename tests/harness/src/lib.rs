//! The machinery the end-to-end tests, `scripts/demo` and `scripts/bench-zero-downtime` share
//! to run the real server under the operator on the local cluster (tests/cluster):
//! - `pod_runner`: a kubelet for labelled pods: the real process on the pod IP, probes,
//!   preStop/SIGTERM/SIGKILL, Job pods;
//! - `traefik`: the ingress controller, out of cluster;
//! - `load`, `members`: HTTP load and Socket.IO meeting members through the ingress;
//! - `tcp_proxy`: a dependency that can be cut;
//! - `cluster`: the test cluster's kubeconfig and kubectl.

pub mod cluster;
pub mod load;
pub mod members;
pub mod pod_runner;
pub mod tcp_proxy;
pub mod traefik;

/// reqwest's Display hides the cause ("error sending request"); include the whole chain.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}
