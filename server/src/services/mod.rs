//! Business logic, independent of HTTP.

pub mod auth;
pub mod batches;
pub mod bookings;
pub mod cleanup;
pub mod colleges;
pub mod courses;
pub mod db;
// --- integrations-2 ---
pub mod assets;
pub mod code_runs;
pub mod external_caches;
pub mod google;
pub mod partners;
pub mod token_crypto;
pub mod voice_calls;
// ---
pub mod integrations;
pub mod kpi;
pub mod mail;
pub mod meetings;
pub mod otp;
pub mod outbox;
pub mod page;
pub mod password;
pub mod queue_admin;
pub mod rate_limit;
pub mod realtime;
pub mod resume_analysis;
pub mod secrets;
pub mod sessions;
pub mod slots;
pub mod storage;
pub mod student_import;
pub mod users;
