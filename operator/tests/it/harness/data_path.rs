//! The real data path: the operator releases the real `mas-server` (run by the pod runner on
//! the pod IPs, against the real PostgreSQL and Redis shared by both colors, as in the
//! production topology) behind Traefik, and clients reach it only through Traefik's loopback
//! entrypoint with `Host: api.mas.test`.

use std::time::{Duration, Instant};

use k8s_openapi::api::networking::v1::IngressClass;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::env::Env;
use super::pod_runner::{PodRunner, RUNNER_LABEL, RUNNER_VALUE, default_images};
use super::traefik::{INGRESS_CLASS, Traefik};

pub const HOST: &str = "api.mas.test";
pub const ADMIN_EMAIL: &str = "admin@e2e.mas.test";
pub const ADMIN_PASSWORD: &str = "e2e-admin-password";
pub const JWT_SECRET: &str = "e2e-jwt-secret-e2e-jwt-secret-e2e-jwt";

fn required(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run scripts/test (local services)"))
}

/// A database of its own for one test (both colors share it, as in production).
async fn create_database(test_ns: &str) -> String {
    let base = required("DATABASE_URL");
    let name = test_ns.replace('-', "_");
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("connect to PostgreSQL");
    // The name is derived from the namespace ([a-z0-9_] only).
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    match base.rsplit_once('/') {
        Some((head, _)) => format!("{head}/{name}"),
        None => panic!("DATABASE_URL has no database name: {base}"),
    }
}

async fn ensure_ingress_class(client: &kube::Client) {
    let api: Api<IngressClass> = Api::all(client.clone());
    let class = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": INGRESS_CLASS},
        "spec": {"controller": "traefik.io/ingress-controller"},
    });
    api.patch(
        INGRESS_CLASS,
        &PatchParams::apply("mas-e2e").force(),
        &Patch::Apply(&class),
    )
    .await
    .expect("IngressClass traefik");
}

pub struct DataPath {
    pub env: Env,
    pub runner: PodRunner,
    pub traefik: Traefik,
    pub database_url: String,
    pub redis_url: String,
    /// Keys of this test in the shared Redis.
    pub prefix: String,
    pub http: reqwest::Client,
}

impl DataPath {
    pub async fn new(test: &str) -> Self {
        let env = Env::bare(test).await;
        ensure_ingress_class(&env.client).await;
        let runner = PodRunner::start(env.client.clone(), &env.ns, default_images());
        let traefik = Traefik::start(&env.ns).await;
        let database_url = create_database(&env.ns).await;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Self {
            prefix: env.ns.replace('-', ""),
            env,
            runner,
            traefik,
            database_url,
            redis_url: required("REDIS_URL"),
            http,
        }
    }

    /// Base URL of the public host through Traefik.
    pub fn base(&self) -> String {
        self.traefik.base(HOST)
    }

    /// The server's env in the pods: this test's database and Redis keys, a bootstrap admin.
    pub fn server_env(&self) -> Vec<Value> {
        let kv = |k: &str, v: &str| json!({"name": k, "value": v});
        vec![
            kv("APP_ENV", "production"),
            kv("DATABASE_URL", &self.database_url),
            // Queue workers, relays and the load share it; 5 timed out (503) on a busy machine.
            kv("DATABASE_MAX_CONNECTIONS", "10"),
            // All opened before ready: a color taking traffic never waits on connection setup.
            kv("DATABASE_MIN_CONNECTIONS", "10"),
            kv("REDIS_URL", &self.redis_url),
            kv("JWT_SECRET", JWT_SECRET),
            kv("ADMIN_EMAIL", ADMIN_EMAIL),
            kv("ADMIN_PASSWORD", ADMIN_PASSWORD),
            kv("REALTIME_REDIS_PREFIX", &self.prefix),
            kv("QUEUE_PREFIX", &self.prefix),
            kv("CORS_ALLOWED_ORIGINS", "[]"),
            kv("TRUSTED_PROXY_HOPS", "1"),
            kv("LOG_JSON", "false"),
            kv("RUST_LOG", "info"),
        ]
    }

    /// A MasBackend spec running `mas-server:<tag>` on the pod runner, routed by Traefik.
    pub fn server_spec(&self, tag: &str, replicas: i32) -> Value {
        let mut spec = crate::fixtures::fixture("")["spec"].clone();
        spec["image"] = format!("mas-server:{tag}").into();
        spec["replicas"] = replicas.into();
        spec["env"] = Value::Array(self.server_env());
        spec["podTemplate"] = json!({"metadata": {"labels": {RUNNER_LABEL: RUNNER_VALUE}}});
        spec["traffic"] = json!({"host": HOST, "ingressClassName": INGRESS_CLASS});
        spec["progressDeadlineSeconds"] = json!(180);
        spec
    }

    /// Waits until the public host answers with `version` (Traefik picked up the switch).
    pub async fn wait_serving(&self, version: &str, secs: u64) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let url = format!("{}/api/health/live", self.base());
        loop {
            if let Ok(r) = self.http.get(&url).send().await
                && r.status().is_success()
                && r.headers()
                    .get("x-app-version")
                    .and_then(|v| v.to_str().ok())
                    == Some(version)
            {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "{HOST} did not serve {version} within {secs}s; traefik log: {}",
                self.traefik.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// POST/GET JSON through the ingress with an optional bearer token.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request through the ingress");
        let status = res.status().as_u16();
        let body = res.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "login {email}: {body}");
        body["data"]["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_owned()
    }

    /// A mentor and a student with a booked meeting: (meeting id, mentor token, student token).
    pub async fn meeting(&self) -> (String, String, String) {
        let admin = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let mut tokens = Vec::new();
        for role in ["mentor", "student"] {
            let email = format!("{role}-{}@e2e.mas.test", self.prefix);
            let (status, body) = self
                .call(
                    reqwest::Method::POST,
                    "/api/admin/users",
                    Some(&admin),
                    Some(json!({"name": role, "email": email, "password": "e2e-password-1", "role": role})),
                )
                .await;
            assert_eq!(status, 201, "create {role}: {body}");
            tokens.push(self.login(&email, "e2e-password-1").await);
        }
        let starts = k8s_openapi::jiff::Timestamp::now()
            .checked_add(k8s_openapi::jiff::SignedDuration::from_hours(2))
            .unwrap();
        let ends = starts
            .checked_add(k8s_openapi::jiff::SignedDuration::from_mins(30))
            .unwrap();
        let (status, slot) = self
            .call(
                reqwest::Method::POST,
                "/api/slots",
                Some(&tokens[0]),
                Some(json!({"startsAt": starts.to_string(), "endsAt": ends.to_string()})),
            )
            .await;
        assert_eq!(status, 201, "create slot: {slot}");
        let slot_id = slot["data"]["id"].as_str().expect("slot id").to_owned();
        let (status, booked) = self
            .call(
                reqwest::Method::POST,
                &format!("/api/slots/{slot_id}/book"),
                Some(&tokens[1]),
                None,
            )
            .await;
        assert_eq!(status, 201, "book: {booked}");
        let meeting = booked["data"]["meeting"]["id"]
            .as_str()
            .expect("meeting id")
            .to_owned();
        (meeting, tokens[0].clone(), tokens[1].clone())
    }
}
