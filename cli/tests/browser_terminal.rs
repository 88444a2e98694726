//! Headless Chromium loads the xterm.js page served by the server and pairs with
//! the real `mas-terminal` CLI: the shell's output must render in the browser's
//! terminal. Leaves a screenshot in the target tmp dir.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use mas_server::auth::Role;
use mas_server::config::Config;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The Chromium binary: `MAS_CHROMIUM`, else `chromium` on `PATH`.
fn chromium() -> PathBuf {
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

fn env_for(prefix: &str) -> HashMap<String, String> {
    let redis = std::env::var("REDIS_URL")
        .expect("REDIS_URL is not set: run the tests through scripts/test");
    let database = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the tests through scripts/test");
    let host = redis
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1:6379")
        .to_string();
    let assets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/assets");
    [
        ("APP_ENV", "test".to_string()),
        ("DATABASE_URL", database),
        ("REDIS_URL", format!("redis://{host}/4")),
        (
            "JWT_SECRET",
            "cli-test-secret-cli-test-secret-cli!!".to_string(),
        ),
        ("ADMIN_EMAIL", "admin@test.local".to_string()),
        ("ADMIN_PASSWORD", "admin-password-1".to_string()),
        ("SUPERADMIN_EMAIL", "root@test.local".to_string()),
        ("SUPERADMIN_PASSWORD", "root-password-1".to_string()),
        ("REALTIME_REDIS_PREFIX", prefix.to_string()),
        ("ASSETS_DIR", assets.to_string_lossy().into_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

#[sqlx::test(migrations = false)]
async fn xterm_page_renders_the_paired_cli_shell(db: PgPool) {
    let chromium = chromium();
    assert!(
        chromium.exists(),
        "chromium is required at {}",
        chromium.display()
    );
    let prefix = format!(
        "test-rt-browser-{}",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let config = Config::from_map(&env_for(&prefix)).unwrap();
    mas_server::startup::migrate(&db).await.unwrap();
    mas_server::startup::seed(&db, &config).await.unwrap();
    let redis = mas_server::startup::connect_redis(&config).await.unwrap();
    let state = mas_server::build_state(config, db, redis, CancellationToken::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(mas_server::serve(listener, state.clone(), async move {
        stopped.cancelled().await
    }));

    let student = Uuid::new_v4();
    sqlx::query("insert into users (id, email, password_hash, name, role) values ($1, $2, 'x', 'S', 'student')")
        .bind(student)
        .bind(format!("s-{student}@test.local"))
        .execute(&state.db)
        .await
        .unwrap();
    let bearer = state
        .jwt
        .issue(
            student,
            Role::Student,
            "s@test.local",
            Duration::from_secs(600),
        )
        .unwrap();

    // The shell greets with a computed line so the text can only come from it.
    let dir = tempdir("shell");
    let script = dir.join("greet.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"MAS-TERMINAL-OK $((6*7))\"\nexec /bin/sh\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let body: Value = reqwest::Client::new()
        .post(format!("{base}/api/terminal/pairings"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["data"]["token"].as_str().unwrap().to_string();
    let _cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_mas-terminal"))
        .args(["--url", &base, "--token", &token, "--shell"])
        .arg(&script)
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let node_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/node");
    assert!(
        node_dir.join("node_modules/ws").exists(),
        "run `npm install` in tests/node (scripts/test does it)"
    );
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("terminal.png");
    let _ = std::fs::remove_file(&shot);
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("node")
            .arg(node_dir.join("screenshot.mjs"))
            .arg(format!("{base}/terminal#token={token}"))
            .arg("MAS-TERMINAL-OK 42")
            .arg(&shot)
            .arg(tempdir("chromium-profile"))
            .env("MAS_CHROMIUM", &chromium)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("browser run finished in time")
    .expect("node runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no report; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        report["ok"], true,
        "browser terminal did not show the shell output: {report}"
    );
    let size = std::fs::metadata(&shot).expect("screenshot written").len();
    assert!(size > 5_000, "screenshot looks empty ({size} bytes)");
    eprintln!("screenshot: {}", shot.display());
    stop.cancel();
}
