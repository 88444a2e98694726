//! Presigned uploads: the client asks for a URL, then PUTs the file straight to the bucket.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::error::AppError;
use crate::http::extract::{ApiJson, ApiQuery, ClientAddr};
use crate::http::response::{Envelope, ok};
use crate::services::rate_limit::{self, LimitName};
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
pub struct DownloadQuery {
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
    responses((status = 200, body = Envelope<UploadTicket>), (status = 400), (status = 401),
        (status = 429, description = "Too many uploads for this user or client address (`RATE_LIMIT_UPLOAD`)",
            headers(("retry-after" = u64, description = "Seconds until the limit resets"))),
        (status = 503)))]
async fn create_upload(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    user: AuthUser,
    ApiJson(body): ApiJson<CreateUpload>,
) -> Result<axum::Json<Envelope<UploadTicket>>, AppError> {
    rate_limit::enforce(&state, LimitName::Upload, Some(user.id()), &client).await?;
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
