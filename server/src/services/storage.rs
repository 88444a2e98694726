//! Object storage (S3 or any S3-compatible endpoint): four buckets, presigned upload
//! and download URLs, server-side writes (invoices, signed agreements).
//!
//! Browsers upload straight to the bucket with the presigned PUT; the server never
//! proxies file bytes. Keys are namespaced `<purpose>/<user id>/<uuid>-<name>` so
//! ownership is checkable from the key alone, and the purpose names the bucket.
//!
//! | purpose | bucket | access |
//! |---|---|---|
//! | avatar, resume, document, agreement | documents | private: signed GETs only |
//! | recording | recordings | private: signed GETs only |
//! | banner | assets | public: `MAS_ASSETS_CDN_URL` or the bucket origin |
//! | invoice | invoices | private: signed GETs only (optional bucket) |

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::StorageConfig;
use crate::error::AppError;
use crate::services::integrations::{IntegrationId, Integrations};

/// What an upload is for; each purpose has its own content types and size cap.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum UploadPurpose {
    Avatar,
    Resume,
    Recording,
    Document,
    /// Banner images of the site (admins only); public.
    Banner,
}

impl UploadPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadPurpose::Avatar => "avatar",
            UploadPurpose::Resume => "resume",
            UploadPurpose::Recording => "recording",
            UploadPurpose::Document => "document",
            UploadPurpose::Banner => "banner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            UploadPurpose::Avatar,
            UploadPurpose::Resume,
            UploadPurpose::Recording,
            UploadPurpose::Document,
            UploadPurpose::Banner,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }

    /// The bucket this purpose's objects live in.
    pub fn bucket(self) -> Bucket {
        match self {
            UploadPurpose::Avatar | UploadPurpose::Resume | UploadPurpose::Document => {
                Bucket::Documents
            }
            UploadPurpose::Recording => Bucket::Recordings,
            UploadPurpose::Banner => Bucket::Assets,
        }
    }
    pub const ALL: [UploadPurpose; 5] = [
        UploadPurpose::Avatar,
        UploadPurpose::Resume,
        UploadPurpose::Recording,
        UploadPurpose::Document,
        UploadPurpose::Banner,
    ];

    pub fn max_bytes(self) -> u64 {
        const MB: u64 = 1024 * 1024;
        match self {
            UploadPurpose::Avatar => 5 * MB,
            UploadPurpose::Resume => 10 * MB,
            UploadPurpose::Recording => 2048 * MB,
            UploadPurpose::Document => 50 * MB,
            UploadPurpose::Banner => 5 * MB,
        }
    }

    pub fn allowed_types(self) -> &'static [&'static str] {
        match self {
            UploadPurpose::Avatar => &["image/png", "image/jpeg", "image/webp"],
            UploadPurpose::Resume => &[
                "application/pdf",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "text/plain",
            ],
            UploadPurpose::Recording => &["video/webm", "video/mp4", "audio/webm"],
            UploadPurpose::Document => &[
                "application/pdf",
                "image/png",
                "image/jpeg",
                "text/plain",
                "text/csv",
                "application/zip",
            ],
            UploadPurpose::Banner => &["image/png", "image/jpeg", "image/webp"],
        }
    }
}

#[derive(Debug, Clone)]
pub struct UploadRequest {
    pub purpose: UploadPurpose,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct PresignedUrl {
    pub url: String,
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

/// The four buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Documents,
    Recordings,
    Assets,
    Invoices,
}

impl Bucket {
    pub fn integration(self) -> IntegrationId {
        match self {
            Bucket::Documents => IntegrationId::S3Documents,
            Bucket::Recordings => IntegrationId::S3Recordings,
            Bucket::Assets => IntegrationId::S3Assets,
            Bucket::Invoices => IntegrationId::S3Invoices,
        }
    }

    /// Public buckets are read through plain URLs; the others only through signed GETs.
    pub fn is_public(self) -> bool {
        self == Bucket::Assets
    }

    fn name(self, config: &StorageConfig) -> Option<&String> {
        match self {
            Bucket::Documents => config.documents.as_ref(),
            Bucket::Recordings => config.recordings.as_ref(),
            Bucket::Assets => config.assets.as_ref(),
            Bucket::Invoices => config.invoices.as_ref(),
        }
    }
}

/// What a HEAD of an object reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size_bytes: u64,
    pub content_type: Option<String>,
}

/// One S3 client for every bucket (they share region, endpoint and credentials).
#[derive(Clone)]
pub struct Storage {
    client: aws_sdk_s3::Client,
    config: StorageConfig,
    integrations: Arc<Integrations>,
}

impl Storage {
    /// Credentials come from the standard AWS chain (env, web identity, instance role).
    pub async fn connect(config: &StorageConfig, integrations: Arc<Integrations>) -> Storage {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()));
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let s3 = aws_sdk_s3::config::Builder::from(&shared)
            // Emulators and MinIO serve buckets by path, not by virtual host.
            .force_path_style(config.endpoint.is_some())
            .build();
        Storage {
            client: aws_sdk_s3::Client::from_conf(s3),
            config: config.clone(),
            integrations,
        }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The bucket's name, or 503 `INTEGRATION_DISABLED` naming its variable.
    pub fn bucket(&self, bucket: Bucket) -> Result<&str, AppError> {
        self.integrations.ensure(bucket.integration())?;
        bucket
            .name(&self.config)
            .map(String::as_str)
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!(
                    "{} is registered as configured without its bucket",
                    bucket.integration().name()
                ))
            })
    }

    pub fn is_configured(&self, bucket: Bucket) -> bool {
        self.integrations.is_configured(bucket.integration())
    }

    /// Validates the request and returns a PUT URL bound to its content type and length.
    pub async fn presign_upload(
        &self,
        owner: Uuid,
        request: &UploadRequest,
    ) -> Result<PresignedUrl, AppError> {
        validate_upload(request)?;
        let bucket = self.bucket(request.purpose.bucket())?;
        let key = format!(
            "{}/{}/{}-{}",
            request.purpose.as_str(),
            owner,
            Uuid::new_v4(),
            sanitize_file_name(&request.file_name)
        );
        let presigned = self
            .client
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type(&request.content_type)
            .content_length(i64::try_from(request.size_bytes).unwrap_or(i64::MAX))
            .presigned(presigning(self.config.presign_ttl)?)
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("presigning upload: {e}")))?;
        Ok(PresignedUrl {
            url: presigned.uri().to_string(),
            key,
            expires_at: expiry(self.config.presign_ttl),
        })
    }

    /// A read URL: for a private bucket a signed GET valid `S3_PRIVATE_GET_TTL_SECONDS`,
    /// for the public assets bucket its plain (CDN) URL.
    pub async fn download_url(&self, bucket: Bucket, key: &str) -> Result<PresignedUrl, AppError> {
        if bucket.is_public() {
            return Ok(PresignedUrl {
                url: self.public_url(key)?,
                key: key.to_string(),
                // Public URLs do not expire; report the far future rather than a lie.
                expires_at: DateTime::<Utc>::MAX_UTC,
            });
        }
        self.presign_get(bucket, key, self.config.private_get_ttl)
            .await
    }

    pub async fn presign_get(
        &self,
        bucket: Bucket,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedUrl, AppError> {
        let name = self.bucket(bucket)?;
        let presigned = self
            .client
            .get_object()
            .bucket(name)
            .key(key)
            .presigned(presigning(ttl)?)
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("presigning download: {e}")))?;
        Ok(PresignedUrl {
            url: presigned.uri().to_string(),
            key: key.to_string(),
            expires_at: expiry(ttl),
        })
    }

    /// The public URL of an assets object: `MAS_ASSETS_CDN_URL/<key>` when set, else the
    /// bucket's own origin (path-style on a custom endpoint).
    pub fn public_url(&self, key: &str) -> Result<String, AppError> {
        let bucket = self.bucket(Bucket::Assets)?;
        Ok(match (&self.config.assets_cdn_url, &self.config.endpoint) {
            (Some(cdn), _) => format!("{cdn}/{key}"),
            (None, Some(endpoint)) => format!("{endpoint}/{bucket}/{key}"),
            (None, None) => format!(
                "https://{bucket}.s3.{}.amazonaws.com/{key}",
                self.config.region
            ),
        })
    }

    /// HEAD of an object; `None` when it does not exist.
    pub async fn head(&self, bucket: Bucket, key: &str) -> Result<Option<ObjectInfo>, AppError> {
        let name = self.bucket(bucket)?;
        match self.client.head_object().bucket(name).key(key).send().await {
            Ok(head) => Ok(Some(ObjectInfo {
                size_bytes: head.content_length().unwrap_or(0).max(0) as u64,
                content_type: head.content_type().map(str::to_string),
            })),
            Err(err) => {
                let not_found = err.as_service_error().is_some_and(|e| e.is_not_found())
                    || err
                        .raw_response()
                        .is_some_and(|r| r.status().as_u16() == 404);
                if not_found {
                    Ok(None)
                } else {
                    Err(storage_error("HEAD", err))
                }
            }
        }
    }

    /// Writes an object the server made itself (invoice PDFs, signed agreements).
    pub async fn put(
        &self,
        bucket: Bucket,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(), AppError> {
        let name = self.bucket(bucket)?;
        self.client
            .put_object()
            .bucket(name)
            .key(key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map_err(|e| storage_error("PUT", e))?;
        Ok(())
    }

    /// Deletes an object; deleting a missing one succeeds (S3 semantics).
    pub async fn delete(&self, bucket: Bucket, key: &str) -> Result<(), AppError> {
        let name = self.bucket(bucket)?;
        self.client
            .delete_object()
            .bucket(name)
            .key(key)
            .send()
            .await
            .map_err(|e| storage_error("DELETE", e))?;
        Ok(())
    }
}

/// The object store answered badly: 502 naming the operation (never the URL).
fn storage_error<E: std::error::Error + 'static>(
    op: &str,
    err: aws_sdk_s3::error::SdkError<E>,
) -> AppError {
    let detail = crate::error::with_sources(&err);
    tracing::warn!(op, error = %detail, "object storage call failed");
    AppError::BadGateway(format!("object storage {op} failed"))
}

fn presigning(ttl: Duration) -> Result<PresigningConfig, AppError> {
    PresigningConfig::builder()
        .start_time(SystemTime::now())
        .expires_in(ttl)
        .build()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("presigning config: {e}")))
}

fn expiry(ttl: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::zero())
}

/// Only the owner (by key prefix) or an admin may read an object.
pub fn may_read(key: &str, user: Uuid, is_admin: bool) -> bool {
    if is_admin {
        return true;
    }
    let mut parts = key.splitn(3, '/');
    matches!((parts.next(), parts.next(), parts.next()), (Some(_), Some(owner), Some(_)) if owner == user.to_string())
}

pub fn validate_upload(request: &UploadRequest) -> Result<(), AppError> {
    let allowed = request.purpose.allowed_types();
    if !allowed.contains(&request.content_type.as_str()) {
        return Err(AppError::validation(format!(
            "contentType {:?} is not allowed for {} uploads (allowed: {})",
            request.content_type,
            request.purpose.as_str(),
            allowed.join(", ")
        )));
    }
    if request.size_bytes == 0 {
        return Err(AppError::validation("sizeBytes must be greater than 0"));
    }
    let max = request.purpose.max_bytes();
    if request.size_bytes > max {
        return Err(AppError::validation(format!(
            "sizeBytes {} exceeds the {} MB limit for {} uploads",
            request.size_bytes,
            max / (1024 * 1024),
            request.purpose.as_str()
        )));
    }
    if sanitize_file_name(&request.file_name).is_empty() {
        return Err(AppError::validation(
            "fileName must contain letters or digits",
        ));
    }
    Ok(())
}

/// Keeps `[A-Za-z0-9._-]`, so keys stay URL-safe and cannot traverse prefixes.
pub fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Trimmed before truncating, so a name is empty exactly when its last segment has no
    // ASCII letter or digit (the documented `fileName` pattern).
    let kept: String = cleaned.trim_matches(['.', '_']).chars().take(100).collect();
    kept.trim_matches(['.', '_']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(purpose: UploadPurpose, content_type: &str, size: u64) -> UploadRequest {
        UploadRequest {
            purpose,
            file_name: "cv.pdf".into(),
            content_type: content_type.into(),
            size_bytes: size,
        }
    }

    #[test]
    fn file_names_cannot_escape_their_prefix() {
        assert_eq!(sanitize_file_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_file_name("my résumé (1).pdf"), "my_r_sum___1_.pdf");
        assert_eq!(sanitize_file_name("..."), "");
        // Empty exactly when the last segment has no ASCII letter or digit (the documented
        // pattern), however long the run of separators before it.
        assert_eq!(sanitize_file_name(&format!("{}a", "_".repeat(150))), "a");
        assert_eq!(sanitize_file_name("a/"), "");
    }

    #[test]
    fn purpose_limits_apply() {
        assert!(validate_upload(&request(UploadPurpose::Resume, "application/pdf", 1024)).is_ok());
        assert!(validate_upload(&request(UploadPurpose::Resume, "image/gif", 1024)).is_err());
        assert!(
            validate_upload(&request(
                UploadPurpose::Avatar,
                "image/png",
                6 * 1024 * 1024
            ))
            .is_err()
        );
        assert!(validate_upload(&request(UploadPurpose::Resume, "application/pdf", 0)).is_err());
    }

    #[test]
    fn only_owner_or_admin_reads() {
        let owner = Uuid::new_v4();
        let key = format!("resume/{owner}/x-cv.pdf");
        assert!(may_read(&key, owner, false));
        assert!(!may_read(&key, Uuid::new_v4(), false));
        assert!(may_read(&key, Uuid::new_v4(), true));
        assert!(!may_read("resume", owner, false));
    }
}
