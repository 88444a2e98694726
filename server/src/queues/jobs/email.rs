use bullmq::Job;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::queues::{JobError, is_last_attempt};
use crate::services::mail::{self, Mailer};
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

pub async fn process(state: &AppState, mailer: &Mailer, job: &Job) -> Result<Value, JobError> {
    let mut email: EmailJob = serde_json::from_value(job.data().clone())
        .map_err(|e| JobError::permanent(format!("invalid email job data: {e}")))?;
    if let (Some(outbox_id), true) = (email.outbox_id, email.payload.is_null()) {
        match pending_payload(state, outbox_id).await? {
            Some(payload) => email.payload = payload,
            // Already settled (a re-added job): never mail twice.
            None => return Ok(json!({"delivered": false, "reason": "outbox row already settled"})),
        }
    }
    let outcome = deliver(mailer, &email).await;
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

async fn deliver(mailer: &Mailer, email: &EmailJob) -> Result<(), JobError> {
    let rendered = mail::render(&email.template, &email.payload)
        .map_err(|e| JobError::permanent(e.to_string()))?;
    mailer.send(&email.to, &rendered).await.map_err(|e| {
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

/// The payload of an outbox row still waiting for delivery.
async fn pending_payload(state: &AppState, outbox_id: Uuid) -> Result<Option<Value>, JobError> {
    Ok(sqlx::query_scalar(
        "select payload from email_outbox where id = $1 and sent_at is null and failed_at is null",
    )
    .bind(outbox_id)
    .fetch_optional(&state.db)
    .await?)
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
                 attempts = attempts + 1, payload = payload - $2::text[] where id = $1",
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
                 failed_at = case when $3 then now() else null end, \
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
