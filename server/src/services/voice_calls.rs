//! Voice interview calls ("MissOzone"): ElevenLabs' conversational agent "Aarya" phones
//! a student, and the provider's post-call webhook brings back the transcript and
//! analysis.
//!
//! Followed: ElevenLabs API reference, "Outbound call via twilio",
//! https://elevenlabs.io/docs/conversational-ai/api-reference/twilio/outbound-call
//! (`POST /v1/convai/twilio/outbound-call`, header `xi-api-key`, body `agent_id`,
//! `agent_phone_number_id`, `to_number`, optional
//! `conversation_initiation_client_data.dynamic_variables`; answers `success`, `message`,
//! `conversation_id`, `callSid`), and "Post-call webhooks",
//! https://elevenlabs.io/docs/eleven-agents/workflows/post-call-webhooks (types
//! `post_call_transcription` and `call_initiation_failure`; `data.conversation_id`,
//! `data.transcript`, `data.analysis`, `data.metadata`; HMAC authentication: header
//! `ElevenLabs-Signature: t=<unix seconds>,v0=<hex HMAC-SHA256 of "<t>.<raw body>">`
//! with the webhook secret, timestamps older than 30 minutes rejected, as the official
//! SDKs' `constructEvent` does).

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{AuthUser, Role};
use crate::config::ElevenLabsConfig;
use crate::error::{AppError, AppResult};
use crate::queues::{JobError, QueueName};
use crate::services::integrations::{HttpClient, IntegrationId, OutboundError};
use crate::state::AppState;

pub const JOB_NAME: &str = "startVoiceCall";
pub const SIGNATURE_HEADER: &str = "elevenlabs-signature";
/// Calls can be scheduled at most this far ahead.
const MAX_SCHEDULE_AHEAD_DAYS: i64 = 60;

fn config(state: &AppState) -> AppResult<(&ElevenLabsConfig, &HttpClient)> {
    let http = state.integrations.http(IntegrationId::ElevenLabs)?;
    let cfg = state.config.external.elevenlabs.as_ref().ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("elevenlabs registered without settings"))
    })?;
    Ok((cfg, http))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewVoiceCall {
    /// The student to call (admins); students always call themselves.
    pub student_id: Option<Uuid>,
    /// E.164 phone number, e.g. `+919812345678`.
    #[schema(pattern = r"^\+[1-9][0-9]{6,14}$")]
    pub to_number: String,
    /// Start no earlier than this (at most 60 days ahead); now when absent.
    pub scheduled_for: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct VoiceCall {
    pub id: Uuid,
    pub student_id: Uuid,
    pub to_number: String,
    /// `scheduled`, `initiated` (ringing / in progress), `completed` or `failed`.
    pub status: String,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub conversation_id: Option<String>,
    /// The analysis's summary of the interview, from the post-call webhook.
    pub summary: Option<String>,
    /// `success`, `failure` or `unknown`, as ElevenLabs evaluated the call.
    pub call_successful: Option<String>,
    pub duration_secs: Option<i32>,
    /// `[{role, message}]` turns of the conversation.
    #[schema(value_type = Option<Object>)]
    pub transcript: Option<Value>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, student_id, to_number, status, scheduled_for, conversation_id, summary, \
    call_successful, duration_secs, transcript, failure_reason, created_at, updated_at";

fn valid_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

async fn fetch(state: &AppState, id: Uuid) -> AppResult<VoiceCall> {
    sqlx::query_as::<_, VoiceCall>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from voice_calls where id = $1"
    )))
    .bind(id)
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| AppError::not_found(format!("voice call {id} not found")))
}

/// Schedules a call; one due now is placed at once (the answer says whether the
/// provider accepted it), a later one by a delayed databaseQueue job.
pub async fn create(
    state: &AppState,
    caller: &AuthUser,
    new: &NewVoiceCall,
) -> AppResult<VoiceCall> {
    config(state)?;
    let student_id = match (caller.role(), new.student_id) {
        (Role::Student, None) => caller.id(),
        (Role::Student, Some(id)) if id == caller.id() => id,
        (Role::Student, Some(_)) => {
            return Err(AppError::forbidden(
                "students can only schedule calls to themselves",
            ));
        }
        (role, Some(id)) if role.is_admin() => id,
        _ => return Err(AppError::validation("studentId is required")),
    };
    let to_number = new.to_number.trim();
    if !valid_e164(to_number) {
        return Err(AppError::validation(
            "toNumber must be an E.164 number such as +919812345678",
        ));
    }
    let now = Utc::now();
    let scheduled = new
        .scheduled_for
        .filter(|at| *at > now + chrono::Duration::seconds(5));
    if let Some(at) = scheduled
        && at > now + chrono::Duration::days(MAX_SCHEDULE_AHEAD_DAYS)
    {
        return Err(AppError::validation(format!(
            "scheduledFor must be within {MAX_SCHEDULE_AHEAD_DAYS} days"
        )));
    }
    let is_student: Option<bool> =
        sqlx::query_scalar("select role = 'student' from users where id = $1 and is_active")
            .bind(student_id)
            .fetch_optional(&state.db)
            .await?;
    if is_student != Some(true) {
        return Err(AppError::not_found(format!(
            "student {student_id} not found"
        )));
    }
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into voice_calls (id, student_id, requested_by, to_number, scheduled_for) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(student_id)
    .bind(caller.id())
    .bind(to_number)
    .bind(scheduled)
    .execute(&state.db)
    .await?;

    match scheduled {
        Some(at) => {
            let delay = (at - now).to_std().unwrap_or_default();
            if let Err(err) = state
                .queues
                .add_delayed(
                    QueueName::Database,
                    JOB_NAME,
                    json!({"callId": id}),
                    Some(format!("voice-call-{id}")),
                    delay,
                )
                .await
            {
                sqlx::query("delete from voice_calls where id = $1")
                    .bind(id)
                    .execute(&state.db)
                    .await?;
                return Err(err.into());
            }
        }
        None => {
            if let Err(err) = place(state, id).await {
                // Placed right away, nothing retries it later: the call is over.
                let err = err.into_app();
                record_failure(state, id, &err.to_string(), true).await?;
                return Err(err);
            }
        }
    }
    fetch(state, id).await
}

/// Why placing a call failed, for the HTTP answer or the queue.
pub enum PlaceError {
    /// Not worth retrying (bad number, rejected by the provider, unknown outcome).
    Final(AppError),
    /// The provider is down or overloaded: a scheduled call tries again.
    Transient(AppError),
}

impl PlaceError {
    pub fn into_app(self) -> AppError {
        match self {
            PlaceError::Final(e) | PlaceError::Transient(e) => e,
        }
    }

    pub fn into_job(self) -> JobError {
        match self {
            PlaceError::Final(e) => JobError::permanent(e.to_string()),
            PlaceError::Transient(e) => JobError::retry(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for PlaceError {
    fn from(e: sqlx::Error) -> Self {
        PlaceError::Transient(e.into())
    }
}

#[derive(Deserialize)]
struct OutboundAnswer {
    success: Option<bool>,
    message: Option<String>,
    conversation_id: Option<String>,
    #[serde(rename = "callSid")]
    call_sid: Option<String>,
}

/// Asks ElevenLabs to place the call `id` (still `scheduled`).
pub async fn place(state: &AppState, id: Uuid) -> Result<(), PlaceError> {
    let (cfg, http) = config(state).map_err(PlaceError::Final)?;
    let row: Option<(String, String, String)> = sqlx::query_as(
        "select c.to_number, c.status, u.name from voice_calls c join users u on u.id = c.student_id \
         where c.id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    let Some((to_number, status, name)) = row else {
        return Err(PlaceError::Final(AppError::not_found(format!(
            "voice call {id} not found"
        ))));
    };
    if status != "scheduled" {
        // A retried job after the provider already took the call.
        return Ok(());
    }
    let body = json!({
        "agent_id": cfg.agent_id,
        "agent_phone_number_id": cfg.agent_phone_number_id,
        "to_number": to_number,
        "conversation_initiation_client_data": {
            "dynamic_variables": {"student_name": name, "mas_call_id": id.to_string()},
        },
    });
    let url = format!("{}/v1/convai/twilio/outbound-call", cfg.api_url);
    // A POST that dials a phone: sent once. Only a refusal before the call was placed
    // (5xx, 429, unreachable) is retried later by the queue; a timeout leaves the
    // outcome unknown, so it is not retried (the student must not be phoned twice).
    let sent = http
        .send(|c| {
            c.post(&url)
                .header("xi-api-key", cfg.api_key.expose())
                .json(&body)
        })
        .await;
    let answer: OutboundAnswer = match sent {
        Ok(res) => http.json(res).await.map_err(|e| fail_final(e.into()))?,
        Err(err) => {
            let final_ = matches!(err, OutboundError::Timeout { .. }) || !err.is_transient();
            let app: AppError = err.into();
            record_failure(state, id, &app.to_string(), final_).await?;
            return Err(if final_ {
                PlaceError::Final(app)
            } else {
                PlaceError::Transient(app)
            });
        }
    };
    match (answer.success, answer.conversation_id) {
        (Some(true) | None, Some(conversation_id)) => {
            sqlx::query(
                "update voice_calls set status = 'initiated', conversation_id = $2, call_sid = $3, \
                 failure_reason = null where id = $1",
            )
            .bind(id)
            .bind(conversation_id)
            .bind(answer.call_sid)
            .execute(&state.db)
            .await?;
            tracing::info!(call_id = %id, "voice interview call placed");
            Ok(())
        }
        _ => {
            let reason = format!(
                "elevenlabs did not place the call: {}",
                answer
                    .message
                    .unwrap_or_else(|| "no reason given".into())
                    .chars()
                    .take(200)
                    .collect::<String>()
            );
            record_failure(state, id, &reason, true).await?;
            Err(PlaceError::Final(AppError::BadGateway(reason)))
        }
    }
}

fn fail_final(e: AppError) -> PlaceError {
    PlaceError::Final(e)
}

/// Notes the failure; `last` marks the call failed (no more attempts).
pub async fn record_failure(
    state: &AppState,
    id: Uuid,
    reason: &str,
    last: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update voice_calls set failure_reason = $2, \
         status = case when $3 then 'failed' else status end where id = $1 and status = 'scheduled'",
    )
    .bind(id)
    .bind(reason)
    .bind(last)
    .execute(&state.db)
    .await?;
    Ok(())
}

pub async fn get(state: &AppState, id: Uuid, caller: &AuthUser) -> AppResult<VoiceCall> {
    config(state)?;
    let call = fetch(state, id).await?;
    if call.student_id != caller.id() && !caller.role().is_admin() {
        return Err(AppError::forbidden(
            "only the student and admins can see this call",
        ));
    }
    Ok(call)
}

/// Checks `ElevenLabs-Signature` over the raw body.
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: std::time::Duration,
) -> AppResult<()> {
    let refused = |why: &str| AppError::unauthorized(format!("webhook signature refused: {why}"));
    let header = header.ok_or_else(|| refused("the ElevenLabs-Signature header is missing"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v0", v)) => signatures.push(v.to_string()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| refused("no timestamp"))?;
    let age = now.timestamp() - timestamp;
    if age > tolerance.as_secs() as i64 {
        return Err(refused("the timestamp is too old"));
    }
    if age < -(tolerance.as_secs() as i64) {
        return Err(refused("the timestamp is in the future"));
    }
    let mac = |sig: &[u8]| {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(sig).is_ok()
    };
    if signatures
        .iter()
        .filter_map(|s| hex::decode(s).ok())
        .any(|sig| mac(&sig))
    {
        Ok(())
    } else {
        Err(refused("the signature does not match"))
    }
}

/// What the webhook did with an event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookOutcome {
    /// `recorded`, `unknown_conversation` or `ignored`.
    pub outcome: &'static str,
}

/// Handles a verified post-call webhook. Replays are harmless (same row, same data).
pub async fn webhook(
    state: &AppState,
    signature: Option<&str>,
    body: &[u8],
) -> AppResult<WebhookOutcome> {
    // An unsigned request is refused before anything else, configured or not.
    if signature.is_none() {
        return Err(AppError::unauthorized(format!(
            "missing {SIGNATURE_HEADER} header"
        )));
    }
    let (cfg, _) = config(state)?;
    verify_signature(
        cfg.webhook_secret.expose(),
        signature,
        body,
        Utc::now(),
        cfg.webhook_tolerance,
    )?;
    let event: Value = serde_json::from_slice(body)
        .map_err(|_| AppError::validation("webhook body is not JSON"))?;
    let data = &event["data"];
    let Some(conversation_id) = data["conversation_id"].as_str() else {
        return Ok(WebhookOutcome { outcome: "ignored" });
    };
    let updated = match event["type"].as_str() {
        Some("post_call_transcription") => {
            let transcript: Vec<Value> = data["transcript"]
                .as_array()
                .map(|turns| {
                    turns
                        .iter()
                        .map(|t| json!({"role": t["role"], "message": t["message"]}))
                        .collect()
                })
                .unwrap_or_default();
            sqlx::query(
                "update voice_calls set status = 'completed', transcript = $2, summary = $3, \
                   call_successful = $4, duration_secs = $5, result = $6, completed_at = now() \
                 where conversation_id = $1",
            )
            .bind(conversation_id)
            .bind(Value::Array(transcript))
            .bind(data["analysis"]["transcript_summary"].as_str())
            .bind(data["analysis"]["call_successful"].as_str())
            .bind(
                data["metadata"]["call_duration_secs"]
                    .as_i64()
                    .map(|d| d as i32),
            )
            .bind(&data["analysis"])
            .execute(&state.db)
            .await?
            .rows_affected()
        }
        Some("call_initiation_failure") => {
            let reason = data["failure_reason"]
                .as_str()
                .or(data["metadata"]["failure_reason"].as_str())
                .unwrap_or("call initiation failed");
            sqlx::query(
                "update voice_calls set status = 'failed', failure_reason = $2 \
                 where conversation_id = $1 and status <> 'completed'",
            )
            .bind(conversation_id)
            .bind(reason.chars().take(300).collect::<String>())
            .execute(&state.db)
            .await?
            .rows_affected()
        }
        _ => return Ok(WebhookOutcome { outcome: "ignored" }),
    };
    if updated == 0 {
        tracing::warn!("elevenlabs webhook for a conversation we did not start");
        return Ok(WebhookOutcome {
            outcome: "unknown_conversation",
        });
    }
    Ok(WebhookOutcome {
        outcome: "recorded",
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures() {
        let now = Utc::now();
        let body = br#"{"type":"post_call_transcription"}"#;
        let tol = Duration::from_secs(1800);
        let good = sign("whsec", now.timestamp(), body);
        assert!(verify_signature("whsec", Some(&good), body, now, tol).is_ok());
        assert!(verify_signature("other", Some(&good), body, now, tol).is_err());
        assert!(verify_signature("whsec", Some(&good), b"{}", now, tol).is_err());
        assert!(verify_signature("whsec", None, body, now, tol).is_err());
        let old = sign("whsec", now.timestamp() - 1801, body);
        assert!(verify_signature("whsec", Some(&old), body, now, tol).is_err());
        assert!(verify_signature("whsec", Some("t=1,v0=zz"), body, now, tol).is_err());
    }

    #[test]
    fn e164() {
        assert!(valid_e164("+919812345678"));
        assert!(!valid_e164("919812345678"));
        assert!(!valid_e164("+0123456789"));
        assert!(!valid_e164("+91 98123"));
        assert!(!valid_e164("+1234567890123456"));
    }
}
