//! Business logic, independent of HTTP.

pub mod batches;
pub mod bookings;
pub mod colleges;
pub mod courses;
pub mod db;
pub mod meetings;
pub mod page;
pub mod password;
pub mod slots;
