//! Object storage (S3 or any S3-compatible endpoint): presigned upload and download URLs.
//!
//! Browsers upload straight to the bucket with the presigned PUT; the server never
//! proxies file bytes. Keys are namespaced `<purpose>/<user id>/<uuid>-<name>` so
//! ownership is checkable from the key alone.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::S3Config;
use crate::error::AppError;

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
}

impl UploadPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadPurpose::Avatar => "avatar",
            UploadPurpose::Resume => "resume",
            UploadPurpose::Recording => "recording",
            UploadPurpose::Document => "document",
        }
    }

    pub const ALL: [UploadPurpose; 4] = [
        UploadPurpose::Avatar,
        UploadPurpose::Resume,
        UploadPurpose::Recording,
        UploadPurpose::Document,
    ];

    pub fn max_bytes(self) -> u64 {
        const MB: u64 = 1024 * 1024;
        match self {
            UploadPurpose::Avatar => 5 * MB,
            UploadPurpose::Resume => 10 * MB,
            UploadPurpose::Recording => 2048 * MB,
            UploadPurpose::Document => 50 * MB,
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

#[derive(Clone)]
pub struct Storage {
    client: aws_sdk_s3::Client,
    bucket: String,
    ttl: Duration,
}

impl Storage {
    /// Credentials come from the standard AWS chain (env, web identity, instance role).
    pub async fn connect(config: &S3Config) -> Storage {
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
            bucket: config.bucket.clone(),
            ttl: config.presign_ttl,
        }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Validates the request and returns a PUT URL bound to its content type and length.
    pub async fn presign_upload(
        &self,
        owner: Uuid,
        request: &UploadRequest,
    ) -> Result<PresignedUrl, AppError> {
        validate_upload(request)?;
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
            .bucket(&self.bucket)
            .key(&key)
            .content_type(&request.content_type)
            .content_length(i64::try_from(request.size_bytes).unwrap_or(i64::MAX))
            .presigned(self.presigning()?)
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("presigning upload: {e}")))?;
        Ok(PresignedUrl {
            url: presigned.uri().to_string(),
            key,
            expires_at: self.expiry(),
        })
    }

    pub async fn presign_download(&self, key: &str) -> Result<PresignedUrl, AppError> {
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(self.presigning()?)
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("presigning download: {e}")))?;
        Ok(PresignedUrl {
            url: presigned.uri().to_string(),
            key: key.to_string(),
            expires_at: self.expiry(),
        })
    }

    fn presigning(&self) -> Result<PresigningConfig, AppError> {
        PresigningConfig::builder()
            .start_time(SystemTime::now())
            .expires_in(self.ttl)
            .build()
            .map_err(|e| AppError::Internal(anyhow::anyhow!("presigning config: {e}")))
    }

    fn expiry(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::zero())
    }
}

/// Only the owner (by key prefix) or an admin may read an object.
pub fn may_read(key: &str, user: Uuid, is_admin: bool) -> bool {
    if is_admin {
        return true;
    }
    let mut parts = key.splitn(3, '/');
    matches!((parts.next(), parts.next(), parts.next()), (Some(_), Some(owner), Some(_)) if owner == user.to_string())
}

fn validate_upload(request: &UploadRequest) -> Result<(), AppError> {
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
fn sanitize_file_name(name: &str) -> String {
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
