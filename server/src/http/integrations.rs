//! `/api/admin/integrations`: which third-party integrations are configured, what
//! is missing, and the state of their circuit breakers.

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{RequireRole, roles};
use crate::error::ErrorBody;
use crate::http::response::{Envelope, ok};
use crate::services::integrations::IntegrationView;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_integrations))
}

/// Every integration: configured or not, the variables still missing, its non-secret
/// settings and, for HTTP providers, the circuit breaker.
#[utoipa::path(
    get,
    path = "/api/admin/integrations",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One row per integration", body = Envelope<Vec<IntegrationView>>),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody)
    )
)]
pub async fn list_integrations(
    _admin: RequireRole<roles::Admins>,
    State(state): State<AppState>,
) -> axum::Json<Envelope<Vec<IntegrationView>>> {
    ok(state.integrations.list())
}
