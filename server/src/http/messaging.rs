//! The PAP agreement's eSign (`/api/esign/pap`) and WhatsApp reminders (admins).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiQuery};
use super::response::{Envelope, created, ok};
use crate::auth::{AuthUser, RequireRole, roles};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::services::esign::{self, EsignRequest};
use crate::services::whatsapp::{self, Message};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_pap, get_pap))
        .routes(routes!(pap_document))
        .routes(routes!(send_reminder))
        .routes(routes!(list_messages))
}

/// Starts the PAP agreement signing through Leegality (students): the answer carries
/// the `signUrl` to open. Completion arrives by webhook.
#[utoipa::path(
    post, path = "/api/esign/pap", tag = "esign", security(("bearer" = [])),
    responses(
        (status = 201, description = "Signing request sent", body = Envelope<EsignRequest>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a student", body = ErrorBody),
        (status = 409, description = "Already signed or in progress", body = ErrorBody),
        (status = 502, description = "Leegality refused or answered badly", body = ErrorBody),
        (status = 503, description = "LEEGALITY_AUTH_TOKEN / LEEGALITY_PAP_PROFILE_ID unset (INTEGRATION_DISABLED)", body = ErrorBody),
        (status = 504, description = "Leegality did not answer in time", body = ErrorBody)
    )
)]
async fn request_pap(
    State(state): State<AppState>,
    student: RequireRole<roles::Students>,
) -> AppResult<(StatusCode, Json<Envelope<EsignRequest>>)> {
    Ok(created(
        esign::request_pap(&state, student.user().id()).await?,
    ))
}

/// The caller's latest PAP signing request.
#[utoipa::path(
    get, path = "/api/esign/pap", tag = "esign", security(("bearer" = [])),
    responses(
        (status = 200, description = "Its state", body = Envelope<EsignRequest>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "None yet", body = ErrorBody)
    )
)]
async fn get_pap(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Json<Envelope<EsignRequest>>> {
    Ok(ok(esign::latest(&state, user.id()).await?))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentLink {
    /// A signed GET of the documents bucket, valid S3_PRIVATE_GET_TTL_SECONDS.
    pub download_url: String,
    pub expires_at: DateTime<Utc>,
}

/// A short-lived download URL of the caller's signed PAP agreement.
#[utoipa::path(
    get, path = "/api/esign/pap/document", tag = "esign", security(("bearer" = [])),
    responses(
        (status = 200, description = "Signed download URL", body = Envelope<DocumentLink>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No signed agreement yet", body = ErrorBody),
        (status = 503, description = "S3_DOCUMENTS_BUCKET unset (INTEGRATION_DISABLED)", body = ErrorBody)
    )
)]
async fn pap_document(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Json<Envelope<DocumentLink>>> {
    let url = esign::signed_document_url(&state, user.id()).await?;
    Ok(ok(DocumentLink {
        download_url: url.url,
        expires_at: url.expires_at,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReminderInput {
    pub meeting_id: Uuid,
}

/// Queues a WhatsApp reminder template to a scheduled meeting's student (admins).
#[utoipa::path(
    post, path = "/api/admin/whatsapp/reminders", tag = "whatsapp", request_body = ReminderInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Queued", body = Envelope<Message>),
        (status = 400, description = "The student has no phone number", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such scheduled meeting", body = ErrorBody),
        (status = 503, description = "WHATSAPP_ACCESS_TOKEN / WHATSAPP_PHONE_NUMBER_ID unset (INTEGRATION_DISABLED)", body = ErrorBody)
    )
)]
async fn send_reminder(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiJson(body): ApiJson<ReminderInput>,
) -> AppResult<(StatusCode, Json<Envelope<Message>>)> {
    let message = whatsapp::remind(&state, body.meeting_id)
        .await?
        .ok_or_else(|| AppError::validation("the student has no phone number"))?;
    Ok(created(message))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    pub user_id: Uuid,
}

/// WhatsApp messages to and from a user, newest first (admins; at most 200).
#[utoipa::path(
    get, path = "/api/admin/whatsapp/messages", tag = "whatsapp", params(MessagesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Messages", body = Envelope<Vec<Message>>),
        (status = 400, description = "Missing or malformed userId", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody)
    )
)]
async fn list_messages(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiQuery(query): ApiQuery<MessagesQuery>,
) -> AppResult<Json<Envelope<Vec<Message>>>> {
    Ok(ok(whatsapp::list_for_user(&state.db, query.user_id).await?))
}
