//! Presigned uploads: the client asks for a URL, then PUTs the file straight to the bucket.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::error::AppError;
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::response::{Envelope, ok};
use crate::services::storage::{self, UploadPurpose, UploadRequest};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_upload))
        .routes(routes!(download_url))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUpload {
    pub purpose: UploadPurpose,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: u64,
}

/// `CreateUpload` as documented: one variant per purpose with its content types and size
/// cap (what `storage::validate_upload` enforces), replacing the derived schema.
pub fn create_upload_schema() -> serde_json::Value {
    let variants: Vec<serde_json::Value> = UploadPurpose::ALL
        .into_iter()
        .map(|purpose| {
            serde_json::json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["purpose", "fileName", "contentType", "sizeBytes"],
                "properties": {
                    "purpose": {"type": "string", "enum": [purpose.as_str()]},
                    "fileName": {
                        "type": "string",
                        "description": "The last path segment must contain an ASCII letter or digit.",
                        "pattern": FILE_NAME_PATTERN
                    },
                    "contentType": {"type": "string", "enum": purpose.allowed_types()},
                    "sizeBytes": {
                        "type": "integer",
                        "format": "int64",
                        "minimum": 1,
                        "maximum": purpose.max_bytes()
                    }
                }
            })
        })
        .collect();
    serde_json::json!({
        "description": "What to upload; content types and size cap depend on the purpose.",
        "oneOf": variants
    })
}

/// An ASCII letter or digit in the last `/`- or `\\`-separated segment.
const FILE_NAME_PATTERN: &str = r"^[^\u0000]*[A-Za-z0-9][^/\\\u0000]*$";

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadTicket {
    /// PUT the file here with exactly the `Content-Type` and `Content-Length` you declared.
    pub upload_url: String,
    pub method: &'static str,
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// An object key as returned by `POST /api/uploads`.
    #[param(pattern = "^[A-Za-z0-9._/-]{1,1024}$")]
    pub key: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadTicket {
    pub download_url: String,
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

/// Issue a presigned upload URL.
#[utoipa::path(post, path = "/api/uploads", tag = "uploads", request_body = CreateUpload,
    security(("bearer" = [])),
    responses((status = 200, body = Envelope<UploadTicket>), (status = 400), (status = 401), (status = 503)))]
async fn create_upload(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<CreateUpload>,
) -> Result<axum::Json<Envelope<UploadTicket>>, AppError> {
    let request = UploadRequest {
        purpose: body.purpose,
        file_name: body.file_name,
        content_type: body.content_type,
        size_bytes: body.size_bytes,
    };
    let url = state
        .storage()
        .await?
        .presign_upload(user.id(), &request)
        .await?;
    Ok(ok(UploadTicket {
        upload_url: url.url,
        method: "PUT",
        key: url.key,
        expires_at: url.expires_at,
    }))
}

/// Issue a presigned download URL for an object the caller owns (admins: any object).
#[utoipa::path(get, path = "/api/uploads/download", tag = "uploads", params(DownloadQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Envelope<DownloadTicket>), (status = 401), (status = 403), (status = 503)))]
async fn download_url(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<DownloadQuery>,
) -> Result<axum::Json<Envelope<DownloadTicket>>, AppError> {
    // The keys uploads get (`purpose/owner/uuid-name`, see `storage`), which also keeps
    // anything the SDK cannot put in a URL (it would fail presigning: a 500) out.
    let valid_key = (1..=1024).contains(&query.key.len())
        && query
            .key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'));
    if !valid_key {
        return Err(AppError::validation(
            "key must be 1 to 1024 of A-Z, a-z, 0-9, '.', '_', '/' and '-'",
        ));
    }
    if !storage::may_read(&query.key, user.id(), user.role().is_admin()) {
        return Err(AppError::Forbidden(
            "you can only download your own files".into(),
        ));
    }
    let url = state.storage().await?.presign_download(&query.key).await?;
    Ok(ok(DownloadTicket {
        download_url: url.url,
        key: url.key,
        expires_at: url.expires_at,
    }))
}
