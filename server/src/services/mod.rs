//! Business logic, independent of HTTP.

pub mod password;
pub mod realtime;
