use serde_json::Value;

use crate::queues::JobError;
use crate::services::{cleanup, uploads};
use crate::state::AppState;

pub async fn process(state: &AppState) -> Result<Value, JobError> {
    let mut report = cleanup::run(&state.db).await?;
    // Unconfirmed uploads past their window: the objects go, then the rows.
    report.expired_uploads = uploads::expire(state)
        .await
        .map_err(|e| JobError::retry(format!("expiring uploads: {e}")))?;
    tracing::info!(?report, "cleanup done");
    serde_json::to_value(report).map_err(|e| JobError::permanent(e.to_string()))
}
