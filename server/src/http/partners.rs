//! `/api/partners/*`: thin, authenticated proxies to Graphy (Mr. Learn), mr-hire and
//! the class agent. Only allow-listed paths, fixed upstreams, bounded size and time;
//! see `services::partners`.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::response::ok;
use crate::auth::AuthUser;
use crate::error::{AppResult, ErrorBody};
use crate::services::partners::{self, Partner};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(graphy_get, graphy_post))
        .routes(routes!(mr_hire_get, mr_hire_post))
        .routes(routes!(class_agent_get, class_agent_post))
}

async fn proxy(
    state: &AppState,
    partner: Partner,
    user: &AuthUser,
    method: Method,
    uri: &OriginalUri,
    prefix: &str,
    body: &[u8],
) -> AppResult<Response> {
    // The raw path, not the decoded capture: `%2F` must not become a separator.
    let path = uri.path().strip_prefix(prefix).unwrap_or("");
    let proxied = partners::forward(state, partner, user, method, path, uri.query(), body).await?;
    let status = StatusCode::from_u16(proxied.status.as_u16()).unwrap_or(StatusCode::OK);
    Ok((status, ok(proxied.body)).into_response())
}

/// Proxies a GET to Graphy (Mr. Learn). Allowed: GET learners, GET products, GET transactions, POST learners, POST assign. Admins and sales.
#[utoipa::path(
    get,
    path = "/api/partners/graphy/{*path}",
    tag = "partners",
    params(("path" = String, Path, description = "GET learners, GET products, GET transactions, POST learners, POST assign")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upstream's JSON answer", body = crate::http::response::Envelope<Object>),
        (status = 400, description = "Query too long, or the upstream rejected the request", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "Path not allow-listed, or not found upstream", body = ErrorBody),
        (status = 429, description = "The upstream is rate limiting", body = ErrorBody),
        (status = 502, description = "Upstream error, redirect, non-JSON or oversized answer", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED (GRAPHY_MID, GRAPHY_API_KEY unset) or the circuit is open", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody)
    )
)]
pub async fn graphy_get(
    State(state): State<AppState>,
    user: AuthUser,
    uri: OriginalUri,
) -> AppResult<Response> {
    proxy(
        &state,
        Partner::Graphy,
        &user,
        Method::GET,
        &uri,
        "/api/partners/graphy/",
        &[],
    )
    .await
}

/// Proxies a POST (a JSON object, at most PARTNER_PROXY_MAX_REQUEST_BYTES) to Graphy (Mr. Learn).
/// Allowed: GET learners, GET products, GET transactions, POST learners, POST assign. Admins and sales.
#[utoipa::path(
    post,
    path = "/api/partners/graphy/{*path}",
    tag = "partners",
    params(("path" = String, Path, description = "GET learners, GET products, GET transactions, POST learners, POST assign")),
    request_body(content = Object, description = "JSON object forwarded upstream"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upstream's JSON answer", body = crate::http::response::Envelope<Object>),
        (status = 201, description = "The upstream created something", body = crate::http::response::Envelope<Object>),
        (status = 400, description = "Body not a JSON object, or rejected upstream", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "Path not allow-listed, or not found upstream", body = ErrorBody),
        (status = 409, description = "Conflict upstream", body = ErrorBody),
        (status = 413, description = "Body larger than PARTNER_PROXY_MAX_REQUEST_BYTES", body = ErrorBody),
        (status = 429, description = "The upstream is rate limiting", body = ErrorBody),
        (status = 502, description = "Upstream error, redirect, non-JSON or oversized answer", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED (GRAPHY_MID, GRAPHY_API_KEY unset) or the circuit is open", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody)
    )
)]
pub async fn graphy_post(
    State(state): State<AppState>,
    user: AuthUser,
    uri: OriginalUri,
    body: Bytes,
) -> AppResult<Response> {
    proxy(
        &state,
        Partner::Graphy,
        &user,
        Method::POST,
        &uri,
        "/api/partners/graphy/",
        &body,
    )
    .await
}

/// Proxies a GET to the mr-hire backend. Allowed: GET jobs, GET jobs/{id}, GET companies/{id}, GET applications, POST jobs/{id}/applications. Everyone signed in (named upstream by X-MAS-User-Id and X-MAS-User-Role).
#[utoipa::path(
    get,
    path = "/api/partners/mr-hire/{*path}",
    tag = "partners",
    params(("path" = String, Path, description = "GET jobs, GET jobs/{id}, GET companies/{id}, GET applications, POST jobs/{id}/applications")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upstream's JSON answer", body = crate::http::response::Envelope<Object>),
        (status = 400, description = "Query too long, or the upstream rejected the request", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "Path not allow-listed, or not found upstream", body = ErrorBody),
        (status = 429, description = "The upstream is rate limiting", body = ErrorBody),
        (status = 502, description = "Upstream error, redirect, non-JSON or oversized answer", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED (MR_HIRE_BACKEND_URL unset) or the circuit is open", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody)
    )
)]
pub async fn mr_hire_get(
    State(state): State<AppState>,
    user: AuthUser,
    uri: OriginalUri,
) -> AppResult<Response> {
    proxy(
        &state,
        Partner::MrHire,
        &user,
        Method::GET,
        &uri,
        "/api/partners/mr-hire/",
        &[],
    )
    .await
}

/// Proxies a POST (a JSON object, at most PARTNER_PROXY_MAX_REQUEST_BYTES) to the mr-hire backend.
/// Allowed: GET jobs, GET jobs/{id}, GET companies/{id}, GET applications, POST jobs/{id}/applications. Everyone signed in (named upstream by X-MAS-User-Id and X-MAS-User-Role).
#[utoipa::path(
    post,
    path = "/api/partners/mr-hire/{*path}",
    tag = "partners",
    params(("path" = String, Path, description = "GET jobs, GET jobs/{id}, GET companies/{id}, GET applications, POST jobs/{id}/applications")),
    request_body(content = Object, description = "JSON object forwarded upstream"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upstream's JSON answer", body = crate::http::response::Envelope<Object>),
        (status = 201, description = "The upstream created something", body = crate::http::response::Envelope<Object>),
        (status = 400, description = "Body not a JSON object, or rejected upstream", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "Path not allow-listed, or not found upstream", body = ErrorBody),
        (status = 409, description = "Conflict upstream", body = ErrorBody),
        (status = 413, description = "Body larger than PARTNER_PROXY_MAX_REQUEST_BYTES", body = ErrorBody),
        (status = 429, description = "The upstream is rate limiting", body = ErrorBody),
        (status = 502, description = "Upstream error, redirect, non-JSON or oversized answer", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED (MR_HIRE_BACKEND_URL unset) or the circuit is open", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody)
    )
)]
pub async fn mr_hire_post(
    State(state): State<AppState>,
    user: AuthUser,
    uri: OriginalUri,
    body: Bytes,
) -> AppResult<Response> {
    proxy(
        &state,
        Partner::MrHire,
        &user,
        Method::POST,
        &uri,
        "/api/partners/mr-hire/",
        &body,
    )
    .await
}

/// Proxies a GET to the class agent. Allowed: POST sessions, GET sessions/{id}, POST sessions/{id}/messages, GET sessions/{id}/messages. Students, mentors and admins.
#[utoipa::path(
    get,
    path = "/api/partners/class-agent/{*path}",
    tag = "partners",
    params(("path" = String, Path, description = "POST sessions, GET sessions/{id}, POST sessions/{id}/messages, GET sessions/{id}/messages")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upstream's JSON answer", body = crate::http::response::Envelope<Object>),
        (status = 400, description = "Query too long, or the upstream rejected the request", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "Path not allow-listed, or not found upstream", body = ErrorBody),
        (status = 429, description = "The upstream is rate limiting", body = ErrorBody),
        (status = 502, description = "Upstream error, redirect, non-JSON or oversized answer", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED (CLASS_AGENT_URL, CLASS_AGENT_API_KEY unset) or the circuit is open", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody)
    )
)]
pub async fn class_agent_get(
    State(state): State<AppState>,
    user: AuthUser,
    uri: OriginalUri,
) -> AppResult<Response> {
    proxy(
        &state,
        Partner::ClassAgent,
        &user,
        Method::GET,
        &uri,
        "/api/partners/class-agent/",
        &[],
    )
    .await
}

/// Proxies a POST (a JSON object, at most PARTNER_PROXY_MAX_REQUEST_BYTES) to the class agent.
/// Allowed: POST sessions, GET sessions/{id}, POST sessions/{id}/messages, GET sessions/{id}/messages. Students, mentors and admins.
#[utoipa::path(
    post,
    path = "/api/partners/class-agent/{*path}",
    tag = "partners",
    params(("path" = String, Path, description = "POST sessions, GET sessions/{id}, POST sessions/{id}/messages, GET sessions/{id}/messages")),
    request_body(content = Object, description = "JSON object forwarded upstream"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upstream's JSON answer", body = crate::http::response::Envelope<Object>),
        (status = 201, description = "The upstream created something", body = crate::http::response::Envelope<Object>),
        (status = 400, description = "Body not a JSON object, or rejected upstream", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "Path not allow-listed, or not found upstream", body = ErrorBody),
        (status = 409, description = "Conflict upstream", body = ErrorBody),
        (status = 413, description = "Body larger than PARTNER_PROXY_MAX_REQUEST_BYTES", body = ErrorBody),
        (status = 429, description = "The upstream is rate limiting", body = ErrorBody),
        (status = 502, description = "Upstream error, redirect, non-JSON or oversized answer", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED (CLASS_AGENT_URL, CLASS_AGENT_API_KEY unset) or the circuit is open", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody)
    )
)]
pub async fn class_agent_post(
    State(state): State<AppState>,
    user: AuthUser,
    uri: OriginalUri,
    body: Bytes,
) -> AppResult<Response> {
    proxy(
        &state,
        Partner::ClassAgent,
        &user,
        Method::POST,
        &uri,
        "/api/partners/class-agent/",
        &body,
    )
    .await
}
