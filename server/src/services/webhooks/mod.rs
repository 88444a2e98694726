//! The inbound webhook inbox, done the way payment providers expect:
//!
//! 1. the handler verifies the provider's signature over the *raw* body before
//!    parsing it (a 401 for a bad or missing one; 503 `INTEGRATION_DISABLED` while the
//!    secret is unset, so the provider retries instead of dropping events);
//! 2. [`accept`] records the event once per (provider, provider event id) — a
//!    redelivery hits the unique key, is acknowledged 200 and does nothing — and
//!    queues `processWebhook` on databaseQueue; the provider gets its 2xx at once;
//! 3. the worker ([`process`]) applies the row and stamps `processed_at` in one
//!    transaction with the row locked, so the effect happens exactly once even if
//!    the job runs twice. A webhook that arrives while no worker runs waits in Redis
//!    (or, if Redis was down, in the table: [`relay_once`] re-queues rows never
//!    processed) and is applied when a worker starts.
//!
//! Bodies are capped per route (`WEBHOOK_BODY_LIMIT_BYTES`) and never logged: only
//! provider, event id and type are.

pub mod signature;

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::AppResult;
use crate::queues::{JobError, QueueName, Queues};
use crate::state::AppState;

/// databaseQueue job applying one inbox row.
pub const JOB_NAME: &str = "processWebhook";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Razorpay,
    WhatsApp,
    Exotel,
    Leegality,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Razorpay => "razorpay",
            Provider::WhatsApp => "whatsapp",
            Provider::Exotel => "exotel",
            Provider::Leegality => "leegality",
        }
    }

    fn parse(s: &str) -> Option<Provider> {
        [
            Provider::Razorpay,
            Provider::WhatsApp,
            Provider::Exotel,
            Provider::Leegality,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// A verified, parsed webhook.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub provider: Provider,
    /// The provider's id of the event (stable across redeliveries).
    pub event_id: String,
    pub event_type: String,
    pub payload: Value,
}

/// What [`accept`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    New(Uuid),
    /// Seen before: acknowledged, nothing done.
    Duplicate,
}

/// A stable id for a provider that gives none: the body's SHA-256 (a redelivery
/// repeats the same bytes).
pub fn body_digest(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

/// Records the event (once) and queues its processing.
pub async fn accept(state: &AppState, inbound: Inbound) -> AppResult<Accepted> {
    let event_id: String = inbound.event_id.chars().take(300).collect();
    let id: Option<Uuid> = sqlx::query_scalar(
        "insert into webhook_events (id, provider, event_id, event_type, payload) \
         values ($1, $2, $3, $4, $5) on conflict (provider, event_id) do nothing returning id",
    )
    .bind(Uuid::new_v4())
    .bind(inbound.provider.as_str())
    .bind(&event_id)
    .bind(&inbound.event_type)
    .bind(&inbound.payload)
    .fetch_optional(&state.db)
    .await?;
    let Some(id) = id else {
        tracing::info!(provider = inbound.provider.as_str(), event_id = %event_id, event = %inbound.event_type, "webhook redelivered; already recorded");
        return Ok(Accepted::Duplicate);
    };
    tracing::info!(provider = inbound.provider.as_str(), event_id = %event_id, event = %inbound.event_type, webhook = %id, "webhook recorded");
    // The row is durable already: if Redis is down now, the relay queues it later.
    match enqueue(&state.queues, id).await {
        Ok(()) => {
            sqlx::query("update webhook_events set enqueued_at = now() where id = $1")
                .bind(id)
                .execute(&state.db)
                .await?;
        }
        Err(err) => {
            tracing::warn!(webhook = %id, error = %err, "could not queue the webhook; the relay will")
        }
    }
    Ok(Accepted::New(id))
}

async fn enqueue(queues: &Queues, id: Uuid) -> Result<(), crate::queues::QueueError> {
    queues
        .add(
            QueueName::Database,
            JOB_NAME,
            json!({"webhookId": id}),
            Some(format!("webhook-{id}")),
        )
        .await
        .map(|_| ())
}

/// The `processWebhook` job: applies one inbox row exactly once.
pub async fn process(state: &AppState, id: Uuid) -> Result<Value, JobError> {
    let outcome = apply(state, id).await;
    if let Err(err) = &outcome {
        sqlx::query(
            "update webhook_events set attempts = attempts + 1, last_error = $2 where id = $1",
        )
        .bind(id)
        .bind(err.to_string())
        .execute(&state.db)
        .await?;
    }
    outcome
}

async fn apply(state: &AppState, id: Uuid) -> Result<Value, JobError> {
    // Provider calls a row needs (fetching a signed document) happen before the
    // transaction and are idempotent; the database effects happen inside it.
    let head: Option<(String, String, Value, bool)> = sqlx::query_as(
        "select provider, event_type, payload, processed_at is not null from webhook_events where id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    let Some((provider, event_type, payload, done)) = head else {
        return Err(JobError::permanent(format!("webhook {id} does not exist")));
    };
    if done {
        return Ok(json!({"webhookId": id, "skipped": "already processed"}));
    }
    let provider = Provider::parse(&provider)
        .ok_or_else(|| JobError::permanent(format!("unknown webhook provider {provider:?}")))?;
    let prepared = match provider {
        Provider::Leegality => Some(super::esign::prepare_webhook(state, &payload).await?),
        _ => None,
    };

    let mut tx = state.db.begin().await?;
    let processed: Option<bool> = sqlx::query_scalar(
        "select processed_at is not null from webhook_events where id = $1 for update",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if processed != Some(false) {
        return Ok(json!({"webhookId": id, "skipped": "already processed"}));
    }
    let mut captured = None;
    match provider {
        Provider::Razorpay => {
            captured = super::payments::apply_webhook(&mut tx, &event_type, &payload).await?;
        }
        Provider::WhatsApp => super::whatsapp::apply_webhook(&mut tx, &payload).await?,
        Provider::Exotel => super::crm::apply_call_status(&mut tx, &payload).await?,
        Provider::Leegality => {
            super::esign::apply_webhook(&mut tx, &payload, prepared.flatten()).await?
        }
    }
    sqlx::query(
        "update webhook_events set processed_at = now(), attempts = attempts + 1, last_error = null \
         where id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if let Some(payment) = captured {
        super::payments::after_capture(state, payment).await;
    }
    tracing::info!(webhook = %id, provider = provider.as_str(), event = %event_type, "webhook processed");
    Ok(json!({"webhookId": id, "provider": provider.as_str(), "event": event_type}))
}

/// Rows that never reached a worker (queued while Redis was down, or their job was
/// lost): queued again. The job id is the row id, so a row still waiting in Redis is
/// not queued twice, and processing is exactly-once anyway.
pub async fn relay_once(
    db: &PgPool,
    queues: &Queues,
    redrive_after: Duration,
) -> anyhow::Result<usize> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "update webhook_events set enqueued_at = now() where id in ( \
             select id from webhook_events where processed_at is null \
               and (enqueued_at is null or enqueued_at < now() - make_interval(secs => $1)) \
             order by received_at limit 100 for update skip locked) \
         returning id",
    )
    .bind(redrive_after.as_secs_f64())
    .fetch_all(db)
    .await?;
    for id in &ids {
        if let Err(err) = enqueue(queues, *id).await {
            sqlx::query("update webhook_events set enqueued_at = null where id = $1")
                .bind(id)
                .execute(db)
                .await?;
            return Err(err.into());
        }
    }
    super::whatsapp::relay_once(db, queues, redrive_after).await?;
    // Captured payments whose invoice job was lost.
    for payment in super::payments::pending_invoices(db).await? {
        queues
            .add(
                QueueName::Database,
                super::payments::INVOICE_JOB,
                json!({"paymentId": payment}),
                Some(format!("invoice-{payment}")),
            )
            .await?;
    }
    Ok(ids.len())
}

/// The relay loop, run by worker processes beside the email outbox relay.
pub async fn run_relay(
    db: PgPool,
    queues: Queues,
    every: Duration,
    redrive_after: Duration,
    stop: CancellationToken,
) {
    loop {
        match relay_once(&db, &queues, redrive_after).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "webhook rows queued"),
            Err(err) => tracing::warn!(error = %err, "webhook relay failed; will retry"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
