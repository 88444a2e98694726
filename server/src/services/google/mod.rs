//! Google: sign-in (OpenID Connect), Calendar events for meetings, mentors' Drive.

pub mod calendar;
pub mod drive;
pub mod oidc;
