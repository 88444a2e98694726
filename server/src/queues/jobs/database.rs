use bullmq::Job;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::queues::{JobError, is_last_attempt};
use crate::services::{payments, student_import, webhooks, whatsapp};
use crate::state::AppState;

/// databaseQueue jobs: `importStudents` (bulk CSV import into a batch),
/// `processWebhook` (one inbound webhook), `issueInvoice` (a captured payment's
/// invoice) and `sendWhatsApp` (one template message).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportJob {
    import_id: Uuid,
}

pub async fn process(state: &AppState, job: &Job) -> Result<Value, JobError> {
    match job.name() {
        student_import::JOB_NAME => {
            let data: ImportJob = serde_json::from_value(job.data().clone())
                .map_err(|e| JobError::permanent(format!("invalid import job data: {e}")))?;
            match student_import::run(&state.db, data.import_id).await {
                Ok(summary) => {
                    serde_json::to_value(summary).map_err(|e| JobError::permanent(e.to_string()))
                }
                Err(err) => {
                    if is_last_attempt(job, &err) {
                        student_import::record_failure(&state.db, data.import_id, &err.to_string())
                            .await?;
                    }
                    Err(err)
                }
            }
        }
        webhooks::JOB_NAME => webhooks::process(state, id(job, "webhookId")?).await,
        payments::INVOICE_JOB => payments::issue_invoice(state, id(job, "paymentId")?).await,
        whatsapp::SEND_JOB => {
            let message = id(job, "messageId")?;
            // Whether this attempt is the last decides if a failure is final.
            let last = job.attempts_made() + 1 >= job.opts().attempts.unwrap_or(1).max(1);
            whatsapp::send(state, message, last).await
        }
        other => Err(JobError::permanent(format!(
            "databaseQueue has no handler for job {other:?}"
        ))),
    }
}

/// A uuid field of the job's data.
fn id(job: &Job, field: &str) -> Result<Uuid, JobError> {
    job.data()[field]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| JobError::permanent(format!("job {} has no valid {field}", job.name())))
}
