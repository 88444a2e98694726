//! Handles on the real outside pieces the tests drive: the SMTP sink's Maildir, the
//! Node test clients, Chromium.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::app::required_env;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("server/ lies in the repository")
        .to_path_buf()
}

/// `tests/node` with its packages (socket.io-client, bullmq, ws) installed; installs
/// them once per test run when missing (`scripts/test` normally has done it).
pub fn node_dir() -> PathBuf {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let dir = repo_root().join("tests/node");
            let missing = [
                "socket.io-client",
                "bullmq",
                "ws",
                "oidc-provider",
                "playwright-core",
            ]
            .iter()
            .any(|p| !dir.join("node_modules").join(p).exists());
            if missing {
                let status = std::process::Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund"])
                    .current_dir(&dir)
                    .status()
                    .expect("npm is required for the Node test clients");
                assert!(status.success(), "npm install in tests/node failed");
            }
            dir
        })
        .clone()
}

/// The SMTP sink's Maildir (`MAS_MAIL_DIR`), with the subfolders aiosmtpd's Mailbox
/// handler needs (it answers 500 without them).
pub fn mail_dir() -> PathBuf {
    let dir = PathBuf::from(required_env("MAS_MAIL_DIR"));
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(dir.join(sub)).expect("create Maildir folders");
    }
    dir
}

/// Points the server's mailer at the SMTP sink (`SMTP_HOST`, `SMTP_PORT`), without TLS.
pub fn smtp_env(env: &mut HashMap<String, String>) {
    env.insert("SMTP_HOST".into(), required_env("SMTP_HOST"));
    env.insert("SMTP_PORT".into(), required_env("SMTP_PORT"));
    env.insert("SMTP_TLS".into(), "none".into());
}

/// The Chromium binary: `MAS_CHROMIUM`, else `chromium` on `PATH`.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("MAS_CHROMIUM").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .expect("Chromium not found: set MAS_CHROMIUM or put chromium on PATH (scripts/test does)")
}
