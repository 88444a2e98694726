//! Test harness: the real server on 127.0.0.1:0 against real PostgreSQL (a fresh
//! database per test from `#[sqlx::test]`) and real Redis (`REDIS_URL`).
#![allow(dead_code)]

pub mod api;

use std::collections::HashMap;
use std::net::SocketAddr;

use mas_server::config::Config;
use mas_server::state::AppState;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ADMIN_EMAIL: &str = "admin@test.local";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const SUPERADMIN_EMAIL: &str = "root@test.local";
pub const SUPERADMIN_PASSWORD: &str = "root-password-1";

/// Environment every test server gets; individual tests override entries.
pub fn test_env() -> HashMap<String, String> {
    let redis = std::env::var("REDIS_URL")
        .expect("REDIS_URL is not set: run the tests through scripts/test");
    let database = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the tests through scripts/test");
    [
        ("APP_ENV", "test"),
        ("DATABASE_URL", database.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("JWT_SECRET", "test-secret-test-secret-test-secret!!"),
        ("ADMIN_EMAIL", ADMIN_EMAIL),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("SUPERADMIN_EMAIL", SUPERADMIN_EMAIL),
        ("SUPERADMIN_PASSWORD", SUPERADMIN_PASSWORD),
        ("CORS_ALLOWED_ORIGINS", r#"["https://app.example.com"]"#),
        ("SHUTDOWN_GRACE_SECONDS", "10"),
        // No endpoint-propagation window unless a test measures it (shutdown_drain.rs).
        ("SHUTDOWN_DRAIN_SECONDS", "0"),
        // Queue workers only where a test asks for them (queues_* tests use their own prefix).
        ("PROCESS_ROLE", "api"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([(
        // Socket.IO pub/sub channels ignore the Redis db number: isolate each test server.
        "REALTIME_REDIS_PREFIX".to_string(),
        format!("test-{}", uuid::Uuid::new_v4().simple()),
    )])
    .collect()
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts the server with the default test environment.
    pub async fn spawn(db: PgPool) -> TestApp {
        Self::spawn_with(db, |_| {}).await
    }

    /// Starts the server after letting the test adjust the environment.
    pub async fn spawn_with(
        db: PgPool,
        adjust: impl FnOnce(&mut HashMap<String, String>),
    ) -> TestApp {
        let mut env = test_env();
        adjust(&mut env);
        let config = Config::from_map(&env).expect("test config");
        mas_server::startup::migrate(&db).await.expect("migrate");
        mas_server::startup::seed(&db, &config).await.expect("seed");
        let redis = mas_server::startup::connect_redis(&config)
            .await
            .expect("redis");
        let state = mas_server::build_state(config, db, redis, CancellationToken::new());
        Self::serve_state(state).await
    }

    pub async fn serve_state(state: AppState) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(mas_server::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        TestApp {
            addr,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            state,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM-equivalent and waits for the server to return.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.handle.take() {
            Some(h) => h.await.expect("server task"),
            None => Ok(()),
        }
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let res = self
            .client
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login request");
        let status = res.status();
        let body: Value = res.json().await.expect("login json");
        assert!(status.is_success(), "login failed: {status} {body}");
        body["data"]["accessToken"]
            .as_str()
            .expect("accessToken in login response")
            .to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
