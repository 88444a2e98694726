//! What the integration tests share.
//!
//! - [`app`] runs the server in-process ([`TestApp`]) or as a process, with its test
//!   environment
//! - [`users`] makes accounts with access tokens
//! - [`http`] is the one request API ([`TestApp::send`], [`TestApp::call`])
//! - [`redis`] points at the shared Redis instance, one database number per area
//! - [`wait`] polls
//! - [`relay`] drives the terminal relay's WebSocket ends
//! - [`instances`] runs PostgreSQL and Redis of a test's own (faults, TLS); [`net`] a
//!   TCP balancer and a scripted DNS server on loopback
//! - [`logs`] captures log output (to assert that secrets never appear)
//! - [`services`] and [`agent`] drive the real outside pieces (SMTP Maildir, Node,
//!   Chromium, Socket.IO client processes)
//! - [`standin`] records what reaches the local stand-ins for unreachable providers
//! - [`auth`], [`queues`] and [`realtime`] hold each area's own isolation (Redis
//!   database, key prefix) and fixtures

pub mod agent;
pub mod app;
pub mod auth;
pub mod http;
pub mod instances;
pub mod logs;
pub mod net;
pub mod queues;
pub mod realtime;
pub mod redis;
pub mod relay;
pub mod services;
pub mod standin;
pub mod users;
pub mod wait;

pub use app::{ADMIN_EMAIL, ADMIN_PASSWORD, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, TestApp};
pub use users::{TestUser, create_user};
