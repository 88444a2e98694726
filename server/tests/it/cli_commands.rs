//! The real `mas-server` binary's command line: `serve` (default), `migrate`,
//! `healthcheck`, `openapi`, `--help`, `--version`; `MIGRATE_ON_START=false` with
//! `mas-server migrate` (as the operator's migration Job runs it) and `APP_VERSION`.

use std::collections::HashMap;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;

use crate::support::app::free_port;
use tokio::process::{Child, Command};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mas-server"));
    cmd.kill_on_drop(true);
    cmd
}

/// Runs with exactly `env` (nothing inherited) and `args`.
async fn run(env: &HashMap<String, String>, args: &[&str]) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = bin()
        .env_clear()
        .envs(env)
        .args(args)
        .output()
        .await
        .expect("run mas-server");
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// DATABASE_URL of the test's own (fresh) database.
fn database_url(db: &PgPool) -> String {
    let name = db.connect_options().get_database().unwrap().to_string();
    let root = std::env::var("DATABASE_URL").expect("DATABASE_URL is not set");
    let (server, _) = root.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

fn server_env(db: &PgPool, port: u16) -> HashMap<String, String> {
    let mut env = crate::support::app::test_env();
    env.insert("DATABASE_URL".into(), database_url(db));
    env.insert("HOST".into(), "127.0.0.1".into());
    env.insert("PORT".into(), port.to_string());
    env.insert("RUST_LOG".into(), "warn".into());
    env
}

async fn wait_healthy(port: u16, child: &mut Child) -> reqwest::Response {
    let client = reqwest::Client::new();
    for _ in 0..150 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("mas-server exited early: {status}");
        }
        if let Ok(res) = client
            .get(format!("http://127.0.0.1:{port}/api/health"))
            .send()
            .await
            && res.status() == 200
        {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("mas-server did not become healthy");
}

async fn sigterm_and_wait(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exit after SIGTERM")
        .unwrap()
}

#[tokio::test]
async fn help_version_openapi_and_bad_arguments() {
    let none = HashMap::new();
    let (code, stdout, _) = run(&none, &["--help"]).await;
    assert_eq!(code, Some(0));
    for sub in ["serve", "migrate", "healthcheck", "openapi"] {
        assert!(stdout.contains(sub), "--help lists {sub}: {stdout}");
    }
    let (code, stdout, _) = run(&none, &["--version"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(
        stdout.trim(),
        format!("mas-server {}", env!("CARGO_PKG_VERSION"))
    );
    let (code, stdout, _) = run(&none, &["healthcheck", "--help"]).await;
    assert_eq!(code, Some(0));
    assert!(stdout.contains("--url"), "{stdout}");

    for args in [
        &["bogus"][..],
        &["--nope"],
        &["healthcheck", "--timeout-seconds", "soon"],
    ] {
        let (code, stdout, stderr) = run(&none, args).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("Usage:"),
            "{args:?}: usage on stderr: {stderr}"
        );
        assert!(stdout.is_empty(), "{stdout}");
    }

    // No configuration needed; the same document as the library's.
    let (code, stdout, stderr) = run(&none, &["openapi"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::to_value(mas_server::http::openapi::document()).unwrap()
    );
}

#[tokio::test]
async fn config_errors_still_exit_2_with_one_line() {
    // `serve` is the default: the same exit 2 as before subcommands existed.
    let env: HashMap<String, String> = [("REDIS_URL", "redis://127.0.0.1:1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for args in [&[][..], &["serve"], &["migrate"]] {
        let (code, _, stderr) = run(&env, args).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim(),
            "configuration error: DATABASE_URL is required but not set"
        );
    }
    let mut env = env;
    env.insert(
        "DATABASE_URL".into(),
        "postgres://mas:secret-db-pw@127.0.0.1:1/mas".into(),
    );
    let (code, _, stderr) = run(&env, &["migrate"]).await;
    assert_eq!(code, Some(1), "unreachable database: {stderr}");
    assert!(stderr.starts_with("migration failed:"), "{stderr}");
    assert!(!stderr.contains("secret-db-pw"), "{stderr}");
}

#[sqlx::test(migrations = false)]
async fn healthcheck_reports_a_live_and_a_stopped_server(db: PgPool) {
    mas_server::startup::migrate(&db).await.unwrap();
    let port = free_port();
    let env = server_env(&db, port);
    let mut server = bin().env_clear().envs(&env).spawn().unwrap();
    wait_healthy(port, &mut server).await;

    // PORT as the server reads it, so a container probe needs no arguments.
    let probe_env: HashMap<String, String> = [("PORT".to_string(), port.to_string())].into();
    let (code, stdout, stderr) = run(&probe_env, &["healthcheck"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("healthy: ok"), "{stdout}");
    let url = format!("http://127.0.0.1:{port}/api/health");
    let (code, _, stderr) = run(&HashMap::new(), &["healthcheck", "--url", &url]).await;
    assert_eq!(code, Some(0), "{stderr}");
    // A 200 that is not the health report is not healthy.
    let live = format!("http://127.0.0.1:{port}/api/health/nope");
    let (code, _, stderr) = run(&HashMap::new(), &["healthcheck", "--url", &live]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 404"), "{stderr}");

    assert!(sigterm_and_wait(&mut server).await.success());
    let (code, stdout, stderr) = run(&probe_env, &["healthcheck"]).await;
    assert_eq!(code, Some(1), "stopped server: {stdout}");
    assert!(
        stderr.starts_with(&format!("unhealthy: {url}: ")),
        "{stderr}"
    );
    // A bad PORT is a reason too, still exit 1 (2 is reserved for container health checks).
    let bad: HashMap<String, String> = [("PORT".to_string(), "eighty".to_string())].into();
    let (code, _, stderr) = run(&bad, &["healthcheck"]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("PORT"), "{stderr}");
}

#[sqlx::test(migrations = false)]
async fn without_migrate_on_start_the_migrate_command_prepares_the_database(db: PgPool) {
    let table_exists = |name: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, bool>("select to_regclass($1) is not null")
                .bind(name)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    let port = free_port();
    let mut env = server_env(&db, port);
    env.insert("MIGRATE_ON_START".into(), "false".into());
    env.insert("APP_VERSION".into(), "2026.12.2-green".into());

    // A fresh database is not migrated at boot: the server says what to run and stops.
    let (code, _, stderr) = run(&env, &["serve"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("run `mas-server migrate` first"),
        "{stderr}"
    );
    assert!(!table_exists("_sqlx_migrations").await);
    assert!(!table_exists("users").await);

    // What the migration Job runs: only DATABASE_URL is needed; idempotent.
    let job_env: HashMap<String, String> = [("DATABASE_URL".to_string(), database_url(&db))].into();
    let known = mas_server::startup::MIGRATOR.iter().count() as i64;
    for _ in 0..2 {
        let (code, stdout, stderr) = run(&job_env, &["migrate"]).await;
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stdout.starts_with("database migrated"), "{stdout}");
        let applied: i64 =
            sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(applied, known);
    }
    let before: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("select version, checksum from _sqlx_migrations order by version")
            .fetch_all(&db)
            .await
            .unwrap();

    // Now it boots (and seeds) without touching the migrations; APP_VERSION shows.
    let mut server = bin().env_clear().envs(&env).spawn().unwrap();
    let res = wait_healthy(port, &mut server).await;
    assert_eq!(res.headers()["x-app-version"], "2026.12.2-green");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["version"], "2026.12.2-green");
    let admins: i64 = sqlx::query_scalar("select count(*) from users where email = $1")
        .bind(crate::support::ADMIN_EMAIL)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(admins, 1, "seeding still runs");
    let after: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("select version, checksum from _sqlx_migrations order by version")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(before, after);
    // Every response names the version, errors and the Socket.IO endpoint included.
    let client = reqwest::Client::new();
    for path in [
        "/api/nope",
        "/socket.io/?EIO=4&transport=polling",
        "/api/health/live",
    ] {
        let res = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()["x-app-version"],
            "2026.12.2-green",
            "{path}: {}",
            res.status()
        );
    }
    assert!(sigterm_and_wait(&mut server).await.success());
}
