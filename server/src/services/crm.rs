//! CRM for the sales team: leads (create, assign, status, notes), click-to-call through
//! Exotel (a `tel:` link when Exotel is not configured), SMS, and the call log that
//! Exotel's status callbacks update.
//!
//! Visibility: a sales user sees the leads assigned to them; admins see every lead.
//! Anyone else's lead is a 404, so lead ids cannot be probed.
//!
//! Exotel contracts followed (https://developer.exotel.com/docs/voice-v1/api-reference/connect-two-numbers):
//! `POST https://<api_key>:<api_token>@<subdomain>/v1/Accounts/<sid>/Calls/connect`,
//! form fields `From` (the agent, dialled first), `To` (the lead), `CallerId` (the
//! ExoPhone), `CallType=trans`, `StatusCallback`, `StatusCallbackEvents[0]=terminal`,
//! `StatusCallbackContentType=application/json`, `CustomField` (passed back to the
//! callback); the answer is `{"Call": {"Sid", "Status", ...}}`. SMS:
//! `POST .../v1/Accounts/<sid>/Sms/send` with `From`, `To`, `Body` →
//! `{"SMSMessage": {"Sid", "Status", ...}}`. The callback carries `CallSid`,
//! `Status` (completed, failed, busy, no-answer), `RecordingUrl`, durations.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::integrations::IntegrationId;
use super::page::{Page, PageRequest};
use crate::auth::Role;
use crate::config::ExotelConfig;
use crate::error::{AppError, AppResult};
use crate::queues::JobError;
use crate::state::AppState;
use crate::validation::{optional_text, required_text};

pub const STATUSES: &[&str] = &["new", "contacted", "qualified", "converted", "lost"];

/// `+<country><number>`, 8 to 15 digits (E.164).
pub fn is_phone(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Lead {
    pub id: Uuid,
    pub name: String,
    /// E.164, e.g. `+919900000001`.
    pub phone: String,
    pub email: Option<String>,
    pub source: Option<String>,
    /// `new`, `contacted`, `qualified`, `converted` or `lost`.
    pub status: String,
    pub assigned_to: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct LeadNote {
    pub id: Uuid,
    pub lead_id: Uuid,
    pub author_id: Option<Uuid>,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct CallLog {
    pub id: Uuid,
    pub lead_id: Uuid,
    pub agent_id: Option<Uuid>,
    /// `exotel` (bridged by Exotel) or `tel` (a tel: link dialled by the agent's phone).
    pub channel: String,
    pub call_sid: Option<String>,
    /// Exotel's status (`in-progress`, `completed`, `failed`, `busy`, `no-answer`), or
    /// `dialled` for a tel: link.
    pub status: String,
    pub recording_url: Option<String>,
    pub duration_seconds: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeadDetail {
    pub lead: Lead,
    pub notes: Vec<LeadNote>,
    pub calls: Vec<CallLog>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewLead {
    /// 1..=200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// E.164: `+` and 8 to 15 digits.
    #[schema(pattern = r"^\+[1-9][0-9]{7,14}$")]
    pub phone: String,
    pub email: Option<String>,
    /// Where the lead came from (up to 100 characters).
    #[schema(max_length = 100)]
    pub source: Option<String>,
    /// A sales user to assign it to (admins only; sales users' leads are their own).
    pub assigned_to: Option<Uuid>,
}

const LEAD_COLUMNS: &str =
    "id, name, phone, email, source, status, assigned_to, created_by, created_at, updated_at";

async fn ensure_sales_user(db: &PgPool, user: Uuid) -> AppResult<()> {
    let role: Option<String> =
        sqlx::query_scalar("select role from users where id = $1 and is_active")
            .bind(user)
            .fetch_optional(db)
            .await?;
    match role.as_deref() {
        Some("sales" | "admin" | "superadmin") => Ok(()),
        Some(_) => Err(AppError::validation(
            "leads can only be assigned to sales users",
        )),
        None => Err(AppError::validation(format!("no active user {user}"))),
    }
}

pub async fn create(db: &PgPool, caller: Uuid, role: Role, input: NewLead) -> AppResult<Lead> {
    let name = required_text("name", &input.name, 200)?;
    let phone = input.phone.trim().to_string();
    if !is_phone(&phone) {
        return Err(AppError::validation(
            "phone must be in E.164 form, like +919900000001",
        ));
    }
    let email = match input
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        Some(e) if !crate::validation::is_email(e) => {
            return Err(AppError::validation("email is not an email address"));
        }
        other => other.map(str::to_string),
    };
    let source = match input.source.as_deref() {
        Some(s) => Some(optional_text("source", s, 100)?).filter(|s| !s.is_empty()),
        None => None,
    };
    let assigned_to = if role.is_admin() {
        input.assigned_to
    } else {
        match input.assigned_to {
            Some(other) if other != caller => {
                return Err(AppError::forbidden(
                    "only admins create leads for someone else",
                ));
            }
            _ => Some(caller),
        }
    };
    if let Some(assignee) = assigned_to {
        ensure_sales_user(db, assignee).await?;
    }
    Ok(sqlx::query_as::<_, Lead>(sqlx::AssertSqlSafe(format!(
        "insert into leads (id, name, phone, email, source, assigned_to, created_by) \
         values ($1, $2, $3, $4, $5, $6, $7) returning {LEAD_COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(name)
    .bind(phone)
    .bind(email)
    .bind(source)
    .bind(assigned_to)
    .bind(caller)
    .fetch_one(db)
    .await?)
}

/// A lead the caller may see (assigned to them, or any for admins), else 404.
pub async fn visible(db: &PgPool, caller: Uuid, role: Role, id: Uuid) -> AppResult<Lead> {
    sqlx::query_as::<_, Lead>(sqlx::AssertSqlSafe(format!(
        "select {LEAD_COLUMNS} from leads where id = $1 and ($3 or assigned_to = $2)"
    )))
    .bind(id)
    .bind(caller)
    .bind(role.is_admin())
    .fetch_optional(db)
    .await?
    .ok_or_else(|| AppError::not_found(format!("lead {id} not found")))
}

pub async fn list(
    db: &PgPool,
    caller: Uuid,
    role: Role,
    status: Option<&str>,
    page: PageRequest,
) -> AppResult<Page<Lead>> {
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(AppError::validation(format!(
            "status must be one of {}",
            STATUSES.join(", ")
        )));
    }
    let filter = "($1 or assigned_to = $2) and ($3::text is null or status = $3)";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from leads where {filter}"
    )))
    .bind(role.is_admin())
    .bind(caller)
    .bind(status)
    .fetch_one(db)
    .await?;
    let items = sqlx::query_as::<_, Lead>(sqlx::AssertSqlSafe(format!(
        "select {LEAD_COLUMNS} from leads where {filter} order by created_at desc, id limit $4 offset $5"
    )))
    .bind(role.is_admin())
    .bind(caller)
    .bind(status)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(Page::new(items, page, total))
}

pub async fn detail(db: &PgPool, caller: Uuid, role: Role, id: Uuid) -> AppResult<LeadDetail> {
    let lead = visible(db, caller, role, id).await?;
    let notes = sqlx::query_as::<_, LeadNote>(
        "select id, lead_id, author_id, body, created_at from lead_notes where lead_id = $1 order by created_at, id",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    let calls = sqlx::query_as::<_, CallLog>(
        "select id, lead_id, agent_id, channel, call_sid, status, recording_url, duration_seconds, created_at, updated_at \
         from call_logs where lead_id = $1 order by created_at desc, id",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    Ok(LeadDetail { lead, notes, calls })
}

pub async fn assign(
    db: &PgPool,
    caller: Uuid,
    role: Role,
    id: Uuid,
    assignee: Uuid,
) -> AppResult<Lead> {
    // Sales users hand over their own leads; admins reassign any.
    visible(db, caller, role, id).await?;
    ensure_sales_user(db, assignee).await?;
    Ok(sqlx::query_as::<_, Lead>(sqlx::AssertSqlSafe(format!(
        "update leads set assigned_to = $2 where id = $1 returning {LEAD_COLUMNS}"
    )))
    .bind(id)
    .bind(assignee)
    .fetch_one(db)
    .await?)
}

pub async fn set_status(
    db: &PgPool,
    caller: Uuid,
    role: Role,
    id: Uuid,
    status: &str,
) -> AppResult<Lead> {
    if !STATUSES.contains(&status) {
        return Err(AppError::validation(format!(
            "status must be one of {}",
            STATUSES.join(", ")
        )));
    }
    visible(db, caller, role, id).await?;
    Ok(sqlx::query_as::<_, Lead>(sqlx::AssertSqlSafe(format!(
        "update leads set status = $2 where id = $1 returning {LEAD_COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .fetch_one(db)
    .await?)
}

pub async fn add_note(
    db: &PgPool,
    caller: Uuid,
    role: Role,
    id: Uuid,
    body: &str,
) -> AppResult<LeadNote> {
    let body = required_text("body", body, 4000)?;
    visible(db, caller, role, id).await?;
    Ok(sqlx::query_as::<_, LeadNote>(
        "insert into lead_notes (id, lead_id, author_id, body) values ($1, $2, $3, $4) \
         returning id, lead_id, author_id, body, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(id)
    .bind(caller)
    .bind(body)
    .fetch_one(db)
    .await?)
}

/// How a call was placed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallStarted {
    /// `exotel`: Exotel is ringing the agent's phone and will bridge the lead;
    /// `tel`: Exotel is not configured, open `telUrl` on the agent's phone.
    pub mode: String,
    pub call: CallLog,
    /// `tel:<lead phone>` in `tel` mode.
    pub tel_url: Option<String>,
}

fn exotel(state: &AppState) -> Option<&ExotelConfig> {
    state
        .integrations
        .is_configured(IntegrationId::Exotel)
        .then_some(state.config.commerce.exotel.as_ref())
        .flatten()
}

/// `/api/exotel/status?token=…` on `BACKEND_PUBLIC_URL`, when both are set.
fn status_callback(state: &AppState) -> Option<String> {
    let base = state.config.commerce.public_url.as_ref()?;
    let token = state.config.commerce.webhooks.exotel_token.as_ref()?;
    let mut url = reqwest::Url::parse(&format!("{base}/api/exotel/status")).ok()?;
    url.query_pairs_mut().append_pair("token", token.expose());
    Some(url.into())
}

async fn agent_phone(db: &PgPool, agent: Uuid) -> AppResult<String> {
    let phone: Option<String> = sqlx::query_scalar("select phone from users where id = $1")
        .bind(agent)
        .fetch_optional(db)
        .await?
        .flatten();
    phone.ok_or_else(|| {
        AppError::validation(
            "set your phone number (PUT /api/profile/phone) so Exotel can ring you first",
        )
    })
}

/// Click-to-call: Exotel rings the agent, then bridges the lead; without Exotel the
/// agent gets a `tel:` link. Either way the call is logged.
pub async fn call(
    state: &AppState,
    agent: Uuid,
    role: Role,
    lead_id: Uuid,
) -> AppResult<CallStarted> {
    let lead = visible(&state.db, agent, role, lead_id).await?;
    let id = Uuid::new_v4();
    let Some(exotel) = exotel(state) else {
        let call = insert_call(&state.db, id, lead_id, agent, "tel", None, "dialled").await?;
        return Ok(CallStarted {
            mode: "tel".into(),
            call,
            tel_url: Some(format!("tel:{}", lead.phone)),
        });
    };
    let from = agent_phone(&state.db, agent).await?;
    let client = state.integrations.http(IntegrationId::Exotel)?;
    let url = format!(
        "{}/v1/Accounts/{}/Calls/connect",
        exotel.base_url, exotel.account_sid
    );
    let mut form = vec![
        ("From", from),
        ("To", lead.phone.clone()),
        ("CallerId", exotel.caller_id.clone()),
        ("CallType", "trans".to_string()),
        ("CustomField", id.to_string()),
    ];
    match status_callback(state) {
        Some(callback) => {
            form.push(("StatusCallback", callback));
            form.push(("StatusCallbackEvents[0]", "terminal".into()));
            form.push(("StatusCallbackContentType", "application/json".into()));
        }
        None => tracing::warn!(
            "BACKEND_PUBLIC_URL or EXOTEL_WEBHOOK_TOKEN unset: Exotel will not report call outcomes"
        ),
    }
    let body = serde_urlencoded::to_string(&form)
        .map_err(|e| AppError::internal(anyhow::anyhow!("encoding the Exotel form: {e}")))?;
    // The API key and token go as HTTP basic auth, which is what the
    // `https://key:token@host` form in Exotel's docs means; the URL stays secret-free.
    let res = client
        .send(|http| {
            http.post(&url)
                .basic_auth(&exotel.api_key, Some(exotel.api_token.expose()))
                .header(reqwest::header::ACCEPT, "application/json")
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
        })
        .await?;
    let answer: Value = client.json(res).await?;
    let sid = answer["Call"]["Sid"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AppError::BadGateway("exotel answered without a call Sid".into()))?;
    let status = answer["Call"]["Status"].as_str().unwrap_or("queued");
    let call = insert_call(&state.db, id, lead_id, agent, "exotel", Some(sid), status).await?;
    tracing::info!(call = %id, lead = %lead_id, "exotel call started");
    Ok(CallStarted {
        mode: "exotel".into(),
        call,
        tel_url: None,
    })
}

async fn insert_call(
    db: &PgPool,
    id: Uuid,
    lead: Uuid,
    agent: Uuid,
    channel: &str,
    sid: Option<&str>,
    status: &str,
) -> AppResult<CallLog> {
    Ok(sqlx::query_as::<_, CallLog>(
        "insert into call_logs (id, lead_id, agent_id, channel, call_sid, status) values ($1, $2, $3, $4, $5, $6) \
         returning id, lead_id, agent_id, channel, call_sid, status, recording_url, duration_seconds, created_at, updated_at",
    )
    .bind(id)
    .bind(lead)
    .bind(agent)
    .bind(channel)
    .bind(sid)
    .bind(status)
    .fetch_one(db)
    .await?)
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct SmsLog {
    pub id: Uuid,
    pub lead_id: Uuid,
    pub sender_id: Option<Uuid>,
    pub sid: Option<String>,
    pub status: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// Sends an SMS to the lead from the ExoPhone.
pub async fn send_sms(
    state: &AppState,
    sender: Uuid,
    role: Role,
    lead_id: Uuid,
    body: &str,
) -> AppResult<SmsLog> {
    let body = required_text("body", body, 1000)?;
    state.integrations.ensure(IntegrationId::Exotel)?;
    let lead = visible(&state.db, sender, role, lead_id).await?;
    let Some(exotel) = exotel(state) else {
        return Err(AppError::internal(anyhow::anyhow!(
            "exotel configured without settings"
        )));
    };
    let client = state.integrations.http(IntegrationId::Exotel)?;
    let url = format!(
        "{}/v1/Accounts/{}/Sms/send",
        exotel.base_url, exotel.account_sid
    );
    let form = serde_urlencoded::to_string([
        ("From", exotel.caller_id.as_str()),
        ("To", lead.phone.as_str()),
        ("Body", body.as_str()),
    ])
    .map_err(|e| AppError::internal(anyhow::anyhow!("encoding the Exotel form: {e}")))?;
    let res = client
        .send(|http| {
            http.post(&url)
                .basic_auth(&exotel.api_key, Some(exotel.api_token.expose()))
                .header(reqwest::header::ACCEPT, "application/json")
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form)
        })
        .await?;
    let answer: Value = client.json(res).await?;
    let sid = answer["SMSMessage"]["Sid"].as_str();
    let status = answer["SMSMessage"]["Status"].as_str().unwrap_or("queued");
    Ok(sqlx::query_as::<_, SmsLog>(
        "insert into sms_logs (id, lead_id, sender_id, sid, status, body) values ($1, $2, $3, $4, $5, $6) \
         returning id, lead_id, sender_id, sid, status, body, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(lead_id)
    .bind(sender)
    .bind(sid)
    .bind(status)
    .bind(body)
    .fetch_one(&state.db)
    .await?)
}

/// Exotel's status callback, as stored in the inbox (normalised to a JSON object).
pub async fn apply_call_status(conn: &mut PgConnection, payload: &Value) -> Result<(), JobError> {
    let text = |k: &str| {
        payload[k]
            .as_str()
            .map(str::to_string)
            .or_else(|| payload[k].as_i64().map(|n| n.to_string()))
            .filter(|s| !s.is_empty())
    };
    let Some(sid) = text("CallSid") else {
        return Err(JobError::permanent(
            "exotel status callback without CallSid",
        ));
    };
    let status = text("Status").unwrap_or_else(|| "unknown".into());
    let duration = text("ConversationDuration")
        .or_else(|| text("Duration"))
        .or_else(|| text("DialCallDuration"))
        .and_then(|d| d.parse::<i32>().ok());
    let done = sqlx::query(
        "update call_logs set status = $2, recording_url = coalesce($3, recording_url), \
         duration_seconds = coalesce($4, duration_seconds) where call_sid = $1",
    )
    .bind(&sid)
    .bind(&status)
    .bind(text("RecordingUrl"))
    .bind(duration)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        tracing::info!(call_sid = %sid, "exotel status for an unknown call ignored");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_phone;

    #[test]
    fn phones_are_e164() {
        assert!(is_phone("+919900000001"));
        assert!(!is_phone("9900000001"));
        assert!(!is_phone("+0123456789"));
        assert!(!is_phone("+91 99000"));
        assert!(!is_phone("+1234567890123456"));
    }
}
