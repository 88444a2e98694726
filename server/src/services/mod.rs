//! Business logic, independent of HTTP.

pub mod cleanup;
pub mod kpi;
pub mod mail;
pub mod password;
pub mod queue_admin;
pub mod resume_analysis;
pub mod student_import;
