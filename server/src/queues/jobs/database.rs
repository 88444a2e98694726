use bullmq::Job;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::queues::{JobError, is_last_attempt};
use crate::services::{google, payments, student_import, voice_calls, webhooks, whatsapp};
use crate::state::AppState;

/// databaseQueue jobs: `importStudents` (bulk CSV import into a batch),
/// `processWebhook` (one inbound webhook), `issueInvoice` (a captured payment's
/// invoice), `sendWhatsApp` (one template message), calendar syncs and voice calls.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportJob {
    import_id: Uuid,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MeetingJob {
    meeting_id: Uuid,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VoiceCallJob {
    call_id: Uuid,
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
        google::calendar::JOB_NAME => {
            let data: MeetingJob = serde_json::from_value(job.data().clone())
                .map_err(|e| JobError::permanent(format!("invalid calendar job data: {e}")))?;
            match google::calendar::sync(state, data.meeting_id).await {
                Ok(done) => Ok(done),
                Err(err) => {
                    let last = is_last_attempt(job, &err);
                    google::calendar::record_failure(
                        state,
                        data.meeting_id,
                        &err.to_string(),
                        last,
                    )
                    .await?;
                    Err(err)
                }
            }
        }
        voice_calls::JOB_NAME => {
            let data: VoiceCallJob = serde_json::from_value(job.data().clone())
                .map_err(|e| JobError::permanent(format!("invalid voice call job data: {e}")))?;
            match voice_calls::place(state, data.call_id).await {
                Ok(()) => Ok(serde_json::json!({"callId": data.call_id})),
                Err(err) => {
                    let err = err.into_job();
                    if is_last_attempt(job, &err) {
                        voice_calls::record_failure(state, data.call_id, &err.to_string(), true)
                            .await?;
                    }
                    Err(err)
                }
            }
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
