//! Upload bookkeeping: every presigned PUT gets a `pending` row; `confirm` checks with a
//! HEAD that the object really is in its bucket with the announced size and type, then
//! marks the row `confirmed` (the metadata other features rely on). Unconfirmed rows
//! expire and the cleanup job deletes their objects.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::storage::{Bucket, PresignedUrl, UploadPurpose, UploadRequest};
use crate::auth::Role;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Upload {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// One of `avatar`, `resume`, `recording`, `document`, `banner`.
    pub purpose: String,
    /// The S3 bucket the object lives in.
    pub bucket: String,
    pub key: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// `pending` until confirmed, then `confirmed`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// An unconfirmed upload is deleted after this.
    pub expires_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, owner_id, purpose, bucket, key, content_type, size_bytes, status, \
                       created_at, expires_at, confirmed_at";

/// Issues the presigned PUT and records the pending upload.
pub async fn issue(
    state: &AppState,
    owner: Uuid,
    role: Role,
    request: &UploadRequest,
) -> AppResult<(Upload, PresignedUrl)> {
    if request.purpose == UploadPurpose::Banner && !role.is_admin() {
        return Err(AppError::forbidden("only admins upload banners"));
    }
    let storage = state.storage().await?;
    let url = storage.presign_upload(owner, request).await?;
    let bucket = storage.bucket(request.purpose.bucket())?.to_string();
    let window = chrono::Duration::from_std(state.config.storage.upload_confirm_window)
        .unwrap_or(chrono::Duration::days(1));
    // The row outlives the URL: a PUT that started just before the URL expired may
    // still be confirmed.
    let expires_at = url.expires_at.max(Utc::now() + window);
    let upload = sqlx::query_as::<_, Upload>(sqlx::AssertSqlSafe(format!(
        "insert into uploads (id, owner_id, purpose, bucket, key, content_type, size_bytes, expires_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(owner)
    .bind(request.purpose.as_str())
    .bind(&bucket)
    .bind(&url.key)
    .bind(&request.content_type)
    .bind(i64::try_from(request.size_bytes).unwrap_or(i64::MAX))
    .bind(expires_at)
    .fetch_one(&state.db)
    .await?;
    Ok((upload, url))
}

/// The caller's upload (admins: anyone's); 404 otherwise, so ids cannot be probed.
pub async fn get(state: &AppState, user: Uuid, role: Role, id: Uuid) -> AppResult<Upload> {
    sqlx::query_as::<_, Upload>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from uploads where id = $1 and (owner_id = $2 or $3)"
    )))
    .bind(id)
    .bind(user)
    .bind(role.is_admin())
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| AppError::not_found(format!("upload {id} not found")))
}

pub fn purpose_of(upload: &Upload) -> AppResult<UploadPurpose> {
    UploadPurpose::parse(&upload.purpose).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "upload {} has purpose {:?}",
            upload.id,
            upload.purpose
        ))
    })
}

/// Confirms an upload of the caller's: the object must exist with exactly the
/// announced size and content type. Confirming twice returns the same row.
pub async fn confirm(state: &AppState, owner: Uuid, id: Uuid) -> AppResult<Upload> {
    let upload = sqlx::query_as::<_, Upload>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from uploads where id = $1 and owner_id = $2"
    )))
    .bind(id)
    .bind(owner)
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| AppError::not_found(format!("upload {id} not found")))?;
    if upload.status == "confirmed" {
        return Ok(upload);
    }
    if upload.expires_at < Utc::now() {
        return Err(AppError::conflict(
            "this upload expired before it was confirmed; request a new upload URL",
        ));
    }
    let bucket = purpose_of(&upload)?.bucket();
    let storage = state.storage().await?;
    let Some(object) = storage.head(bucket, &upload.key).await? else {
        return Err(AppError::conflict(
            "the object is not in the bucket yet: PUT the file to the upload URL first",
        ));
    };
    let size_ok = i64::try_from(object.size_bytes).ok() == Some(upload.size_bytes);
    let type_ok = object
        .content_type
        .as_deref()
        .is_some_and(|t| same_media_type(t, &upload.content_type));
    if !size_ok || !type_ok {
        // Not what was announced (and validated): the object goes; the row stays
        // pending and expires, and the client asks for a new upload URL.
        storage.delete(bucket, &upload.key).await?;
        return Err(AppError::conflict(format!(
            "the uploaded object does not match the announced upload (announced {} bytes of {}, found {} bytes of {}); it was deleted",
            upload.size_bytes,
            upload.content_type,
            object.size_bytes,
            object.content_type.as_deref().unwrap_or("no content type"),
        )));
    }
    let confirmed = sqlx::query_as::<_, Upload>(sqlx::AssertSqlSafe(format!(
        "update uploads set status = 'confirmed', confirmed_at = coalesce(confirmed_at, now()) \
         where id = $1 returning {COLUMNS}"
    )))
    .bind(id)
    .fetch_one(&state.db)
    .await?;
    Ok(confirmed)
}

/// `image/png` equals `image/png; charset=...`, case-insensitively.
fn same_media_type(a: &str, b: &str) -> bool {
    let essence = |s: &str| {
        s.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    essence(a) == essence(b)
}

/// Deletes expired unconfirmed uploads and their objects (a bounded batch per run).
/// A bucket that is no longer configured keeps its rows until it is again.
pub async fn expire(state: &AppState) -> AppResult<u64> {
    let rows: Vec<Upload> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from uploads where status = 'pending' and expires_at < now() \
         order by expires_at limit 500"
    )))
    .fetch_all(&state.db)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let storage = state.storage().await?;
    let mut deleted = 0;
    for upload in rows {
        let Some(bucket) = UploadPurpose::parse(&upload.purpose).map(UploadPurpose::bucket) else {
            continue;
        };
        if !storage.is_configured(bucket) {
            continue;
        }
        storage.delete(bucket, &upload.key).await?;
        let done = sqlx::query("delete from uploads where id = $1 and status = 'pending'")
            .bind(upload.id)
            .execute(&state.db)
            .await?;
        deleted += done.rows_affected();
    }
    Ok(deleted)
}

/// The bucket of a key issued by [`issue`] (its first segment is the purpose).
/// The bucket of a well-formed key (`<purpose>/` then 1..=1000 of `A-Za-z0-9._/-`, as the
/// API documents it); `None` for anything else.
pub fn bucket_of_key(key: &str) -> Option<Bucket> {
    let (purpose, rest) = key.split_once('/')?;
    let well_formed = (1..=1000).contains(&rest.len())
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'));
    well_formed
        .then(|| UploadPurpose::parse(purpose))
        .flatten()
        .map(UploadPurpose::bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_a_purpose_and_stay_in_the_documented_alphabet() {
        assert!(bucket_of_key("avatar/6f1c/a.png").is_some());
        assert!(bucket_of_key("banner/x").is_some());
        assert!(bucket_of_key("avatar").is_none());
        assert!(bucket_of_key("avatar/").is_none());
        assert!(bucket_of_key("nope/x").is_none());
        assert!(bucket_of_key("avatar/a b").is_none());
        assert!(bucket_of_key(&format!("avatar/{}", "a".repeat(1001))).is_none());
    }

    #[test]
    fn media_types_compare_by_essence() {
        assert!(same_media_type("application/pdf", "application/PDF"));
        assert!(same_media_type("text/plain; charset=utf-8", "text/plain"));
        assert!(!same_media_type("image/png", "image/jpeg"));
    }

    #[test]
    fn keys_name_their_bucket() {
        assert_eq!(bucket_of_key("banner/u/x.png"), Some(Bucket::Assets));
        assert_eq!(
            bucket_of_key("recording/u/x.webm"),
            Some(Bucket::Recordings)
        );
        assert_eq!(bucket_of_key("resume/u/x.pdf"), Some(Bucket::Documents));
        assert_eq!(bucket_of_key("secrets/u/x"), None);
    }
}
