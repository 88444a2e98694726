//! Cross-cutting middleware: CORS policy, security headers, request spans, panics, 404.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::error::{AppError, ErrorBody};

/// Origins are allowed when: there is no `Origin` header (curl, server-to-server, the
/// CLI), the origin is the literal `null` (file:// pages, sandboxed frames), the
/// server runs in development, or the origin is in `CORS_ALLOWED_ORIGINS`.
pub fn origin_allowed(config: &Config, origin: Option<&HeaderValue>) -> bool {
    let Some(origin) = origin else { return true };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    origin == "null"
        || config.is_development()
        || config
            .cors_allowed_origins
            .iter()
            .any(|allowed| allowed.trim_end_matches('/') == origin)
}

pub fn cors_layer(config: &Arc<Config>) -> CorsLayer {
    let config = config.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin_allowed(&config, Some(origin))
        }))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([header::HeaderName::from_static("x-request-id")])
        .max_age(std::time::Duration::from_secs(600))
}

/// Refuses requests from origins outside the policy with a JSON 403, so a
/// disallowed browser origin gets an explicit answer instead of silent success.
pub async fn cors_guard(State(config): State<Arc<Config>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN);
    if origin_allowed(&config, origin) || same_origin(&req) {
        return next.run(req).await;
    }
    let shown = origin.and_then(|o| o.to_str().ok()).unwrap_or("<invalid>");
    AppError::forbidden(format!("origin {shown} is not allowed by the CORS policy")).into_response()
}

/// Same-origin requests are not cross-origin: browsers still send `Origin` on
/// WebSocket upgrades and POSTs from pages this server serves (e.g. /terminal).
fn same_origin(req: &Request) -> bool {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok());
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.trim_end_matches('/') == host),
        _ => false,
    }
}

/// The header set helmet.js applies by default.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let mut set = |name: &'static str, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(
        "content-security-policy",
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';\
         frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';\
         script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
    );
    set("cross-origin-opener-policy", "same-origin");
    set("cross-origin-resource-policy", "same-origin");
    set("origin-agent-cluster", "?1");
    set("referrer-policy", "no-referrer");
    set(
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    );
    set("x-content-type-options", "nosniff");
    set("x-dns-prefetch-control", "off");
    set("x-download-options", "noopen");
    set("x-frame-options", "SAMEORIGIN");
    set("x-permitted-cross-domain-policies", "none");
    set("x-xss-protection", "0");
    res
}

pub fn request_span(req: &Request<axum::body::Body>) -> tracing::Span {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
    )
}

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(ErrorBody::new("INTERNAL_ERROR", "internal error")),
    )
        .into_response()
}

/// Counts every request by its route template (never the raw path: ids would make a label
/// per request) and status, with its latency.
pub async fn count_request(
    State(metrics): State<Arc<crate::metrics::Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = match req.extensions().get::<axum::extract::MatchedPath>() {
        Some(p) if p.as_str().starts_with("/assets") => "/assets/*".to_owned(),
        Some(p) => p.as_str().to_owned(),
        None => "unmatched".to_owned(),
    };
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    metrics.observe_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

pub async fn not_found(req: Request) -> Response {
    AppError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
    .into_response()
}
