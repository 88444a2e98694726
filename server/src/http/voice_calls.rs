//! `/api/voice-calls`: AI voice interview calls (ElevenLabs agent "Aarya"), and the
//! provider's post-call webhook. Logic lives in `services::voice_calls`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ClientAddr};
use super::response::{Envelope, created, ok};
use crate::auth::{AuthUser, RequireRole, Role, RoleSet};
use crate::error::{AppResult, ErrorBody};
use crate::services::rate_limit::{self, LimitName};
use crate::services::voice_calls::{self, NewVoiceCall, VoiceCall, WebhookOutcome};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_call))
        .routes(routes!(get_call))
        .routes(routes!(elevenlabs_webhook))
}

/// Students (for themselves) and admins (for a student).
pub struct StudentsOrAdmins;
impl RoleSet for StudentsOrAdmins {
    const ROLES: &'static [Role] = &[Role::Student, Role::Admin, Role::Superadmin];
}

/// Schedules an interview call. Due now: placed at once (`initiated` when ElevenLabs
/// took it). Later (`scheduledFor`, ≤ 60 days): placed by a delayed job, retried while
/// the provider is unavailable, never twice once it may have dialled.
#[utoipa::path(
    post,
    path = "/api/voice-calls",
    tag = "voice-calls",
    security(("bearer" = [])),
    request_body = NewVoiceCall,
    responses(
        (status = 201, description = "Scheduled or placed", body = Envelope<VoiceCall>),
        (status = 400, description = "Bad number, schedule too far ahead, or studentId missing (admins)", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a student or admin, or a student calling someone else", body = ErrorBody),
        (status = 404, description = "Unknown student", body = ErrorBody),
        (status = 502, description = "ElevenLabs refused or answered badly", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED (ELEVENLABS_API_KEY, ELEVENLABS_AGENT_ID, ELEVENLABS_AGENT_PHONE_NUMBER_ID, ELEVENLABS_WEBHOOK_SECRET unset) or the circuit is open", body = ErrorBody),
        (status = 504, description = "ElevenLabs did not answer in time (the call is marked failed, never redialled)", body = ErrorBody)
    )
)]
pub async fn create_call(
    State(state): State<AppState>,
    caller: RequireRole<StudentsOrAdmins>,
    ApiJson(new): ApiJson<NewVoiceCall>,
) -> AppResult<(StatusCode, Json<Envelope<VoiceCall>>)> {
    Ok(created(
        voice_calls::create(&state, caller.user(), &new).await?,
    ))
}

/// A call with its result once the post-call webhook arrived (its student or admins).
#[utoipa::path(
    get,
    path = "/api/voice-calls/{id}",
    tag = "voice-calls",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The call", body = Envelope<VoiceCall>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not the call's student or an admin", body = ErrorBody),
        (status = 404, description = "Unknown call", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED", body = ErrorBody)
    )
)]
pub async fn get_call(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<VoiceCall>>> {
    Ok(ok(voice_calls::get(&state, id, &user).await?))
}

/// ElevenLabs' post-call webhook (`post_call_transcription`, `call_initiation_failure`),
/// authenticated by `ElevenLabs-Signature: t=<unix>,v0=<hex HMAC-SHA256 of "t.body">`
/// with `ELEVENLABS_WEBHOOK_SECRET`; timestamps outside the tolerance are refused.
#[utoipa::path(
    post,
    path = "/api/webhooks/elevenlabs",
    tag = "voice-calls",
    request_body(content = Object, description = "ElevenLabs' webhook event, as sent"),
    params(("elevenlabs-signature" = String, Header, description = "t=<unix seconds>,v0=<hex HMAC-SHA256>")),
    responses(
        (status = 200, description = "Accepted (recorded, ignored or for an unknown conversation)", body = Envelope<WebhookOutcome>),
        (status = 400, description = "Body is not JSON", body = ErrorBody),
        (status = 401, description = "Signature missing, wrong or outside the time tolerance", body = ErrorBody),
        (status = 429, description = "Too many webhook requests from this client address (`RATE_LIMIT_WEBHOOK`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until requests are allowed again"))),
        (status = 503, description = "INTEGRATION_DISABLED", body = ErrorBody)
    )
)]
pub async fn elevenlabs_webhook(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<Envelope<WebhookOutcome>>> {
    rate_limit::enforce(&state, LimitName::Webhook, None, &client).await?;
    let signature = headers
        .get(voice_calls::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    Ok(ok(voice_calls::webhook(&state, signature, &body).await?))
}
