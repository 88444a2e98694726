//! Business logic, independent of HTTP.

pub mod auth;
pub mod otp;
pub mod outbox;
pub mod password;
pub mod storage;
pub mod rate_limit;
pub mod secrets;
pub mod users;
