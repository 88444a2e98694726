//! Resume analysis: a student submits resume text or a URL, a resumeAnalysisQueue
//! job asks the OpenAI-compatible gateway (LiteLLM) for a structured JSON review,
//! and the result lands in `resume_analyses`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::{Config, LlmConfig};
use crate::error::{AppError, AppResult};
use crate::queues::{JobError, QueueName};
use crate::services::integrations::{HttpClient, IntegrationId, OutboundError};
use crate::services::outbound;
use crate::state::AppState;

const MAX_TEXT_CHARS: usize = 60_000;
const MAX_FETCH_BYTES: usize = 2 * 1024 * 1024;

const SYSTEM_PROMPT: &str = "You are a career coach reviewing a student's resume for analytics \
and data roles. Reply with one JSON object only, no prose, with exactly these keys: \
\"summary\" (string, 2-3 sentences), \"score\" (integer 0-100), \"strengths\" (array of strings), \
\"weaknesses\" (array of strings), \"suggestions\" (array of strings), \"skills\" (array of strings).";

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    pub id: Uuid,
    #[serde(skip)]
    pub student_id: Uuid,
    /// `queued`, `processing`, `completed` or `failed`.
    pub status: String,
    pub resume_url: Option<String>,
    pub result: Option<Value>,
    /// Last failure reason (while retrying or after the final attempt).
    pub error: Option<String>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, student_id, status, resume_url, result, error, attempts, created_at, completed_at";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRequest {
    /// The resume as plain text.
    pub resume_text: Option<String>,
    /// Or a public http(s) URL to fetch it from (plain text or HTML).
    pub resume_url: Option<String>,
}

/// `AnalysisRequest` as documented: a non-blank `resumeText` or `resumeUrl` (what
/// [`request`] checks), replacing the derived schema, which cannot say "one of".
pub fn request_schema() -> serde_json::Value {
    let text = json!({"type": ["string", "null"], "maxLength": MAX_TEXT_CHARS,
        "description": "The resume as plain text."});
    let url = json!({"type": ["string", "null"], "pattern": URL_PATTERN,
        "description": "Or a public http(s) URL to fetch it from (plain text or HTML)."});
    let present = json!({"type": "string", "pattern": NON_BLANK});
    json!({
        "type": "object",
        "properties": {"resumeText": text, "resumeUrl": url},
        "anyOf": [
            {"required": ["resumeText"], "properties": {"resumeText": present}},
            {"required": ["resumeUrl"], "properties": {"resumeUrl": present}}
        ]
    })
}

/// Some character that is not whitespace (Rust's `char::is_whitespace`, spelled out).
const NON_BLANK: &str = r"^[^\u0000]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^\u0000]*$";
/// Blank, or `http(s)://` after leading whitespace.
const URL_PATTERN: &str = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:https?://[^\u0000]*)?$";

pub async fn request(
    state: &AppState,
    student_id: Uuid,
    req: AnalysisRequest,
) -> AppResult<Analysis> {
    state.integrations.ensure(IntegrationId::LiteLlm)?;
    // The length as sent (the documented maxLength), before trimming.
    if req
        .resume_text
        .as_deref()
        .is_some_and(|t| t.chars().count() > MAX_TEXT_CHARS)
    {
        return Err(AppError::validation(format!(
            "resumeText is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    let text = req
        .resume_text
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let url = req
        .resume_url
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    match (&text, &url) {
        (None, None) => return Err(AppError::validation("provide resumeText or resumeUrl")),
        (Some(t), _) if t.chars().count() > MAX_TEXT_CHARS => {
            return Err(AppError::validation(format!(
                "resumeText is longer than {MAX_TEXT_CHARS} characters"
            )));
        }
        (_, Some(u)) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            return Err(AppError::validation("resumeUrl must be an http(s) URL"));
        }
        _ => {}
    }
    let id = Uuid::new_v4();
    let analysis: Analysis = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into resume_analyses (id, student_id, resume_text, resume_url) \
         values ($1, $2, $3, $4) returning {COLUMNS}"
    )))
    .bind(id)
    .bind(student_id)
    .bind(&text)
    .bind(&url)
    .fetch_one(&state.db)
    .await?;
    if let Err(err) = state
        .queues
        .add(
            QueueName::ResumeAnalysis,
            "analyzeResume",
            json!({"analysisId": id}),
            Some(format!("resume-{id}")),
        )
        .await
    {
        sqlx::query("delete from resume_analyses where id = $1")
            .bind(id)
            .execute(&state.db)
            .await?;
        return Err(err.into());
    }
    Ok(analysis)
}

/// The analysis if `user_id` owns it.
pub async fn get_owned(db: &PgPool, id: Uuid, user_id: Uuid) -> AppResult<Analysis> {
    let analysis: Analysis = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from resume_analyses where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| AppError::not_found("resume analysis not found"))?;
    if analysis.student_id != user_id {
        return Err(AppError::forbidden(
            "this resume analysis belongs to another user",
        ));
    }
    Ok(analysis)
}

/// Worker side: runs one attempt. Already completed analyses are left alone, so a
/// re-delivered job never calls the gateway twice.
pub async fn analyze(state: &AppState, id: Uuid) -> Result<(), JobError> {
    let gateway = state
        .integrations
        .http(IntegrationId::LiteLlm)
        .map_err(|e| JobError::permanent(e.to_string()))?;
    let llm = state
        .config
        .llm
        .as_ref()
        .ok_or_else(|| JobError::permanent("LiteLLM is registered without its settings"))?;
    let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "update resume_analyses set status = 'processing', attempts = attempts + 1 \
         where id = $1 and status <> 'completed' returning status, resume_text, resume_url",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    let Some((_, text, url)) = row else {
        let exists: Option<(String,)> =
            sqlx::query_as("select status from resume_analyses where id = $1")
                .bind(id)
                .fetch_optional(&state.db)
                .await?;
        return match exists {
            Some(_) => Ok(()),
            None => Err(JobError::permanent(format!(
                "resume analysis {id} does not exist"
            ))),
        };
    };
    let resume = match (text, url) {
        (Some(text), _) => text,
        (None, Some(url)) => {
            fetch_resume(&state.config, &url, llm.allow_private_resume_urls).await?
        }
        (None, None) => return Err(JobError::permanent("resume analysis has no input")),
    };
    let result = ask_gateway(gateway, llm, &resume).await?;
    sqlx::query(
        "update resume_analyses set status = 'completed', result = $2, error = null, \
         completed_at = now() where id = $1",
    )
    .bind(id)
    .bind(result)
    .execute(&state.db)
    .await?;
    Ok(())
}

pub async fn record_failure(db: &PgPool, id: Uuid, reason: &str, last: bool) -> sqlx::Result<()> {
    sqlx::query(
        "update resume_analyses set error = $2, \
         status = case when $3 then 'failed' else 'queued' end \
         where id = $1 and status <> 'completed'",
    )
    .bind(id)
    .bind(reason)
    .bind(last)
    .execute(db)
    .await?;
    Ok(())
}

/// Never retried; the reason's detail (which address) only goes to the log.
fn refused(err: &dyn std::error::Error) -> JobError {
    tracing::warn!(reason = %crate::error::with_sources(err), "resume URL refused");
    JobError::permanent("resumeUrl points at a private or local address")
}

/// The student-supplied URL must not reach internal services (SSRF): see
/// [`outbound`] (resolved once, every address public, connection pinned to it, no
/// redirects, no proxy).
async fn fetch_resume(config: &Config, url: &str, allow_private: bool) -> Result<String, JobError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| JobError::permanent(format!("resumeUrl is not a valid URL: {e}")))?;
    let guard = outbound::GuardedResolver::from_config(config, allow_private);
    outbound::check_url(&guard, &parsed).map_err(|e| refused(&e))?;
    let client = outbound::client(guard, Duration::from_secs(30))
        .map_err(|e| JobError::retry(format!("building the fetch client failed: {e}")))?;
    let res = client.get(parsed).send().await.map_err(|e| {
        if outbound::is_refusal(&e) {
            refused(&e)
        } else {
            JobError::retry(format!("fetching resumeUrl failed: {e}"))
        }
    })?;
    let status = res.status();
    if status.is_redirection() {
        return Err(JobError::permanent(format!(
            "fetching resumeUrl failed: HTTP {status} (redirects are not followed)"
        )));
    }
    if !status.is_success() {
        let msg = format!("fetching resumeUrl failed: HTTP {status}");
        return Err(if status.is_server_error() {
            JobError::retry(msg)
        } else {
            JobError::permanent(msg)
        });
    }
    let bytes = res
        .bytes()
        .await
        .map_err(|e| JobError::retry(format!("reading resumeUrl failed: {e}")))?;
    let bytes = &bytes[..bytes.len().min(MAX_FETCH_BYTES)];
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .take(MAX_TEXT_CHARS)
        .collect();
    if text.trim().is_empty() {
        return Err(JobError::permanent("resumeUrl returned an empty document"));
    }
    Ok(text)
}

/// One chat completion through the shared HTTP policy. It is a POST the gateway does
/// not de-duplicate (and bills), so the policy makes one attempt; retrying is the
/// resume job's business (durable, with its own backoff and attempt count).
async fn ask_gateway(
    gateway: &HttpClient,
    llm: &LlmConfig,
    resume: &str,
) -> Result<Value, JobError> {
    let body = json!({
        "model": llm.model,
        "temperature": 0.2,
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": format!("Resume:\n\n{resume}")},
        ],
    });
    let res = gateway
        .send(|http| {
            http.post(format!("{}/chat/completions", llm.base_url))
                .bearer_auth(llm.api_key.expose())
                .json(&body)
        })
        .await
        .map_err(gateway_error)?;
    let reply: Value = gateway
        .json(res)
        .await
        .map_err(|e| JobError::retry(format!("LLM gateway sent invalid JSON: {e}")))?;
    let content = reply["choices"][0]["message"]["content"]
        .as_str()
        .ok_or_else(|| JobError::retry("LLM reply has no choices[0].message.content"))?;
    parse_review(content)
}

/// The job's reason; the policy's messages carry neither the URL nor the key.
fn gateway_error(err: OutboundError) -> JobError {
    let msg = match &err {
        OutboundError::Status { status, body, .. } => {
            format!("LLM gateway answered HTTP {status}: {body}")
        }
        OutboundError::Unreachable { detail, .. } => format!("LLM gateway unreachable: {detail}"),
        OutboundError::Timeout { .. } => format!("LLM gateway unreachable: {err}"),
        _ => format!("LLM gateway unavailable: {err}"),
    };
    if err.is_transient() {
        JobError::retry(msg)
    } else {
        JobError::permanent(msg)
    }
}

/// The model's JSON (tolerating a ```json fence) must be an object with a summary.
pub fn parse_review(content: &str) -> Result<Value, JobError> {
    let trimmed = content.trim();
    let trimmed = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .map(|s| s.trim_end().trim_end_matches("```").trim())
        .unwrap_or(trimmed);
    let value: Value = serde_json::from_str(trimmed)
        .map_err(|e| JobError::retry(format!("LLM reply is not JSON: {e}")))?;
    if !value.is_object() || !value.get("summary").is_some_and(Value::is_string) {
        return Err(JobError::retry("LLM reply JSON lacks a \"summary\" string"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::parse_review;

    #[test]
    fn parses_plain_and_fenced_json() {
        assert!(parse_review(r#"{"summary":"ok","score":70}"#).is_ok());
        assert!(parse_review("```json\n{\"summary\":\"ok\"}\n```").is_ok());
        assert!(parse_review("not json").is_err());
        assert!(parse_review(r#"{"score":1}"#).is_err());
    }
}
