//! Processors: decode the job, call the service, map failures to retry/permanent.

pub mod cleanup;
pub mod database;
pub mod email;
pub mod kpi;
pub mod resume;
