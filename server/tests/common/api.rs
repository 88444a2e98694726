//! Helpers for domain tests: users inserted straight into the database with tokens
//! issued by the server's own keys, and a compact JSON request helper.

use std::time::Duration;

use mas_server::auth::Role;
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use super::{ADMIN_EMAIL, TestApp};

pub struct TestUser {
    pub id: Uuid,
    pub token: String,
}

impl TestApp {
    /// Inserts an active user with `role` and returns it with a fresh access token.
    pub async fn user(&self, role: Role) -> TestUser {
        let id = Uuid::new_v4();
        let email = format!("{role}-{id}@test.local");
        sqlx::query(
            "insert into users (id, email, password_hash, name, role, email_verified) \
             values ($1, $2, 'not-a-login-account', $3, $4, true)",
        )
        .bind(id)
        .bind(&email)
        .bind(format!("Test {role}"))
        .bind(role.as_str())
        .execute(&self.state.db)
        .await
        .expect("insert test user");
        let token = self
            .state
            .jwt
            .issue(id, role, &email, Duration::from_secs(900))
            .expect("issue token");
        TestUser { id, token }
    }

    /// A token for the seeded admin account.
    pub async fn seeded_admin(&self) -> TestUser {
        let id: Uuid = sqlx::query_scalar("select id from users where email = $1")
            .bind(ADMIN_EMAIL)
            .fetch_one(&self.state.db)
            .await
            .expect("seeded admin");
        let token = self
            .state
            .jwt
            .issue(id, Role::Admin, ADMIN_EMAIL, Duration::from_secs(900))
            .expect("issue token");
        TestUser { id, token }
    }

    /// Sends a request and returns the status code and the JSON body (`Null` if empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let bytes = res.bytes().await.expect("body");
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "non-JSON body ({status}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        (status, json)
    }
}
