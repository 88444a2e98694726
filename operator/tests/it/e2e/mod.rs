//! End-to-end tests against a real control plane (etcd, kube-apiserver, controller-manager,
//! scheduler, kwok). Pods are fake (kwok) but get real, bindable IPs inside the run's network
//! namespace, so each test binds HTTP servers on the pod IPs and the operator's production
//! health gate probes them over TCP. Each test runs the real `mas-operator run` binary scoped
//! to its own namespace.

mod ha;
mod lifecycle;
mod plugin;
mod rbac;
mod release;
mod rollback;
mod secrets;
mod snapshots;
mod validation;
mod zero_downtime;
