//! The server's integration tests, in one binary: one module per area, all sharing
//! [`support`]. They run the real server against real PostgreSQL (a fresh database per
//! test from `#[sqlx::test]`), Redis, moto, an SMTP sink, Node/Python clients and
//! Chromium; `scripts/test` starts them all.

mod support;

mod admin_users;
mod auth;
mod catalog;
mod cli_commands;
mod code_runs;
mod connection_drain;
mod crm;
mod cross_cutting;
mod esign;
mod external_integrations;
mod google_apis;
mod google_signin;
mod health;
mod http_errors;
mod integrations;
mod metrics;
mod openapi;
mod partners;
mod payments;
mod queues_dashboard;
mod queues_dashboard_browser;
mod queues_email;
mod queues_import;
mod queues_node_interop;
mod queues_resume;
mod queues_workers;
mod realtime_socketio;
mod realtime_terminal;
mod recruiter;
mod security_email_once;
mod security_faults;
mod security_keys;
mod security_limits;
mod security_register;
mod security_sessions;
mod security_ssrf;
mod security_tls;
mod shutdown_drain;
mod slots;
mod startup;
mod storage_buckets;
mod uploads;
mod voice_calls;
mod webhooks;
mod whatsapp;
