//! HTTP side of realtime: who is online, meeting chat history, terminal pairing
//! tokens, the terminal relay WebSocket and the browser terminal page.

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{AuthUser, RequireRole, roles};
use crate::error::{AppResult, ErrorBody};
use crate::http::extract::{ApiPath, ApiQuery, ClientAddr};
use crate::http::response::{Envelope, created, ok};
use crate::services::rate_limit::{self, LimitName};
use crate::services::realtime::chat::{self, ChatPage};
use crate::services::realtime::meetings;
use crate::services::realtime::presence::{OnlineUser, PresenceStore};
use crate::services::realtime::terminal_pairing::PairingStore;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(online))
        .routes(routes!(meeting_messages))
        .routes(routes!(create_pairing))
}

/// Non-JSON routes: the relay WebSocket and the terminal page.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/api/terminal/relay", get(crate::realtime::terminal::relay))
        .route("/terminal", get(terminal_page))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OnlineList {
    pub users: Vec<OnlineUser>,
}

/// Users with at least one Socket.IO connection on any live replica.
#[utoipa::path(
    get,
    path = "/api/presence/online",
    tag = "realtime",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Online users", body = Envelope<OnlineList>),
        (status = 401, description = "Not authenticated", body = ErrorBody)
    )
)]
pub async fn online(
    State(state): State<AppState>,
    _user: AuthUser,
) -> AppResult<axum::Json<Envelope<OnlineList>>> {
    let store = PresenceStore::new(state.redis.clone(), &state.config.realtime);
    Ok(ok(OnlineList {
        users: store.online_users().await?,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Cursor from a previous page (`nextCursor`); omit for the first page.
    pub after: Option<i64>,
    /// Page size, 1..=100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Chat history of a meeting, oldest first (participants and admins only).
#[utoipa::path(
    get,
    path = "/api/meetings/{id}/messages",
    tag = "realtime",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Meeting id"), MessagesQuery),
    responses(
        (status = 200, description = "One page of messages", body = Envelope<ChatPage>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Not a participant", body = ErrorBody),
        (status = 404, description = "Unknown meeting", body = ErrorBody)
    )
)]
pub async fn meeting_messages(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<MessagesQuery>,
) -> AppResult<axum::Json<Envelope<ChatPage>>> {
    // History stays readable after a cancellation.
    meetings::authorize(&state.db, id, &user.0).await?;
    let page = chat::page(&state.db, id, query.after, query.limit.unwrap_or(50)).await?;
    Ok(ok(page))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PairingIssued {
    /// Send as the first WebSocket frame: `{"token": .., "role": "browser"|"cli"}`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// Path of the relay WebSocket.
    pub relay_path: &'static str,
}

/// Issues a single-use token pairing a browser terminal with the student's CLI.
#[utoipa::path(
    post,
    path = "/api/terminal/pairings",
    tag = "realtime",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Pairing token", body = Envelope<PairingIssued>),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Not a student", body = ErrorBody),
        (status = 429, description = "Too many pairings for this user or client address (`RATE_LIMIT_PAIRING`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until the limit resets"))),
        (status = 503, description = "Redis unavailable", body = ErrorBody)
    )
)]
pub async fn create_pairing(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    student: RequireRole<roles::Students>,
) -> AppResult<(axum::http::StatusCode, axum::Json<Envelope<PairingIssued>>)> {
    let user = student.user();
    rate_limit::enforce(&state, LimitName::Pairing, Some(user.id()), &client).await?;
    let store = PairingStore::new(state.redis.clone(), &state.config.realtime);
    // The relay session lives as long as the access token that asked for it, and is
    // then asked to present a new one (`auth:refresh`).
    let issued = store.issue(user.id(), user.0.exp).await?;
    Ok(created(PairingIssued {
        token: issued.token,
        expires_at: issued.expires_at,
        relay_path: "/api/terminal/relay",
    }))
}

/// Minimal xterm.js page for trying the relay (assets under `/assets/terminal`, on
/// the CDN when one is configured).
async fn terminal_page(State(state): State<AppState>) -> Html<String> {
    Html(crate::services::assets::rewrite_html(
        &state.config,
        include_str!("../../assets/terminal/index.html"),
    ))
}
