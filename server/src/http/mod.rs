//! HTTP surface: routes, middleware stack and the OpenAPI document.

pub mod admin_users;
pub mod auth;
pub mod batch_imports;
pub mod batches;
pub mod bookings;
// --- integrations-2 ---
pub mod code_runs;
pub mod google;
pub mod partners;
pub mod voice_calls;
// ---
pub mod colleges;
pub mod courses;
pub mod crm;
pub mod extract;
pub mod health;
pub mod integrations;
pub mod internal;
pub mod kpis;
pub mod meetings;
pub mod messaging;
mod middleware;
pub mod openapi;
pub mod payments;
pub mod queue_admin;
pub mod realtime;
pub mod recruiter;
pub mod response;
pub mod resumes;
pub mod slots;
pub mod uploads;
pub mod webhooks;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::config::Config;
use crate::state::AppState;

/// `x-app-version` on every response: tells blue from green through the ingress.
pub(crate) fn app_version_header(config: &Config) -> SetResponseHeaderLayer<HeaderValue> {
    // APP_VERSION is checked to be a valid header value when the config is read.
    let value = HeaderValue::from_str(&config.app_version)
        .unwrap_or_else(|_| HeaderValue::from_static(env!("CARGO_PKG_VERSION")));
    SetResponseHeaderLayer::overriding(HeaderName::from_static("x-app-version"), value)
}

/// All JSON API routes with their OpenAPI descriptions.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base_document())
        .merge(health::routes())
        .merge(auth::routes())
        .merge(admin_users::routes())
        .merge(uploads::routes())
        .merge(openapi::routes())
        .merge(colleges::routes())
        .merge(courses::routes())
        .merge(batches::routes())
        .merge(slots::routes())
        .merge(bookings::routes())
        .merge(meetings::routes())
        .merge(kpis::routes())
        .merge(resumes::routes())
        .merge(batch_imports::routes())
        .merge(queue_admin::routes())
        .merge(integrations::routes())
        // --- integrations-2 ---
        .merge(google::routes())
        .merge(code_runs::routes())
        .merge(voice_calls::routes())
        .merge(partners::routes())
        .merge(realtime::routes())
        .merge(payments::routes())
        .merge(webhooks::routes())
        .merge(crm::routes())
        .merge(recruiter::routes())
        .merge(messaging::routes())
}

/// What a `PROCESS_ROLE=workers` process serves: only the health probes.
pub fn probes_router(state: AppState) -> Router {
    let (probes, _) = OpenApiRouter::new()
        .merge(health::routes())
        .split_for_parts();
    let version = app_version_header(&state.config);
    probes
        .fallback(middleware::not_found)
        .with_state(state)
        .layer(version)
}

/// The complete application: API, OpenAPI document, static assets and middleware.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] plus `extra` routes that share the middleware stack (Socket.IO).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let (api, document) = api_routes().split_for_parts();
    let document = std::sync::Arc::new(openapi::complete(document));
    let config = state.config.clone();

    let app = Router::new()
        .merge(api)
        .merge(queue_admin::page_routes())
        .merge(realtime::pages())
        .merge(extra)
        .layer(axum::Extension(document))
        .nest_service("/assets", ServeDir::new(&config.assets_dir))
        .fallback(middleware::not_found)
        // Inside the router, where the matched route template is known.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            middleware::count_request,
        ))
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
            .layer(app_version_header(&config))
            // Outside the CORS guard and panic handler so their answers get the headers too.
            .layer(axum::middleware::from_fn(middleware::security_headers))
            .layer(CatchPanicLayer::custom(middleware::panic_response))
            .layer(axum::middleware::from_fn_with_state(
                config.clone(),
                middleware::cors_guard,
            ))
            .layer(middleware::cors_layer(&config))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(60),
            ))
            .layer(DefaultBodyLimit::max(config.body_limit_bytes)),
    )
}
