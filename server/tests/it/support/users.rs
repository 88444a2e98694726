//! Accounts for tests: inserted straight into the database, with access tokens issued
//! by the server's own keys; or the seeded accounts, also through a real login.

use std::time::Duration;

use mas_server::auth::Role;
use mas_server::state::AppState;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::app::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

/// Lifetime of the access tokens issued here (longer than any test).
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// An account and an access token for it.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub token: String,
}

/// Inserts an active, verified account with `role` (no usable password) and returns
/// it with a fresh access token. Tokens of unknown accounts are refused, so tests
/// that need a token for a role use this.
pub async fn create_user(state: &AppState, role: Role) -> TestUser {
    let id = Uuid::new_v4();
    let email = format!("{role}-{}@test.local", id.simple());
    sqlx::query(
        "insert into users (id, email, password_hash, name, role, email_verified) \
         values ($1, $2, 'not-a-login-account', $3, $4, true)",
    )
    .bind(id)
    .bind(&email)
    .bind(format!("Test {role}"))
    .bind(role.as_str())
    .execute(&state.db)
    .await
    .expect("insert test user");
    issue(state, id, role, email)
}

/// An access token for the existing account `email` (e.g. [`ADMIN_EMAIL`]).
pub async fn user_by_email(state: &AppState, email: &str) -> TestUser {
    let (id, role): (Uuid, String) = sqlx::query_as("select id, role from users where email = $1")
        .bind(email)
        .fetch_one(&state.db)
        .await
        .unwrap_or_else(|e| panic!("user {email} exists: {e}"));
    issue(state, id, role.parse().expect("role"), email.to_string())
}

/// The seeded admin account with an access token.
pub async fn seeded_admin(state: &AppState) -> TestUser {
    user_by_email(state, ADMIN_EMAIL).await
}

fn issue(state: &AppState, id: Uuid, role: Role, email: String) -> TestUser {
    let token = state
        .jwt
        .issue(id, role, &email, TOKEN_TTL)
        .expect("issue token");
    TestUser { id, email, token }
}

/// An address no other test (or earlier run) uses.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", Uuid::new_v4().simple())
}

impl TestApp {
    /// Logs in through `/api/auth/login` and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert!(
            (200..300).contains(&status),
            "login failed: {status} {body}"
        );
        body["data"]["accessToken"]
            .as_str()
            .expect("accessToken in login response")
            .to_string()
    }

    /// Logs the seeded admin in and returns the access token.
    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }
}
