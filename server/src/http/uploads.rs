//! Presigned uploads: the client asks for a URL, PUTs the file straight to the bucket
//! of its purpose, then confirms; unconfirmed uploads expire and are deleted.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, ClientAddr};
use crate::http::response::{Envelope, ok};
use crate::services::rate_limit::{self, LimitName};
use crate::services::storage::{self, Bucket, PresignedUrl, UploadPurpose, UploadRequest};
use crate::services::uploads::{self, Upload};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_upload))
        .routes(routes!(download_url))
        .routes(routes!(get_upload))
        .routes(routes!(confirm_upload))
        .routes(routes!(download_by_id))
}

/// Limits per purpose: avatar and banner (admins only) ≤ 5 MB of png/jpeg/webp;
/// resume ≤ 10 MB of pdf/docx/txt; recording ≤ 2 GB of webm/mp4; document ≤ 50 MB
/// of pdf/png/jpeg/txt/csv/zip.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUpload {
    pub purpose: UploadPurpose,
    /// Sanitised to `[A-Za-z0-9._-]`, at most 100 characters.
    #[schema(min_length = 1)]
    pub file_name: String,
    pub content_type: String,
    /// Exact size in bytes; the PUT must carry exactly this `Content-Length`.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::validation::whole_number")]
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
    /// Confirm with `POST /api/uploads/{uploadId}/confirm` after the PUT.
    pub upload_id: Uuid,
    /// PUT the file here with exactly the `Content-Type` and `Content-Length` you declared.
    pub upload_url: String,
    pub method: &'static str,
    pub key: String,
    /// The upload URL's expiry.
    pub expires_at: DateTime<Utc>,
    /// An unconfirmed upload is deleted after this.
    pub confirm_by: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// An object key as returned by `POST /api/uploads`: the purpose, `/`, then up to 1000
    /// of `A-Z a-z 0-9 . _ / -`.
    #[param(pattern = "^(avatar|resume|recording|document|banner)/[A-Za-z0-9._/-]{1,1000}$")]
    pub key: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadTicket {
    /// A signed GET (private buckets, valid S3_PRIVATE_GET_TTL_SECONDS), or the public
    /// URL of a banner (MAS_ASSETS_CDN_URL or the bucket origin).
    pub download_url: String,
    pub key: String,
    /// When the signed URL stops working; `null` for a banner's public URL, which does not.
    pub expires_at: Option<DateTime<Utc>>,
}

impl DownloadTicket {
    fn new(bucket: Bucket, url: PresignedUrl) -> Self {
        DownloadTicket {
            download_url: url.url,
            key: url.key,
            expires_at: (!bucket.is_public()).then_some(url.expires_at),
        }
    }
}

/// Issue a presigned upload URL into the bucket of the purpose.
#[utoipa::path(post, path = "/api/uploads", tag = "uploads", request_body = CreateUpload,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Envelope<UploadTicket>, description = "The URL to PUT to"),
        (status = 400, body = ErrorBody, description = "Content type, size or file name not allowed for the purpose"),
        (status = 401, body = ErrorBody, description = "Not signed in"),
        (status = 403, body = ErrorBody, description = "Banners are for admins"),
        (status = 429, body = ErrorBody, description = "Too many uploads for this user or client address (`RATE_LIMIT_UPLOAD`)",
            headers(("retry-after" = u64, description = "Seconds until the limit resets"))),
        (status = 503, body = ErrorBody, description = "The purpose's bucket is not configured (INTEGRATION_DISABLED)")))]
async fn create_upload(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    user: AuthUser,
    ApiJson(body): ApiJson<CreateUpload>,
) -> AppResult<Json<Envelope<UploadTicket>>> {
    rate_limit::enforce(&state, LimitName::Upload, Some(user.id()), &client).await?;
    let request = UploadRequest {
        purpose: body.purpose,
        file_name: body.file_name,
        content_type: body.content_type,
        size_bytes: body.size_bytes,
    };
    let (upload, url) = uploads::issue(&state, user.id(), user.role(), &request).await?;
    Ok(ok(UploadTicket {
        upload_id: upload.id,
        upload_url: url.url,
        method: "PUT",
        key: url.key,
        expires_at: url.expires_at,
        confirm_by: upload.expires_at,
    }))
}

/// One of the caller's uploads (admins: any).
#[utoipa::path(get, path = "/api/uploads/{id}", tag = "uploads", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Envelope<Upload>, description = "The upload's metadata"),
        (status = 401, body = ErrorBody, description = "Not signed in"),
        (status = 404, body = ErrorBody, description = "No such upload of the caller's")))]
async fn get_upload(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<Upload>>> {
    Ok(ok(uploads::get(&state, user.id(), user.role(), id).await?))
}

/// Confirms an upload: the object must be in its bucket with exactly the announced
/// size and content type (checked with a HEAD); the metadata row becomes `confirmed`.
/// A mismatching object is deleted.
#[utoipa::path(post, path = "/api/uploads/{id}/confirm", tag = "uploads", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Envelope<Upload>, description = "Confirmed (again, if it already was)"),
        (status = 401, body = ErrorBody, description = "Not signed in"),
        (status = 404, body = ErrorBody, description = "No such upload of the caller's"),
        (status = 409, body = ErrorBody, description = "Not uploaded yet, expired, or not what was announced"),
        (status = 502, body = ErrorBody, description = "The object store answered badly"),
        (status = 503, body = ErrorBody, description = "The bucket is not configured (INTEGRATION_DISABLED)")))]
async fn confirm_upload(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<Upload>>> {
    Ok(ok(uploads::confirm(&state, user.id(), id).await?))
}

/// A read URL of a confirmed upload of the caller's (admins: any).
#[utoipa::path(get, path = "/api/uploads/{id}/download", tag = "uploads", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Envelope<DownloadTicket>, description = "Signed GET or public URL"),
        (status = 401, body = ErrorBody, description = "Not signed in"),
        (status = 404, body = ErrorBody, description = "No such upload of the caller's"),
        (status = 409, body = ErrorBody, description = "Not confirmed yet"),
        (status = 503, body = ErrorBody, description = "The bucket is not configured (INTEGRATION_DISABLED)")))]
async fn download_by_id(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<DownloadTicket>>> {
    let upload = uploads::get(&state, user.id(), user.role(), id).await?;
    if upload.status != "confirmed" {
        return Err(AppError::conflict("confirm the upload first"));
    }
    let bucket = uploads::purpose_of(&upload)?.bucket();
    let url = state
        .storage()
        .await?
        .download_url(bucket, &upload.key)
        .await?;
    Ok(ok(DownloadTicket::new(bucket, url)))
}

/// A read URL for an object the caller owns (admins: any object), by key.
#[utoipa::path(get, path = "/api/uploads/download", tag = "uploads", params(DownloadQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Envelope<DownloadTicket>, description = "Signed GET or public URL"),
        (status = 400, body = ErrorBody, description = "The key names no upload purpose"),
        (status = 401, body = ErrorBody, description = "Not signed in"),
        (status = 403, body = ErrorBody, description = "Not the caller's file"),
        (status = 503, body = ErrorBody, description = "The bucket is not configured (INTEGRATION_DISABLED)")))]
async fn download_url(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<DownloadQuery>,
) -> AppResult<Json<Envelope<DownloadTicket>>> {
    if !storage::may_read(&query.key, user.id(), user.role().is_admin()) {
        return Err(AppError::Forbidden(
            "you can only download your own files".into(),
        ));
    }
    let bucket = uploads::bucket_of_key(&query.key).ok_or_else(|| {
        AppError::validation("key must be <purpose>/ and 1..=1000 of A-Z a-z 0-9 . _ / -")
    })?;
    let url = state
        .storage()
        .await?
        .download_url(bucket, &query.key)
        .await?;
    Ok(ok(DownloadTicket::new(bucket, url)))
}
