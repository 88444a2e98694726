//! Identity: roles, JWT access tokens and the extractors that guard routes.

mod extractor;
pub mod jwt;
mod role;
pub mod status;

pub use extractor::{AuthUser, RequireRole, RoleSet, authenticate, bearer_token, roles};
pub use jwt::{Claims, JwtKeys};
pub use role::Role;
