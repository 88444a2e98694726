//! Leegality eSign of the PAP agreement: a signing request made from the configured
//! workflow (its template), its state, completion from the webhook, and the signed PDF
//! kept in the documents bucket.
//!
//! Contracts followed (Leegality Document Execution API, https://knowledge.leegality.com):
//! - create: `POST <LEEGALITY_BASE_URL>/v3.0/sign/request` with `X-Auth-Token`, body
//!   `{profileId (the published workflow), file: {name}, invitees: [{name, email,
//!   phone}], irn}` → `{status: 1, messages: [], data: {documentId, irn, invitees:
//!   [{signUrl, ...}]}}` (…/document-execution/api/create-an-e-signing-request; the
//!   workflow carries the template, so no PDF is uploaded);
//! - webhook: a JSON POST per signing action with the event type, invitee details
//!   and document status, and `mac` = HMAC-SHA1(documentId, private salt)
//!   (…/api/webhooks/webhook-configuration, …/api/webhooks/verify-webhook-request).
//!   The payload carries no document; the signed PDF is fetched from
//! - `GET <LEEGALITY_BASE_URL>/v3.3/document/fetchDocument?documentId=…&documentDownloadType=DOCUMENT`
//!   (…/document-execution/api/fetch-document), only possible once completed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::integrations::IntegrationId;
use super::storage::Bucket;
use crate::error::{AppError, AppResult};
use crate::queues::JobError;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct EsignRequest {
    pub id: Uuid,
    pub user_id: Uuid,
    /// Leegality's document id.
    pub document_id: Option<String>,
    /// `requested`, `sent`, `completed`, `rejected` or `failed`.
    pub status: String,
    /// Where the student signs (while `sent`).
    pub sign_url: Option<String>,
    /// The signed agreement is stored (download through `/api/esign/pap/document`).
    pub has_signed_document: bool,
    pub last_event: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

const SELECT: &str = "select id, user_id, document_id, status, sign_url, \
    signed_key is not null as has_signed_document, last_event, created_at, completed_at from esign_requests";

/// Starts the PAP agreement signing for the caller (one open request at a time).
pub async fn request_pap(state: &AppState, user: Uuid) -> AppResult<EsignRequest> {
    let client = state.integrations.http(IntegrationId::Leegality)?;
    let Some(config) = state.config.commerce.leegality.as_ref() else {
        return Err(AppError::internal(anyhow::anyhow!(
            "leegality configured without settings"
        )));
    };
    let open: Option<Uuid> = sqlx::query_scalar(
        "select id from esign_requests where user_id = $1 and status in ('requested', 'sent', 'completed')",
    )
    .bind(user)
    .fetch_optional(&state.db)
    .await?;
    if open.is_some() {
        return Err(AppError::conflict(
            "you already have a PAP agreement signed or in progress",
        ));
    }
    let (name, email, phone): (String, String, Option<String>) =
        sqlx::query_as("select name, email, phone from users where id = $1")
            .bind(user)
            .fetch_one(&state.db)
            .await?;
    let id = Uuid::new_v4();
    sqlx::query("insert into esign_requests (id, user_id) values ($1, $2)")
        .bind(id)
        .bind(user)
        .execute(&state.db)
        .await?;
    let mut invitee = json!({"name": name, "email": email});
    if let Some(phone) = phone {
        invitee["phone"] = json!(phone.trim_start_matches('+'));
    }
    let url = format!("{}/v3.0/sign/request", config.base_url);
    let body = json!({
        "profileId": config.pap_profile_id,
        "file": {"name": config.pap_document_name},
        "invitees": [invitee],
        // Our id travels as the internal reference number.
        "irn": id.to_string(),
    });
    let answer: Result<Value, AppError> = async {
        let res = client
            .send(|http| {
                http.post(&url)
                    .header("X-Auth-Token", config.auth_token.expose())
                    .json(&body)
            })
            .await?;
        Ok(client.json(res).await?)
    }
    .await;
    let answer = match answer {
        Ok(a) if a["status"].as_i64() == Some(1) => a,
        other => {
            let detail = match &other {
                Ok(a) => a["messages"].to_string().chars().take(300).collect(),
                Err(e) => e.to_string(),
            };
            sqlx::query("update esign_requests set status = 'failed', error = $2 where id = $1")
                .bind(id)
                .bind(&detail)
                .execute(&state.db)
                .await?;
            return Err(match other {
                Err(e) => e,
                Ok(_) => AppError::BadGateway("leegality refused the signing request".into()),
            });
        }
    };
    let document_id = answer["data"]["documentId"].as_str();
    let sign_url = answer["data"]["invitees"][0]["signUrl"].as_str();
    sqlx::query(
        "update esign_requests set status = 'sent', document_id = $2, sign_url = $3 where id = $1",
    )
    .bind(id)
    .bind(document_id)
    .bind(sign_url)
    .execute(&state.db)
    .await?;
    latest(state, user).await
}

pub async fn latest(state: &AppState, user: Uuid) -> AppResult<EsignRequest> {
    sqlx::query_as::<_, EsignRequest>(sqlx::AssertSqlSafe(format!(
        "{SELECT} where user_id = $1 order by created_at desc limit 1"
    )))
    .bind(user)
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| AppError::not_found("no PAP agreement signing request yet"))
}

/// A signed GET of the caller's signed agreement.
pub async fn signed_document_url(
    state: &AppState,
    user: Uuid,
) -> AppResult<super::storage::PresignedUrl> {
    let key: Option<String> = sqlx::query_scalar(
        "select signed_key from esign_requests where user_id = $1 and signed_key is not null \
         order by completed_at desc limit 1",
    )
    .bind(user)
    .fetch_optional(&state.db)
    .await?;
    let key = key.ok_or_else(|| AppError::not_found("no signed PAP agreement yet"))?;
    state
        .storage()
        .await?
        .download_url(Bucket::Documents, &key)
        .await
}

/// What a Leegality webhook means for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    Rejected,
    Failed,
    Progress,
}

fn outcome(payload: &Value) -> Outcome {
    let field = |k: &str| payload[k].as_str().unwrap_or("").to_ascii_uppercase();
    let status = field("documentStatus");
    let status = if status.is_empty() {
        field("status")
    } else {
        status
    };
    let kind = field("webhookType");
    if status == "COMPLETED" || kind == "SUCCESS" || kind == "COMPLETED" {
        Outcome::Completed
    } else if status == "REJECTED" || kind.starts_with("REJECT") {
        Outcome::Rejected
    } else if kind == "FAILURE" || kind == "ERROR" || status == "EXPIRED" {
        Outcome::Failed
    } else {
        Outcome::Progress
    }
}

/// Before the inbox transaction: for a completed document, fetches the signed PDF
/// and stores it in the documents bucket (an idempotent PUT on a fixed key). Returns
/// the key.
pub async fn prepare_webhook(
    state: &AppState,
    payload: &Value,
) -> Result<Option<String>, JobError> {
    if outcome(payload) != Outcome::Completed {
        return Ok(None);
    }
    let Some(document_id) = payload["documentId"].as_str() else {
        return Ok(None);
    };
    let user: Option<Uuid> =
        sqlx::query_scalar("select user_id from esign_requests where document_id = $1")
            .bind(document_id)
            .fetch_optional(&state.db)
            .await?;
    let Some(user) = user else {
        return Ok(None);
    };
    let client = state
        .integrations
        .http(IntegrationId::Leegality)
        .map_err(|e| JobError::retry(e.to_string()))?;
    let Some(config) = state.config.commerce.leegality.as_ref() else {
        return Err(JobError::retry("leegality is not configured"));
    };
    let mut url = reqwest::Url::parse(&format!("{}/v3.3/document/fetchDocument", config.base_url))
        .map_err(|e| JobError::permanent(format!("LEEGALITY_BASE_URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("documentId", document_id)
        .append_pair("documentDownloadType", "DOCUMENT");
    // A GET: the policy retries it on transient failures.
    let res = client
        .send(|http| {
            http.get(url.clone())
                .header("X-Auth-Token", config.auth_token.expose())
        })
        .await
        .map_err(|e| JobError::retry(e.to_string()))?;
    let bytes = res
        .bytes()
        .await
        .map_err(|e| JobError::retry(format!("reading the signed document: {e}")))?;
    if !bytes.starts_with(b"%PDF-") {
        return Err(JobError::retry("leegality's signed document is not a PDF"));
    }
    let key = format!(
        "agreement/{user}/{}.pdf",
        document_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(100)
            .collect::<String>()
    );
    state
        .storage()
        .await
        .map_err(|e| JobError::retry(e.to_string()))?
        .put(Bucket::Documents, &key, "application/pdf", bytes.to_vec())
        .await
        .map_err(|e| JobError::retry(e.to_string()))?;
    Ok(Some(key))
}

/// Applies a verified Leegality webhook inside the inbox transaction.
pub async fn apply_webhook(
    conn: &mut PgConnection,
    payload: &Value,
    signed_key: Option<String>,
) -> Result<(), JobError> {
    let Some(document_id) = payload["documentId"].as_str() else {
        return Err(JobError::permanent("leegality webhook without documentId"));
    };
    let event = payload["webhookType"]
        .as_str()
        .or(payload["documentStatus"].as_str())
        .unwrap_or("update")
        .chars()
        .take(100)
        .collect::<String>();
    let status = match outcome(payload) {
        Outcome::Completed => Some("completed"),
        Outcome::Rejected => Some("rejected"),
        Outcome::Failed => Some("failed"),
        Outcome::Progress => None,
    };
    // A completed request stays completed whatever arrives after it.
    let done = sqlx::query(
        "update esign_requests set last_event = $2, \
           status = case when status = 'completed' then status else coalesce($3, status) end, \
           signed_key = coalesce($4, signed_key), \
           completed_at = case when $3 = 'completed' then coalesce(completed_at, now()) else completed_at end \
         where document_id = $1",
    )
    .bind(document_id)
    .bind(event)
    .bind(status)
    .bind(signed_key)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        tracing::info!(document = %document_id, "leegality webhook for an unknown document ignored");
    }
    Ok(())
}
