//! The email worker. Delivery is exactly once per outbox row (and per job for jobs
//! without one) across retries, including a retry after the `sent_at` write failed:
//!
//! 1. the row id is the message's idempotency key, stored with the row before any
//!    attempt; it is also the `Message-ID` (`<outbox.{id}@domain>`);
//! 2. an attempt claims the row in PostgreSQL (`claimed_until`, a lease longer than
//!    one delivery can take) before it talks to SMTP, so two copies of a job (a
//!    stalled job re-run while the first attempt still runs, a row redriven after a
//!    Redis outage) never send concurrently: the second one retries later;
//! 3. as soon as SMTP accepts the message a delivery record
//!    `{QUEUE_PREFIX}:mail:delivered:{key}` goes to Redis, before PostgreSQL is
//!    written;
//! 4. every attempt first looks for that record: when it is there the message was
//!    accepted already, so the attempt only settles the row (`sent_at`) and sends
//!    nothing.
//!
//! What remains is at-least-once with the same `Message-ID`, which the receiving side
//! can de-duplicate: a process killed between SMTP's acceptance and the Redis write
//! (its lease expires, then a retry sends again), a delivery cut off by
//! [`DELIVERY_DEADLINE`] after the server took the data, or Redis and PostgreSQL both
//! failing the bookkeeping writes.

use std::time::Duration;

use bullmq::Job;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::queues::{JobError, is_last_attempt};
use crate::services::mail::{self, Mailer};
use crate::services::outbox;
use crate::state::AppState;

/// `{"to", "template", "payload", "outboxId"?}` — same shape the Node producers used.
/// Jobs from the outbox relay carry no payload: it is read from the outbox row.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailJob {
    pub to: String,
    pub template: String,
    #[serde(default)]
    pub payload: Value,
    pub outbox_id: Option<Uuid>,
}

/// Payload fields that are secrets (one-time codes, reset links) or bulky
/// (attachments, e.g. an invoice PDF that is archived elsewhere): removed from the
/// outbox row once it is sent or has failed for good.
const SECRET_FIELDS: &[&str] = &["otp", "code", "resetUrl", "attachments"];

/// How long a delivery record outlives the message (longer than any retry schedule).
const DELIVERED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// One delivery attempt, connect to final reply, is cut off after this.
pub const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);

/// How long a claim on an outbox row lasts: longer than an attempt can take, so it
/// only lapses when its holder died.
const CLAIM_LEASE: Duration = Duration::from_secs(45);

/// The message's idempotency key: its outbox row, else its job.
fn idempotency_key(email: &EmailJob, job: &Job) -> String {
    match email.outbox_id {
        Some(id) => outbox::message_key(id),
        None => format!("job.{}", job.id()),
    }
}

fn delivered_key(state: &AppState, key: &str) -> String {
    format!("{}:mail:delivered:{key}", state.config.queues.prefix)
}

/// Whether an earlier attempt got the message accepted. Unknown (Redis down) counts
/// as no: the job system cannot run without Redis anyway, and the row still guards.
async fn already_delivered(state: &AppState, key: &str) -> bool {
    let mut redis = state.redis.clone();
    let found: Result<Option<String>, redis::RedisError> = redis::cmd("GET")
        .arg(delivered_key(state, key))
        .query_async(&mut redis)
        .await;
    matches!(found, Ok(Some(_)))
}

async fn mark_delivered(state: &AppState, key: &str) {
    let mut redis = state.redis.clone();
    let stored: Result<(), redis::RedisError> = redis::cmd("SET")
        .arg(delivered_key(state, key))
        .arg(chrono::Utc::now().to_rfc3339())
        .arg("EX")
        .arg(DELIVERED_TTL.as_secs())
        .query_async(&mut redis)
        .await;
    if let Err(err) = stored {
        tracing::warn!(key, error = %err, "could not record a delivered mail; a retry may send it again (same Message-ID)");
    }
}

pub async fn process(state: &AppState, mailer: &Mailer, job: &Job) -> Result<Value, JobError> {
    let mut email: EmailJob = serde_json::from_value(job.data().clone())
        .map_err(|e| JobError::permanent(format!("invalid email job data: {e}")))?;
    let key = idempotency_key(&email, job);
    if already_delivered(state, &key).await {
        // Accepted by SMTP on an earlier attempt whose bookkeeping failed.
        if let Some(outbox_id) = email.outbox_id {
            record(state, outbox_id, job, &Ok(())).await?;
        }
        scrub_job_data(job).await;
        return Ok(json!({"delivered": true, "to": email.to, "resent": false}));
    }
    if let Some(outbox_id) = email.outbox_id {
        match claim(state, outbox_id).await? {
            Claim::Claimed(payload) => {
                if email.payload.is_null() {
                    email.payload = payload;
                }
            }
            // Already settled (a re-added job): never mail twice.
            Claim::Settled => {
                return Ok(json!({"delivered": false, "reason": "outbox row already settled"}));
            }
            // Another attempt is delivering it right now; its outcome decides.
            Claim::Held => {
                return Err(JobError::retry(
                    "another attempt is delivering this message; retrying later",
                ));
            }
        }
    }
    let outcome = deliver(mailer, &email, &key).await;
    if outcome.is_ok() {
        mark_delivered(state, &key).await;
        tracing::info!(key, job_id = %job.id(), attempt = job.attempts_made() + 1, "mail accepted by SMTP");
    }
    if let Some(outbox_id) = email.outbox_id {
        record(state, outbox_id, job, &outcome).await?;
    }
    let settled = match &outcome {
        Ok(()) => true,
        Err(err) => is_last_attempt(job, err),
    };
    if settled {
        scrub_job_data(job).await;
    }
    outcome.map(|()| json!({"delivered": true, "to": email.to}))
}

async fn deliver(mailer: &Mailer, email: &EmailJob, key: &str) -> Result<(), JobError> {
    let rendered = mail::render(&email.template, &email.payload)
        .map_err(|e| JobError::permanent(e.to_string()))?;
    let sent = tokio::time::timeout(
        DELIVERY_DEADLINE,
        mailer.send(&email.to, &rendered, Some(key)),
    )
    .await
    .map_err(|_| {
        JobError::retry(format!(
            "SMTP delivery took longer than {} s",
            DELIVERY_DEADLINE.as_secs()
        ))
    })?;
    sent.map_err(|e| {
        if e.is_transient() {
            JobError::retry(e.to_string())
        } else {
            JobError::permanent(e.to_string())
        }
    })
}

/// Jobs added with their payload (Node producers, older relays) keep it in Redis
/// after they finish; once no retry needs it, the secrets are removed there too.
async fn scrub_job_data(job: &Job) {
    let mut data = job.data().clone();
    let Some(payload) = data.get_mut("payload").and_then(Value::as_object_mut) else {
        return;
    };
    let before = payload.len();
    payload.retain(|k, _| !SECRET_FIELDS.contains(&k.as_str()));
    if payload.len() == before {
        return;
    }
    let mut job = job.clone();
    if let Err(err) = job.update_data(data).await {
        tracing::warn!(job_id = %job.id(), error = %err, "could not scrub the email job data");
    }
}

enum Claim {
    /// This attempt holds the row; its payload.
    Claimed(Value),
    /// The row is sent or failed for good.
    Settled,
    /// Another attempt holds an unexpired claim.
    Held,
}

/// Claims a pending outbox row for this attempt (see the module docs).
async fn claim(state: &AppState, outbox_id: Uuid) -> Result<Claim, JobError> {
    let claimed: Option<Value> = sqlx::query_scalar(
        "update email_outbox set claimed_until = now() + make_interval(secs => $2) \
         where id = $1 and sent_at is null and failed_at is null \
           and (claimed_until is null or claimed_until < now()) \
         returning payload",
    )
    .bind(outbox_id)
    .bind(CLAIM_LEASE.as_secs_f64())
    .fetch_optional(&state.db)
    .await?;
    if let Some(payload) = claimed {
        return Ok(Claim::Claimed(payload));
    }
    let pending: Option<bool> = sqlx::query_scalar(
        "select sent_at is null and failed_at is null from email_outbox where id = $1",
    )
    .bind(outbox_id)
    .fetch_optional(&state.db)
    .await?;
    Ok(match pending {
        Some(true) => Claim::Held,
        // Settled, or gone (deleted with its user): nothing to send.
        Some(false) | None => Claim::Settled,
    })
}

/// Mirrors the attempt into the outbox row: sent, failed for good, or still retrying.
async fn record(
    state: &AppState,
    outbox_id: Uuid,
    job: &Job,
    outcome: &Result<(), JobError>,
) -> Result<(), JobError> {
    match outcome {
        Ok(()) => {
            sqlx::query(
                "update email_outbox set sent_at = now(), failed_at = null, last_error = null, \
                 claimed_until = null, attempts = attempts + 1, payload = payload - $2::text[] \
                 where id = $1",
            )
            .bind(outbox_id)
            .bind(SECRET_FIELDS)
            .execute(&state.db)
            .await?;
        }
        Err(err) => {
            let last = is_last_attempt(job, err);
            sqlx::query(
                "update email_outbox set last_error = $2, attempts = attempts + 1, \
                 claimed_until = null, failed_at = case when $3 then now() else null end, \
                 payload = case when $3 then payload - $4::text[] else payload end where id = $1",
            )
            .bind(outbox_id)
            .bind(err.to_string())
            .bind(last)
            .bind(SECRET_FIELDS)
            .execute(&state.db)
            .await?;
        }
    }
    Ok(())
}
