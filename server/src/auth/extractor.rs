//! `AuthUser` (any valid bearer token) and `RequireRole<R>` (role-gated) extractors.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::status::{self, AccountStatus};
use super::{Claims, Role};
use crate::error::AppError;
use crate::state::AppState;

/// The caller, authenticated by `Authorization: Bearer <jwt>`, whose account is
/// still active; `role()` is the account's current role, which may differ from
/// the one stamped into the token.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Claims);

impl AuthUser {
    pub fn id(&self) -> uuid::Uuid {
        self.0.sub
    }
    pub fn role(&self) -> Role {
        self.0.role
    }
}

pub fn bearer_token(parts: &Parts) -> Result<&str, AppError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| AppError::unauthorized("missing Authorization header"))?
        .to_str()
        .map_err(|_| AppError::unauthorized("malformed Authorization header"))?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AppError::unauthorized("expected Authorization: Bearer <token>"))
}

/// Verifies an access token and checks that its account is still active; the
/// returned claims carry the account's current role. Every way of presenting a
/// token (header, dashboard cookie, Socket.IO handshake) goes through here.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Claims, AppError> {
    let mut claims = state.jwt.verify(token)?;
    match status::current(state, claims.sub).await? {
        AccountStatus::Active(role) => claims.role = role,
        AccountStatus::Gone => {
            return Err(AppError::unauthorized("account not found or deactivated"));
        }
    }
    Ok(claims)
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        authenticate(state, token).await.map(AuthUser)
    }
}

/// A set of roles allowed on a route, as a type.
pub trait RoleSet: Send + Sync + 'static {
    const ROLES: &'static [Role];
}

/// Like [`AuthUser`] but 403 unless the caller's role is in `R::ROLES`.
#[derive(Debug, Clone)]
pub struct RequireRole<R: RoleSet>(pub AuthUser, PhantomData<R>);

impl<R: RoleSet> RequireRole<R> {
    pub fn user(&self) -> &AuthUser {
        &self.0
    }
}

impl<R: RoleSet> FromRequestParts<AppState> for RequireRole<R> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if R::ROLES.contains(&user.role()) {
            Ok(RequireRole(user, PhantomData))
        } else {
            Err(AppError::forbidden(format!(
                "this action requires one of the roles: {}",
                R::ROLES
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
}

/// Role sets used by route guards.
pub mod roles {
    use super::{Role, RoleSet};

    pub struct Admins;
    impl RoleSet for Admins {
        const ROLES: &'static [Role] = &[Role::Admin, Role::Superadmin];
    }

    pub struct Mentors;
    impl RoleSet for Mentors {
        const ROLES: &'static [Role] = &[Role::Mentor];
    }

    pub struct Students;
    impl RoleSet for Students {
        const ROLES: &'static [Role] = &[Role::Student];
    }

    pub struct Superadmins;
    impl RoleSet for Superadmins {
        const ROLES: &'static [Role] = &[Role::Superadmin];
    }

    /// The CRM: the sales team, and admins who oversee it.
    pub struct SalesTeam;
    impl RoleSet for SalesTeam {
        const ROLES: &'static [Role] = &[Role::Sales, Role::Admin, Role::Superadmin];
    }
}
