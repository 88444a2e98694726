use bullmq::Job;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::queues::{JobError, is_last_attempt};
use crate::services::resume_analysis;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResumeJob {
    analysis_id: Uuid,
}

pub async fn process(state: &AppState, job: &Job) -> Result<Value, JobError> {
    let data: ResumeJob = serde_json::from_value(job.data().clone())
        .map_err(|e| JobError::permanent(format!("invalid resume analysis job data: {e}")))?;
    match resume_analysis::analyze(state, data.analysis_id).await {
        Ok(()) => Ok(json!({"analysisId": data.analysis_id, "status": "completed"})),
        Err(err) => {
            let last = is_last_attempt(job, &err);
            resume_analysis::record_failure(&state.db, data.analysis_id, &err.to_string(), last)
                .await?;
            Err(err)
        }
    }
}
