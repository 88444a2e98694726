use serde_json::Value;

use crate::queues::JobError;
use crate::services::cleanup;
use crate::state::AppState;

pub async fn process(state: &AppState) -> Result<Value, JobError> {
    let report = cleanup::run(&state.db).await?;
    tracing::info!(?report, "cleanup done");
    serde_json::to_value(report).map_err(|e| JobError::permanent(e.to_string()))
}
