//! Business logic, independent of HTTP.

pub mod auth;
pub mod batches;
pub mod bookings;
pub mod colleges;
pub mod courses;
pub mod db;
pub mod meetings;
pub mod otp;
pub mod outbox;
pub mod page;
pub mod password;
pub mod rate_limit;
pub mod secrets;
pub mod slots;
pub mod storage;
pub mod users;
