use bullmq::Job;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::queues::{JobError, is_last_attempt};
use crate::services::mail::{self, Mailer};
use crate::state::AppState;

/// `{"to", "template", "payload", "outboxId"?}` — same shape the Node producers used.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailJob {
    pub to: String,
    pub template: String,
    #[serde(default)]
    pub payload: Value,
    pub outbox_id: Option<Uuid>,
}

pub async fn process(state: &AppState, mailer: &Mailer, job: &Job) -> Result<Value, JobError> {
    let email: EmailJob = serde_json::from_value(job.data().clone())
        .map_err(|e| JobError::permanent(format!("invalid email job data: {e}")))?;
    let outcome = deliver(mailer, &email).await;
    if let Some(outbox_id) = email.outbox_id {
        record(state, outbox_id, job, &outcome).await?;
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
                 attempts = attempts + 1 where id = $1",
            )
            .bind(outbox_id)
            .execute(&state.db)
            .await?;
        }
        Err(err) => {
            let last = is_last_attempt(job, err);
            sqlx::query(
                "update email_outbox set last_error = $2, attempts = attempts + 1, \
                 failed_at = case when $3 then now() else null end where id = $1",
            )
            .bind(outbox_id)
            .bind(err.to_string())
            .bind(last)
            .execute(&state.db)
            .await?;
        }
    }
    Ok(())
}
