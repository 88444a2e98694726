//! The real server on 127.0.0.1:0 against real PostgreSQL (a fresh database per test
//! from `#[sqlx::test]`) and real Redis (`REDIS_URL`): in-process ([`TestApp`]) or as
//! the `mas-server` binary ([`ServerProcess`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use mas_server::config::Config;
use mas_server::state::AppState;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::wait::wait_for;

pub const ADMIN_EMAIL: &str = "admin@test.local";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const SUPERADMIN_EMAIL: &str = "root@test.local";
pub const SUPERADMIN_PASSWORD: &str = "root-password-1";

/// A variable `scripts/test` (through `scripts/services env`) sets.
pub fn required_env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests through scripts/test"))
}

/// Environment every test server gets; individual tests override entries.
pub fn test_env() -> HashMap<String, String> {
    let redis = required_env("REDIS_URL");
    let database = required_env("DATABASE_URL");
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
    // Every test comes from 127.0.0.1: request limits would add up across the whole run.
    // The abuse-limit tests switch theirs on, with a client address of their own.
    .chain(
        mas_server::services::rate_limit::LimitName::ALL
            .into_iter()
            .map(|name| (name.env_var().to_string(), "off".to_string())),
    )
    .collect()
}

/// A free loopback port with nothing listening on it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
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

    /// [`TestApp::spawn_with`] on an already bound `listener`, for tests whose
    /// environment names the server's own URL (OAuth redirect URIs).
    pub async fn spawn_on(
        listener: tokio::net::TcpListener,
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
        Self::serve_state_on(listener, state).await
    }

    pub async fn serve_state(state: AppState) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::serve_state_on(listener, state).await
    }

    pub async fn serve_state_on(listener: tokio::net::TcpListener, state: AppState) -> TestApp {
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
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The real `mas-server` binary as a separate process (killed on drop), on the test's
/// database, with the test environment as adjusted by the caller.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub base: String,
    pub port: u16,
}

impl ServerProcess {
    pub async fn spawn(db: &PgPool, adjust: impl FnOnce(&mut HashMap<String, String>)) -> Self {
        let database = db
            .connect_options()
            .get_database()
            .expect("test database name")
            .to_string();
        let root = required_env("DATABASE_URL");
        let (server, _) = root
            .rsplit_once('/')
            .expect("DATABASE_URL has a database path");
        let mut env = test_env();
        adjust(&mut env);
        env.insert("DATABASE_URL".into(), format!("{server}/{database}"));
        Self::spawn_env(env).await
    }

    /// The binary with exactly `env` (plus host, port and log level).
    pub async fn spawn_env(mut env: HashMap<String, String>) -> Self {
        let port = free_port();
        env.insert("HOST".into(), "127.0.0.1".into());
        env.insert("PORT".into(), port.to_string());
        env.entry("RUST_LOG".into())
            .or_insert_with(|| "warn".into());
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mas-server"))
            .envs(env)
            .kill_on_drop(true)
            .spawn()
            .expect("start mas-server");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let live = format!("{base}/api/health/live");
        wait_for(
            "the mas-server process to come up",
            Duration::from_secs(10),
            || async { client.get(&live).send().await.ok().map(|_| ()) },
        )
        .await;
        ServerProcess { child, base, port }
    }

    /// SIGKILL, as a crash (no drain, no shutdown hooks).
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// A server whose internal listener (`INTERNAL_PORT`) runs on loopback; returns it and the
/// internal listener's base URL once that answers.
pub async fn with_internal_listener(
    db: PgPool,
    adjust: impl FnOnce(&mut HashMap<String, String>),
) -> (TestApp, String) {
    let port = free_port();
    let app = TestApp::spawn_with(db, |env| {
        env.insert("HOST".into(), "127.0.0.1".into());
        env.insert("INTERNAL_PORT".into(), port.to_string());
        adjust(env);
    })
    .await;
    // The server binds its internal listener once it runs.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (app, format!("http://127.0.0.1:{port}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("internal listener did not come up on {port}");
}
