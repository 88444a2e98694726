//! Extractors whose rejections use the API's JSON error format.

use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

use crate::error::AppError;
use crate::state::AppState;

fn body_rejection(status: StatusCode, text: String) -> AppError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge
    } else if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        AppError::validation("expected a JSON body with content-type: application/json")
    } else {
        AppError::validation(text)
    }
}

fn nul_error() -> AppError {
    // PostgreSQL text cannot hold NUL; refused here rather than failing in the database.
    AppError::validation("text must not contain NUL (U+0000) characters")
}

/// `application/json` or `application/<something>+json`, as `axum::Json` accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// NUL can only reach a JSON string as the escape `\u0000`; only then is the body walked.
fn reject_nul_in_json(bytes: &[u8]) -> Result<(), AppError> {
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return Ok(());
    }
    fn has_nul(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(has_nul),
            serde_json::Value::Object(map) => {
                map.iter().any(|(k, v)| k.contains('\0') || has_nul(v))
            }
            _ => false,
        }
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(value) if has_nul(&value) => Err(nul_error()),
        _ => Ok(()),
    }
}

/// `Json<T>` with JSON errors (400 malformed, wrong content type or NUL in a string, 413 too large).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(body_rejection(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                String::new(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| body_rejection(r.status(), r.body_text()))?;
        let value = axum::Json::<T>::from_bytes(&bytes).map_err(|rejection: JsonRejection| {
            body_rejection(rejection.status(), rejection.body_text())
        })?;
        reject_nul_in_json(&bytes)?;
        Ok(ApiJson(value.0))
    }
}

/// A webhook's raw body, read before anything parses it (signatures are over these
/// exact bytes), capped at `WEBHOOK_BODY_LIMIT_BYTES` — far below the global body
/// limit: a provider event is a few kilobytes, and a signature can only be checked
/// after the whole body was read. Over the cap: 413.
pub struct WebhookBody(pub axum::body::Bytes);

impl FromRequest<AppState> for WebhookBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.config.commerce.webhook_body_limit;
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(AppError::PayloadTooLarge);
        }
        // A chunked body without a length is cut off at the cap as well.
        axum::body::to_bytes(req.into_body(), limit)
            .await
            .map(WebhookBody)
            .map_err(|e| {
                if crate::error::with_sources(&e).contains("length limit") {
                    AppError::PayloadTooLarge
                } else {
                    AppError::validation("the request body could not be read")
                }
            })
    }
}

/// `Form<T>` (urlencoded) with JSON errors.
pub struct ApiForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let method = req.method().clone();
        let headers = req.headers().clone();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| body_rejection(r.status(), r.body_text()))?;
        // A literal `%` is sent as `%25`, so `%00` in a form body is always a NUL.
        if bytes.windows(3).any(|w| w.eq_ignore_ascii_case(b"%00")) {
            return Err(nul_error());
        }
        let mut req = Request::new(axum::body::Body::from(bytes));
        *req.method_mut() = method;
        *req.headers_mut() = headers;
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(ApiForm(v)),
            Err(rejection) => {
                let rejection: FormRejection = rejection;
                Err(body_rejection(rejection.status(), rejection.body_text()))
            }
        }
    }
}

/// `Query<T>` with JSON errors.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r: QueryRejection| AppError::validation(r.body_text()))
            .and_then(|q| {
                // A literal `%` is sent as `%25`, so `%00` in a query is always a NUL.
                let query = parts.uri.query().unwrap_or_default().as_bytes();
                if query.windows(3).any(|w| w.eq_ignore_ascii_case(b"%00")) {
                    Err(nul_error())
                } else {
                    Ok(q)
                }
            })
    }
}

/// `Path<T>` with JSON errors (e.g. a malformed UUID is a 400, not a plain-text 400).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r: PathRejection| AppError::validation(r.body_text()))
    }
}

/// A JSON or an urlencoded form body (HTML forms post the latter), chosen by
/// `content-type`; both share the body limit and the JSON error format.
pub struct JsonOrForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonOrForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            ApiForm::<T>::from_request(req, state)
                .await
                .map(|f| JsonOrForm(f.0))
        } else {
            ApiJson::<T>::from_request(req, state)
                .await
                .map(|j| JsonOrForm(j.0))
        }
    }
}

/// The client's address: the connection's peer, or, behind `TRUSTED_PROXY_HOPS`
/// reverse proxies, the address the outermost trusted proxy saw in
/// `X-Forwarded-For` (`"unknown"` when the server was not started with connect
/// info, e.g. in-process router tests).
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let hops = state.config.trusted_proxy_hops;
        let forwarded = (hops > 0)
            .then(|| forwarded_client(&parts.headers, hops))
            .flatten();
        Ok(ClientAddr(match forwarded {
            Some(ip) => ip.to_string(),
            None => parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip().to_string())
                .unwrap_or_else(|| "unknown".to_string()),
        }))
    }
}

/// The `hops`-th address from the right of `X-Forwarded-For` (every proxy appends
/// the peer it saw, so entries left of that one are client-controlled). `None`
/// when the header is missing, shorter than `hops` or that entry is not an address.
fn forwarded_client(headers: &HeaderMap, hops: usize) -> Option<IpAddr> {
    if hops == 0 {
        return None;
    }
    // Several header lines form one list, in order.
    let mut entries = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        entries.extend(value.to_str().ok()?.split(',').map(str::trim));
    }
    let entry = *entries
        .len()
        .checked_sub(hops)
        .and_then(|i| entries.get(i))?;
    entry
        .parse::<IpAddr>()
        .ok()
        // Some proxies append the port ("203.0.113.7:51234", "[2001:db8::1]:443").
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn picks_the_nth_entry_from_the_right() {
        let h = xff(&["6.6.6.6, 203.0.113.7, 10.0.0.5"]);
        assert_eq!(forwarded_client(&h, 1), Some([10, 0, 0, 5].into()));
        assert_eq!(forwarded_client(&h, 2), Some([203, 0, 113, 7].into()));
        assert_eq!(forwarded_client(&h, 3), Some([6, 6, 6, 6].into()));
        assert_eq!(forwarded_client(&h, 4), None);
        assert_eq!(forwarded_client(&h, 0), None);
    }

    #[test]
    fn joins_header_lines_and_accepts_ports() {
        let h = xff(&["6.6.6.6", "203.0.113.7:5123"]);
        assert_eq!(forwarded_client(&h, 1), Some([203, 0, 113, 7].into()));
        let h = xff(&["[2001:db8::1]:443"]);
        assert_eq!(
            forwarded_client(&h, 1),
            Some("2001:db8::1".parse().unwrap())
        );
    }

    #[test]
    fn missing_or_malformed_is_none() {
        assert_eq!(forwarded_client(&HeaderMap::new(), 1), None);
        assert_eq!(forwarded_client(&xff(&["not-an-ip"]), 1), None);
        assert_eq!(forwarded_client(&xff(&["1.2.3.4, "]), 1), None);
        assert_eq!(forwarded_client(&xff(&[""]), 1), None);
    }
}
