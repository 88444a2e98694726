//! `mas-operator run` as a child process scoped to one namespace.

use std::path::PathBuf;
use std::process::Stdio;

use super::cluster::kubeconfig_path;

pub struct Operator {
    child: tokio::process::Child,
    pub log: PathBuf,
}

impl Operator {
    pub fn start(ns: &str) -> Self {
        Self::start_with(ns, &kubeconfig_path())
    }

    pub fn start_with(ns: &str, kubeconfig: &std::path::Path) -> Self {
        Self::start_with_env(ns, kubeconfig, &[])
    }

    /// Leader election is on, as in production: the Lease lives in the test namespace and the
    /// identity is per namespace (a restarted operator is the same replica), unless `env` says
    /// otherwise (`POD_NAME` for a second replica, `MAS_OPERATOR_LEASE_NAMESPACE`).
    pub fn start_with_env(ns: &str, kubeconfig: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let id = env
            .iter()
            .find(|(k, _)| *k == "POD_NAME")
            .map_or(ns, |(_, v)| *v);
        let log = std::env::temp_dir().join(format!("mas-e2e-operator-{id}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mas-operator"))
            .arg("run")
            .env("KUBECONFIG", kubeconfig)
            .env("MAS_OPERATOR_NAMESPACE", ns)
            .env("MAS_OPERATOR_HTTP_ADDR", "127.0.0.1:0")
            // AWS_ENDPOINT_URL/AWS_REGION/credentials (moto) are inherited from the test env.
            .env("MAS_SECRETS_REFRESH_SECONDS", "1")
            // Turns the connection drain after a switch on.
            .env(
                "MAS_OPERATOR_CONTROL_KEY",
                "e2e-control-key-e2e-control-key-0123",
            )
            .env("RUST_LOG", "info,mas_operator=debug")
            .env("NO_COLOR", "1")
            .env("POD_NAME", format!("e2e-{ns}"))
            .env("MAS_OPERATOR_LEASE_SECONDS", "4")
            .envs(env.iter().copied())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn mas-operator");
        Self { child, log }
    }

    /// Address of /healthz and /metrics, from the operator's startup log line (waits for it).
    pub async fn http_addr(&self) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
            let text = strip_ansi(&raw);
            if let Some(line) = text.lines().find(|l| l.contains("serving /healthz")) {
                let at = line.find("addr=").expect("addr field") + "addr=".len();
                return line[at..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no startup line in {}",
                self.log.display()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

fn strip_ansi(raw: &str) -> String {
    let mut text = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            text.push(c);
        }
    }
    text
}
