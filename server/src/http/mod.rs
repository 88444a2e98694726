//! HTTP surface: routes, middleware stack and the OpenAPI document.

pub mod extract;
pub mod health;
mod middleware;
pub mod openapi;
pub mod realtime;
pub mod response;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::services::ServeDir;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// All JSON API routes with their OpenAPI descriptions.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base_document())
        .merge(health::routes())
        .merge(realtime::routes())
}

/// The complete application: API, OpenAPI document, static assets and middleware.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] plus `extra` routes that share the middleware stack (Socket.IO).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let (api, document) = api_routes().split_for_parts();
    let document = std::sync::Arc::new(document);
    let config = state.config.clone();

    let app = Router::new()
        .merge(api)
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move { axum::Json(document.as_ref().clone()) }
            }),
        )
        .merge(realtime::pages())
        .merge(extra)
        .nest_service("/assets", ServeDir::new(&config.assets_dir))
        .fallback(middleware::not_found)
        .with_state(state.clone());

    app.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                axum::http::header::AUTHORIZATION,
                axum::http::header::COOKIE,
            ]))
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(middleware::request_span))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(CatchPanicLayer::custom(middleware::panic_response))
            .layer(axum::middleware::from_fn_with_state(
                config.clone(),
                middleware::cors_guard,
            ))
            .layer(middleware::cors_layer(&config))
            .layer(axum::middleware::from_fn(middleware::security_headers))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(60),
            ))
            .layer(DefaultBodyLimit::max(config.body_limit_bytes)),
    )
}
