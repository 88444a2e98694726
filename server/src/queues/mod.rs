//! BullMQ queues (Redis layout shared with Node BullMQ and Bull Board) and the
//! in-process workers that drain them.
//!
//! * [`Queues`]: lazily connected producer handles, one per [`QueueName`].
//! * [`WorkerSet`]: the five workers plus the email-outbox relay, started when the
//!   process role runs workers and closed gracefully on shutdown.
//! * [`schedules`]: the repeatable cleanup and KPI jobs (idempotent upserts).

mod job_error;
pub mod jobs;
mod names;
mod registry;
pub mod relay;
pub mod schedules;
mod workers;

pub use job_error::{JobError, is_last_attempt};
pub use names::QueueName;
pub use registry::{QueueError, Queues};
pub use workers::{WorkerSet, spawn_worker};
