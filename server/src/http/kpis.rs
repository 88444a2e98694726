//! Dashboard KPIs computed by the kpi worker.

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{RequireRole, roles};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::response::{Envelope, ok};
use crate::services::kpi::{self, KpiSnapshot};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(latest_kpis))
}

/// The latest KPI snapshot (refreshed every 15 minutes by kpiQueue).
#[utoipa::path(
    get,
    path = "/api/admin/kpis",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Latest snapshot", body = Envelope<KpiSnapshot>),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No snapshot computed yet", body = ErrorBody)
    )
)]
pub async fn latest_kpis(
    _admin: RequireRole<roles::Admins>,
    State(state): State<AppState>,
) -> AppResult<axum::Json<Envelope<KpiSnapshot>>> {
    let snapshot = kpi::latest(&state.db)
        .await?
        .ok_or_else(|| AppError::not_found("no KPI snapshot has been computed yet"))?;
    Ok(ok(snapshot))
}
