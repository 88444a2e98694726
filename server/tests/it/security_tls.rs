//! TLS to PostgreSQL and Redis with a self-signed CA (made with `openssl` here): the
//! test's own PostgreSQL with `ssl=on` accepting only `hostssl` connections, and its
//! own Redis with only a `--tls-port`. The server connects with
//! `sslmode=verify-full` + `DATABASE_CA_FILE` and `rediss://` + `REDIS_CA_FILE`; its
//! pool, cache, queues (bullmq) and Socket.IO adapter all work over TLS. A CA that
//! did not sign the server certificates is refused.

use std::collections::HashMap;
use std::time::Duration;

use mas_server::config::Config;
use reqwest::Method;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::agent::Agent;
use crate::support::app::test_env;
use crate::support::instances::{OwnPostgres, OwnRedis, RedisTls, Scratch, make_pki};
use crate::support::services::{self, mail_dir};
use crate::support::wait::wait_for;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

fn tls_env(pg: &OwnPostgres, redis: &OwnRedis, ca: &std::path::Path) -> HashMap<String, String> {
    let mut env = test_env();
    env.insert("DATABASE_URL".into(), pg.url("mas", "sslmode=verify-full"));
    env.insert("DATABASE_CA_FILE".into(), ca.display().to_string());
    env.insert("REDIS_URL".into(), redis.url());
    env.insert("REDIS_CA_FILE".into(), ca.display().to_string());
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_uses_verified_tls_to_postgres_and_redis() {
    mail_dir();
    let scratch = Scratch::new("pki");
    let pki = make_pki(&scratch.0);
    let pg = OwnPostgres::start(Some(pki.server.clone()));
    pg.create_db("mas");
    let redis = OwnRedis::start(Some(RedisTls {
        server: pki.server.clone(),
        ca: pki.ca.clone(),
    }))
    .await;

    let mut env = tls_env(&pg, &redis, &pki.ca);
    env.insert("PROCESS_ROLE".into(), "all".into());
    env.insert("QUEUE_PREFIX".into(), "tls".into());
    env.insert("EMAIL_OUTBOX_POLL_MS".into(), "100".into());
    services::smtp_env(&mut env);
    let config = Config::from_map(&env).expect("config");
    let state = mas_server::bootstrap(config, CancellationToken::new())
        .await
        .expect("bootstrap over TLS (migrate, seed, Redis)");
    let app = TestApp::serve_state(state).await;

    // The pool's sessions really are encrypted.
    let encrypted: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid) \
         where s.ssl and a.datname = 'mas'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert!(encrypted >= 1, "no TLS session in pg_stat_ssl");

    let (status, health) = app.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(status, 200, "{health}");
    let token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, _) = app
        .call(Method::GET, "/api/auth/me", Some(&token), None)
        .await;
    assert_eq!(status, 200);

    // Queues over TLS: a registration's mail goes outbox → emailQueue → SMTP.
    let to = format!(
        "tls-{}@test.local",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let (status, _) = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"name": "Tls", "email": to, "password": "long-enough-1"})),
        )
        .await;
    assert_eq!(status, 202);
    let db = app.state.db.clone();
    wait_for(
        "the mail sent over the TLS queue",
        Duration::from_secs(30),
        || {
            let (db, to) = (db.clone(), to.clone());
            async move {
                let sent: Option<chrono::DateTime<chrono::Utc>> =
                    sqlx::query_scalar("select sent_at from email_outbox where to_email = $1")
                        .bind(&to)
                        .fetch_optional(&db)
                        .await
                        .ok()??;
                sent.map(|_| ())
            }
        },
    )
    .await;

    // The Socket.IO adapter (RESP3 pub/sub) over TLS.
    let mut client = Agent::node("tls").await;
    client.connect_ok(&app.base, &token, &["websocket"]).await;
    client.exit().await;
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_from_another_ca_are_refused() {
    let scratch = Scratch::new("pki");
    let pki = make_pki(&scratch.0);
    let pg = OwnPostgres::start(Some(pki.server.clone()));
    pg.create_db("mas");
    let redis = OwnRedis::start(Some(RedisTls {
        server: pki.server.clone(),
        ca: pki.ca.clone(),
    }))
    .await;

    let wrong = Config::from_map(&tls_env(&pg, &redis, &pki.other_ca)).unwrap();
    let err = mas_server::startup::connect_database(&wrong)
        .await
        .expect_err("PostgreSQL with a CA that did not sign its certificate");
    assert!(
        format!("{err:#}").to_lowercase().contains("certificate"),
        "{err:#}"
    );
    let err = mas_server::startup::connect_redis(&wrong)
        .await
        .expect_err("Redis with a CA that did not sign its certificate");
    assert!(
        format!("{err:#}").to_lowercase().contains("certificate")
            || format!("{err:#}").contains("Unknown"),
        "{err:#}"
    );

    // Without a CA setting the self-signed CA is not trusted either.
    let mut env = tls_env(&pg, &redis, &pki.ca);
    env.remove("DATABASE_CA_FILE");
    env.remove("REDIS_CA_FILE");
    let untrusted = Config::from_map(&env).unwrap();
    assert!(
        mas_server::startup::connect_database(&untrusted)
            .await
            .is_err()
    );
    assert!(
        mas_server::startup::connect_redis(&untrusted)
            .await
            .is_err()
    );

    // And plain connections are not accepted at all.
    let mut env = tls_env(&pg, &redis, &pki.ca);
    env.insert("DATABASE_URL".into(), pg.url("mas", "sslmode=disable"));
    let plain = Config::from_map(&env).unwrap();
    assert!(mas_server::startup::connect_database(&plain).await.is_err());
}
