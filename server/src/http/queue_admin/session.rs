use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;

use crate::auth::{AuthUser, Claims};
use crate::error::AppError;
use crate::state::AppState;

pub const COOKIE_NAME: &str = "mas_admin_token";

/// An admin or superadmin, authenticated by `Authorization: Bearer` or by the
/// dashboard cookie.
#[derive(Debug, Clone)]
pub struct AdminSession(pub Claims);

pub fn cookie_token(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let claims = if parts.headers.contains_key(AUTHORIZATION) {
            AuthUser::from_request_parts(parts, state).await?.0
        } else {
            let token = cookie_token(parts).ok_or_else(|| {
                AppError::unauthorized("sign in: Authorization header or dashboard cookie required")
            })?;
            crate::auth::authenticate(state, token).await?
        };
        if claims.role.is_admin() {
            Ok(AdminSession(claims))
        } else {
            Err(AppError::forbidden(
                "this action requires one of the roles: admin, superadmin",
            ))
        }
    }
}
