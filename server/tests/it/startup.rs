//! Cold start: seeding is idempotent (also when replicas seed concurrently) and
//! configuration errors are one clear line, in the library and the real binary.

use std::collections::HashMap;
use std::process::Command;

use mas_server::config::{Config, ConfigError};
use sqlx::PgPool;

use crate::support::ADMIN_EMAIL;
use crate::support::app::test_env;

async fn snapshot(db: &PgPool) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = sqlx::query_as(
        "select 'user', id::text || ':' || lower(email) || ':' || role || ':' || is_active from users \
         union all select 'college', id::text || ':' || name from colleges \
         union all select 'course', id::text || ':' || slug from courses \
         union all select 'batch', id::text || ':' || name || ':' || coalesce(course_id::text, '') from batches",
    )
    .fetch_all(db)
    .await
    .unwrap();
    rows.sort();
    rows
}

#[sqlx::test(migrations = false)]
async fn seeding_twice_and_concurrently_yields_the_same_rows(db: PgPool) {
    let mut env = test_env();
    env.insert("ENABLE_SEEDING".into(), "true".into());
    let config = Config::from_map(&env).unwrap();
    mas_server::startup::migrate(&db).await.unwrap();

    // Two replicas starting at once on an empty database.
    let (a, b) = tokio::join!(
        mas_server::startup::seed(&db, &config),
        mas_server::startup::seed(&db, &config)
    );
    a.unwrap();
    b.unwrap();
    let first = snapshot(&db).await;
    let count = |kind: &str| first.iter().filter(|(k, _)| k == kind).count();
    assert_eq!(count("user"), 2, "{first:?}");
    assert_eq!(count("college"), 6);
    assert_eq!(count("course"), 3);
    assert_eq!(count("batch"), 3);
    assert!(
        first.iter().all(|(k, v)| k != "batch" || !v.ends_with(':')),
        "batches linked to courses"
    );

    mas_server::startup::seed(&db, &config).await.unwrap();
    mas_server::startup::seed(&db, &config).await.unwrap();
    let (a, b) = tokio::join!(
        mas_server::startup::seed(&db, &config),
        mas_server::startup::seed(&db, &config)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(snapshot(&db).await, first);

    // A re-seed repairs a demoted or deactivated privileged account but keeps
    // its (possibly changed) password.
    sqlx::query("update users set role = 'student', is_active = false, password_hash = 'changed' where email = $1")
        .bind(ADMIN_EMAIL)
        .execute(&db)
        .await
        .unwrap();
    mas_server::startup::seed(&db, &config).await.unwrap();
    assert_eq!(snapshot(&db).await, first);
    let hash: String = sqlx::query_scalar("select password_hash from users where email = $1")
        .bind(ADMIN_EMAIL)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(hash, "changed");
}

#[sqlx::test(migrations = false)]
async fn migrations_are_idempotent_and_concurrent_safe(db: PgPool) {
    let (a, b) = tokio::join!(
        mas_server::startup::migrate(&db),
        mas_server::startup::migrate(&db)
    );
    a.unwrap();
    b.unwrap();
    mas_server::startup::migrate(&db).await.unwrap();
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        applied as usize,
        mas_server::startup::MIGRATOR.iter().count()
    );
}

fn base_env() -> HashMap<String, String> {
    [
        (
            "DATABASE_URL",
            "postgres://mas:db-password-xyz@127.0.0.1:1/mas",
        ),
        ("REDIS_URL", "redis://127.0.0.1:1"),
        ("JWT_SECRET", "jwt-secret-value-jwt-secret-value-1234"),
        ("ADMIN_EMAIL", "admin@example.com"),
        ("ADMIN_PASSWORD", "admin-password-value"),
        ("SUPERADMIN_EMAIL", "root@example.com"),
        ("SUPERADMIN_PASSWORD", "root-password-value"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

const SECRET_VALUES: [&str; 4] = [
    "db-password-xyz",
    "jwt-secret-value",
    "admin-password-value",
    "root-password-value",
];

#[test]
fn missing_jwt_secret_is_named_by_from_map() {
    let mut env = base_env();
    env.remove("JWT_SECRET");
    let err = Config::from_map(&env).unwrap_err();
    assert_eq!(err, ConfigError::Missing("JWT_SECRET"));
    assert_eq!(
        err.to_string(),
        "configuration error: JWT_SECRET is required but not set"
    );
    // Blank counts as missing.
    env.insert("JWT_SECRET".into(), "   ".into());
    assert_eq!(
        Config::from_map(&env).unwrap_err(),
        ConfigError::Missing("JWT_SECRET")
    );
    assert!(Config::from_map(&base_env()).is_ok());
}

/// Runs the real binary with exactly `env` (nothing inherited).
fn run_binary(env: &HashMap<String, String>) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mas-server"))
        .env_clear()
        .envs(env)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .output()
        .expect("run mas-server");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn binary_exits_2_with_one_line_naming_the_variable() {
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("JWT_SECRET", None),
        ("JWT_SECRET", Some("too-short")),
        ("DATABASE_URL", None),
        ("DATABASE_URL", Some("mysql://u:db-password-xyz@h/db")),
        ("ADMIN_PASSWORD", Some("short")),
        ("LOGIN_MAX_ATTEMPTS", Some("many")),
    ];
    for (var, value) in cases {
        let mut env = base_env();
        match value {
            None => {
                env.remove(var);
            }
            Some(v) => {
                env.insert(var.to_string(), v.to_string());
            }
        }
        let (code, stdout, stderr) = run_binary(&env);
        assert_eq!(code, Some(2), "{var}={value:?}: stderr {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{var}: expected one line, got {stderr:?}");
        assert!(lines[0].contains(var), "{var}: {stderr}");
        assert!(lines[0].starts_with("configuration error:"), "{stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{stderr}"
        );
        for secret in SECRET_VALUES.iter().chain(["too-short"].iter()) {
            assert!(
                !stderr.contains(secret),
                "{var}: secret value leaked: {stderr}"
            );
        }
        assert!(stdout.is_empty(), "{stdout}");
    }
}
