use serde_json::{Value, json};

use crate::queues::JobError;
use crate::services::kpi;
use crate::state::AppState;

pub async fn process(state: &AppState) -> Result<Value, JobError> {
    let snapshot = kpi::snapshot(&state.db).await?;
    Ok(json!({"snapshotId": snapshot.id, "computedAt": snapshot.computed_at}))
}
