//! WhatsApp Cloud API: template messages (booking confirmations, reminders) sent from
//! the queue, and the webhook's inbound messages and delivery statuses.
//!
//! Contracts followed (Meta's Cloud API reference,
//! https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages and
//! .../guides/set-up-webhooks):
//! - send: `POST https://graph.facebook.com/<WHATSAPP_GRAPH_API_VERSION>/<phone-number-id>/messages`
//!   with `Authorization: Bearer <token>` and `{"messaging_product": "whatsapp", "to",
//!   "type": "template", "template": {"name", "language": {"code"}, "components":
//!   [{"type": "body", "parameters": [{"type": "text", "text"}]}]}}` →
//!   `{"messages": [{"id": "wamid…"}]}`;
//! - webhook: `{"object": "whatsapp_business_account", "entry": [{"changes": [{"field":
//!   "messages", "value": {"messages": [{"from", "id", "timestamp", "type", "text":
//!   {"body"}}], "statuses": [{"id", "status", "timestamp", "recipient_id"}]}}]}]}`.
//!
//! A row is written first (`queued`) and the `sendWhatsApp` job sends it, so a send
//! survives a restart; statuses only move forward (sent → delivered → read), since
//! Meta does not guarantee their order.

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::integrations::IntegrationId;
use crate::error::{AppError, AppResult};
use crate::queues::{JobError, QueueName, Queues};
use crate::state::AppState;

pub const SEND_JOB: &str = "sendWhatsApp";

/// Which template to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    BookingConfirmation,
    Reminder,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Uuid,
    /// `outbound` or `inbound`.
    pub direction: String,
    pub wamid: Option<String>,
    pub phone: String,
    pub template: Option<String>,
    pub body: Option<String>,
    /// `queued`, `sent`, `delivered`, `read`, `failed` (outbound) or `received`.
    pub status: String,
    pub error: Option<String>,
    pub user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, direction, wamid, phone, template, body, status, error, user_id, created_at, updated_at";

/// Queues a template message to `user`'s phone; `None` when WhatsApp is off or the
/// user has no phone (notifications are best-effort, never a reason to fail a booking).
pub async fn queue_template(
    state: &AppState,
    user: Uuid,
    kind: TemplateKind,
    parameters: Vec<String>,
) -> AppResult<Option<Message>> {
    let Some(config) = state
        .integrations
        .is_configured(IntegrationId::WhatsApp)
        .then_some(state.config.commerce.whatsapp.as_ref())
        .flatten()
    else {
        return Ok(None);
    };
    let phone: Option<String> = sqlx::query_scalar("select phone from users where id = $1")
        .bind(user)
        .fetch_optional(&state.db)
        .await?
        .flatten();
    let Some(phone) = phone else {
        return Ok(None);
    };
    let template = match kind {
        TemplateKind::BookingConfirmation => &config.booking_template,
        TemplateKind::Reminder => &config.reminder_template,
    };
    let message = sqlx::query_as::<_, Message>(sqlx::AssertSqlSafe(format!(
        "insert into whatsapp_messages (id, direction, phone, template, body, status, user_id) \
         values ($1, 'outbound', $2, $3, $4, 'queued', $5) returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(&phone)
    .bind(template)
    .bind(serde_json::to_string(&parameters).unwrap_or_default())
    .bind(user)
    .fetch_one(&state.db)
    .await?;
    if enqueue(&state.queues, message.id).await.is_ok() {
        sqlx::query("update whatsapp_messages set enqueued_at = now() where id = $1")
            .bind(message.id)
            .execute(&state.db)
            .await?;
    }
    Ok(Some(message))
}

async fn enqueue(queues: &Queues, id: Uuid) -> Result<(), crate::queues::QueueError> {
    queues
        .add(
            QueueName::Database,
            SEND_JOB,
            json!({"messageId": id}),
            Some(format!("whatsapp-{id}")),
        )
        .await
        .map(|_| ())
}

/// Queued rows whose job was never added (Redis was down): added now.
pub async fn relay_once(
    db: &PgPool,
    queues: &Queues,
    redrive_after: std::time::Duration,
) -> anyhow::Result<usize> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "update whatsapp_messages set enqueued_at = now() where id in ( \
           select id from whatsapp_messages where status = 'queued' \
             and (enqueued_at is null or enqueued_at < now() - make_interval(secs => $1)) \
           order by created_at limit 100 for update skip locked) returning id",
    )
    .bind(redrive_after.as_secs_f64())
    .fetch_all(db)
    .await?;
    for id in &ids {
        enqueue(queues, *id).await?;
    }
    Ok(ids.len())
}

/// The `sendWhatsApp` job.
pub async fn send(state: &AppState, id: Uuid, last_attempt: bool) -> Result<Value, JobError> {
    let row: Option<(String, String, Option<String>, String)> = sqlx::query_as(
        "select phone, coalesce(template, ''), body, status from whatsapp_messages where id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    let Some((phone, template, body, status)) = row else {
        return Err(JobError::permanent(format!(
            "whatsapp message {id} does not exist"
        )));
    };
    if status != "queued" {
        return Ok(json!({"messageId": id, "skipped": status}));
    }
    let outcome = deliver(state, &phone, &template, body.as_deref()).await;
    match outcome {
        Ok(wamid) => {
            sqlx::query(
                "update whatsapp_messages set status = 'sent', wamid = $2, status_at = now(), \
                 attempts = attempts + 1, error = null where id = $1 and status = 'queued'",
            )
            .bind(id)
            .bind(&wamid)
            .execute(&state.db)
            .await?;
            Ok(json!({"messageId": id, "wamid": wamid}))
        }
        Err(err) => {
            let give_up = last_attempt || err.is_permanent();
            sqlx::query(
                "update whatsapp_messages set attempts = attempts + 1, error = $2, \
                 status = case when $3 then 'failed' else status end where id = $1",
            )
            .bind(id)
            .bind(err.to_string())
            .bind(give_up)
            .execute(&state.db)
            .await?;
            Err(err)
        }
    }
}

async fn deliver(
    state: &AppState,
    phone: &str,
    template: &str,
    body: Option<&str>,
) -> Result<String, JobError> {
    let client = state
        .integrations
        .http(IntegrationId::WhatsApp)
        .map_err(|e| JobError::permanent(e.to_string()))?;
    let Some(config) = state.config.commerce.whatsapp.as_ref() else {
        return Err(JobError::permanent("whatsapp is not configured"));
    };
    let parameters: Vec<String> = body
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    let mut message = json!({
        "messaging_product": "whatsapp",
        // The Cloud API takes the number without the leading '+'.
        "to": phone.trim_start_matches('+'),
        "type": "template",
        "template": {"name": template, "language": {"code": config.template_language}},
    });
    if !parameters.is_empty() {
        message["template"]["components"] = json!([{
            "type": "body",
            "parameters": parameters.iter().map(|p| json!({"type": "text", "text": p})).collect::<Vec<_>>(),
        }]);
    }
    let url = format!(
        "{}/{}/{}/messages",
        config.base_url, config.graph_api_version, config.phone_number_id
    );
    let res = client
        .send(|http| {
            http.post(&url)
                .bearer_auth(config.access_token.expose())
                .json(&message)
        })
        .await
        .map_err(|e| {
            if e.is_transient() {
                JobError::retry(e.to_string())
            } else {
                JobError::permanent(e.to_string())
            }
        })?;
    let answer: Value = client
        .json(res)
        .await
        .map_err(|e| JobError::retry(e.to_string()))?;
    answer["messages"][0]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| JobError::permanent("the Cloud API answered without a message id"))
}

fn status_rank(status: &str) -> Option<u8> {
    match status {
        "queued" => Some(0),
        "sent" => Some(1),
        "delivered" => Some(2),
        "read" => Some(3),
        "failed" => Some(4),
        _ => None,
    }
}

/// Whether `new` replaces `current`: forward only; `failed` wins over anything but
/// `read` (a read message was delivered, whatever a late failure says).
pub fn status_advances(current: &str, new: &str) -> bool {
    match (status_rank(current), status_rank(new)) {
        (Some(c), Some(4)) => c < 3,
        (Some(4), Some(_)) => false,
        (Some(c), Some(n)) => n > c,
        _ => false,
    }
}

fn timestamp(v: &Value) -> Option<DateTime<Utc>> {
    let secs = v
        .as_str()
        .and_then(|s| s.parse::<i64>().ok())
        .or_else(|| v.as_i64())?;
    Utc.timestamp_opt(secs, 0).single()
}

/// Stores a verified webhook's inbound messages and applies its statuses.
pub async fn apply_webhook(conn: &mut PgConnection, payload: &Value) -> Result<(), JobError> {
    for entry in payload["entry"].as_array().into_iter().flatten() {
        for change in entry["changes"].as_array().into_iter().flatten() {
            let value = &change["value"];
            for m in value["messages"].as_array().into_iter().flatten() {
                let (Some(wamid), Some(from)) = (m["id"].as_str(), m["from"].as_str()) else {
                    continue;
                };
                let body = m["text"]["body"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| m["type"].as_str().map(|t| format!("[{t}]")));
                let phone = format!("+{}", from.trim_start_matches('+'));
                sqlx::query(
                    "insert into whatsapp_messages (id, direction, wamid, phone, body, status, status_at, user_id) \
                     values ($1, 'inbound', $2, $3, $4, 'received', $5, (select id from users where phone = $3 limit 1)) \
                     on conflict (wamid) do nothing",
                )
                .bind(Uuid::new_v4())
                .bind(wamid)
                .bind(&phone)
                .bind(body)
                .bind(timestamp(&m["timestamp"]))
                .execute(&mut *conn)
                .await?;
            }
            for s in value["statuses"].as_array().into_iter().flatten() {
                let (Some(wamid), Some(status)) = (s["id"].as_str(), s["status"].as_str()) else {
                    continue;
                };
                let current: Option<String> = sqlx::query_scalar(
                    "select status from whatsapp_messages where wamid = $1 for update",
                )
                .bind(wamid)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(current) = current else { continue };
                if !status_advances(&current, status) {
                    continue;
                }
                let error = s["errors"][0]["title"]
                    .as_str()
                    .or(s["errors"][0]["message"].as_str());
                sqlx::query(
                    "update whatsapp_messages set status = $2, status_at = coalesce($3, now()), \
                     error = coalesce($4, error) where wamid = $1",
                )
                .bind(wamid)
                .bind(status)
                .bind(timestamp(&s["timestamp"]))
                .bind(error)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}

/// Messages to or from a user (admins).
pub async fn list_for_user(db: &PgPool, user: Uuid) -> AppResult<Vec<Message>> {
    Ok(sqlx::query_as::<_, Message>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from whatsapp_messages where user_id = $1 order by created_at desc limit 200"
    )))
    .bind(user)
    .fetch_all(db)
    .await?)
}

/// A reminder for a scheduled meeting, to its student.
pub async fn remind(state: &AppState, meeting: Uuid) -> AppResult<Option<Message>> {
    state.integrations.ensure(IntegrationId::WhatsApp)?;
    let row: Option<(Uuid, DateTime<Utc>, String)> = sqlx::query_as(
        "select m.student_id, m.starts_at, u.name from meetings m join users u on u.id = m.mentor_id \
         where m.id = $1 and m.status = 'scheduled'",
    )
    .bind(meeting)
    .fetch_optional(&state.db)
    .await?;
    let (student, starts_at, mentor) =
        row.ok_or_else(|| AppError::not_found(format!("scheduled meeting {meeting} not found")))?;
    let message = queue_template(
        state,
        student,
        TemplateKind::Reminder,
        vec![mentor, starts_at.format("%Y-%m-%d %H:%M UTC").to_string()],
    )
    .await?;
    if message.is_none() {
        return Err(AppError::validation("the student has no phone number"));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::status_advances;

    #[test]
    fn statuses_only_move_forward() {
        assert!(status_advances("queued", "sent"));
        assert!(status_advances("sent", "read"));
        assert!(!status_advances("read", "delivered"));
        assert!(!status_advances("delivered", "sent"));
        assert!(status_advances("sent", "failed"));
        assert!(!status_advances("read", "failed"));
        assert!(!status_advances("failed", "delivered"));
        assert!(!status_advances("sent", "bogus"));
    }
}
