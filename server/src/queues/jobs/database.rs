use bullmq::Job;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::queues::{JobError, is_last_attempt};
use crate::services::student_import;
use crate::state::AppState;

/// databaseQueue jobs; `importStudents` is the bulk CSV import into a batch.
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
        other => Err(JobError::permanent(format!(
            "databaseQueue has no handler for job {other:?}"
        ))),
    }
}
