//! The one error type of the HTTP surface, rendered as
//! `{"success":false,"error":{"code":..,"message":..}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body exceeds the size limit")]
    PayloadTooLarge,
    #[error("{0}")]
    TooManyRequests(String),
    /// A rate limit: 429 with `Retry-After: retry_after_secs`.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// A dependency (database, Redis, a provider's open circuit) is down.
    #[error("{0}")]
    Unavailable(String),
    /// A third-party integration is switched off because its variables are unset.
    #[error("{name} is not configured: set {}", .missing.join(", "))]
    IntegrationDisabled {
        name: &'static str,
        missing: Vec<&'static str>,
    },
    /// A provider answered badly or could not be reached.
    #[error("{0}")]
    BadGateway(String),
    /// A provider did not answer in time.
    #[error("{0}")]
    GatewayTimeout(String),
    /// Anything unexpected; the cause is logged, never sent to the client.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn validation(msg: impl Into<String>) -> Self {
        AppError::Validation(msg.into())
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        AppError::NotFound(what.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        AppError::Conflict(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        AppError::Forbidden(msg.into())
    }
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        AppError::Unauthorized(msg.into())
    }
    pub fn unavailable(msg: impl Into<String>) -> Self {
        AppError::Unavailable(msg.into())
    }
    /// 503 `INTEGRATION_DISABLED`: "`name` is not configured: set `missing`".
    pub fn integration_disabled(name: &'static str, missing: Vec<&'static str>) -> Self {
        AppError::IntegrationDisabled { name, missing }
    }
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(err.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Validation(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests(_) | AppError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AppError::Unavailable(_) | AppError::IntegrationDisabled { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            AppError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation(_) => "VALIDATION_ERROR",
            AppError::Unauthorized(_) => "UNAUTHORIZED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Conflict(_) => "CONFLICT",
            AppError::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            AppError::TooManyRequests(_) | AppError::RateLimited { .. } => "TOO_MANY_REQUESTS",
            AppError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            AppError::IntegrationDisabled { .. } => "INTEGRATION_DISABLED",
            AppError::BadGateway(_) => "BAD_GATEWAY",
            AppError::GatewayTimeout(_) => "GATEWAY_TIMEOUT",
            AppError::Internal(_) => "INTERNAL_ERROR",
        }
    }
}

/// Body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ErrorBody {
            success: false,
            error: ErrorDetail {
                code: code.to_string(),
                message: message.into(),
            },
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(err) = &self {
            tracing::error!(error = format!("{err:#}"), "internal error");
        }
        let body = ErrorBody::new(self.code(), self.to_string());
        let mut res = (self.status(), Json(body)).into_response();
        if let AppError::RateLimited {
            retry_after_secs, ..
        } = self
        {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs),
            );
        }
        res
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => AppError::NotFound("not found".into()),
            sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => {
                tracing::error!(error = %err, "database unavailable");
                AppError::Unavailable("database unavailable".into())
            }
            // The server going away under a session (restart, failover) or out of
            // connections: SQLSTATE classes 08 (connection exception), 53
            // (insufficient resources) and 57 (operator intervention, e.g. 57P01
            // admin_shutdown, 57P03 cannot_connect_now).
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| {
                    c.starts_with("08") || c.starts_with("53") || c.starts_with("57")
                }) =>
            {
                tracing::error!(error = %err, "database unavailable");
                AppError::Unavailable("database unavailable".into())
            }
            _ => AppError::Internal(err.into()),
        }
    }
}

impl From<redis::RedisError> for AppError {
    fn from(err: redis::RedisError) -> Self {
        tracing::error!(error = %err, "redis error");
        AppError::Unavailable("cache unavailable".into())
    }
}

/// `err` followed by its whole source chain ("connection error: refused: ..."): many
/// client errors' own Display is too terse to tell a failed job's reason apart.
/// Callers must only pass errors whose messages carry no secrets.
pub fn with_sources(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
