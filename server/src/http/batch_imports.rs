//! Bulk student import into a batch (CSV → databaseQueue job → per-row report).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{RequireRole, roles};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::extract::ApiPath;
use crate::http::response::{Envelope, ok};
use crate::services::student_import::{self, ImportReport};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_import))
        .routes(routes!(get_import))
}

/// The JSON form of the CSV body.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CsvBody {
    /// The CSV text (`name,email` header).
    #[schema(
        pattern = r"^[^\u0000]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^\u0000]*$"
    )]
    csv: String,
}

/// Queues an import of students from CSV (`name,email` header). Send the CSV as
/// `text/csv` or as JSON `{"csv": "..."}`.
#[utoipa::path(
    post,
    path = "/api/admin/batches/{id}/import",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Batch id")),
    request_body(content(
        (String = "text/csv"),
        (CsvBody = "application/json")
    )),
    responses(
        (status = 202, description = "Import queued", body = Envelope<ImportReport>),
        (status = 400, description = "Empty CSV, larger than 5 MB, not UTF-8 or missing columns", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Unknown batch", body = ErrorBody)
    )
)]
pub async fn start_import(
    admin: RequireRole<roles::Admins>,
    State(state): State<AppState>,
    ApiPath(batch_id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<(StatusCode, axum::Json<Envelope<ImportReport>>)> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let csv = if is_json {
        serde_json::from_slice::<CsvBody>(&body)
            .map_err(|e| AppError::validation(format!("expected {{\"csv\": \"...\"}}: {e}")))?
            .csv
    } else {
        String::from_utf8(body.to_vec())
            .map_err(|_| AppError::validation("the CSV must be UTF-8"))?
    };
    let report = student_import::request(&state, batch_id, admin.user().id(), csv).await?;
    Ok((StatusCode::ACCEPTED, ok(report)))
}

/// Status and per-row error report of an import.
#[utoipa::path(
    get,
    path = "/api/admin/batches/{id}/import/{import_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Batch id"),
        ("import_id" = Uuid, Path, description = "Import id")
    ),
    responses(
        (status = 200, description = "The import report", body = Envelope<ImportReport>),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "Unknown import", body = ErrorBody)
    )
)]
pub async fn get_import(
    _admin: RequireRole<roles::Admins>,
    State(state): State<AppState>,
    ApiPath((batch_id, import_id)): ApiPath<(Uuid, Uuid)>,
) -> AppResult<axum::Json<Envelope<ImportReport>>> {
    Ok(ok(
        student_import::get(&state.db, batch_id, import_id).await?
    ))
}
