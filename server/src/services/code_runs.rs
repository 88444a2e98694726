//! Students' code runs on Judge0, within limits: source and stdin size, CPU time and
//! memory per run (sent as Judge0's own limits), and runs per user per minute.
//!
//! Followed: Judge0 CE API docs, https://ce.judge0.com/ ("Create a submission":
//! `POST /submissions?base64_encoded=true&wait=true|false` with `source_code`,
//! `language_id`, `stdin`, `cpu_time_limit` (s), `memory_limit` (KB); answers the
//! result with `wait=true`, else a `token` for `GET /submissions/{token}`; statuses
//! 1 "In Queue" and 2 "Processing" are unfinished, 3.. final; `GET /languages` is
//! `[{id, name}]`; authentication by `X-Auth-Token` on self-hosted instances (the
//! `AUTHN_HEADER` default) or `X-RapidAPI-Key` + `X-RapidAPI-Host` on RapidAPI).
//! Base64 fields may carry line breaks (Ruby's encoder), so they are stripped.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Mutex;
use utoipa::ToSchema;
use uuid::Uuid;

use super::integrations::{HttpClient, IntegrationId};
use super::rate_limit::{self, LimitName};
use crate::auth::AuthUser;
use crate::config::{Judge0Auth, Judge0Config};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Stored program output is cut to this (a program may print without end).
const MAX_OUTPUT_BYTES: usize = 64 * 1024;
const FIELDS: &str = "token,stdout,stderr,compile_output,message,status,time,memory";

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Language {
    pub id: i32,
    pub name: String,
}

#[derive(Default)]
pub struct LanguageCache {
    list: Mutex<Option<(Instant, Vec<Language>)>>,
}

fn config(state: &AppState) -> AppResult<(&Judge0Config, &HttpClient)> {
    let http = state.integrations.http(IntegrationId::Judge0)?;
    let cfg =
        state.config.external.judge0.as_ref().ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("judge0 registered without settings"))
        })?;
    Ok((cfg, http))
}

fn authed(cfg: &Judge0Config, req: RequestBuilder) -> RequestBuilder {
    let Some(key) = &cfg.api_key else { return req };
    match cfg.auth {
        Judge0Auth::AuthToken => req.header("X-Auth-Token", key.expose()),
        Judge0Auth::RapidApi => {
            let host = url::Url::parse(&cfg.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            req.header("X-RapidAPI-Key", key.expose())
                .header("X-RapidAPI-Host", host)
        }
    }
}

/// Judge0's languages, cached for `JUDGE0_LANGUAGES_TTL_SECONDS`.
pub async fn languages(state: &AppState) -> AppResult<Vec<Language>> {
    let (cfg, http) = config(state)?;
    let mut cached = state.external.judge0_languages.list.lock().await;
    if let Some((at, list)) = cached.as_ref()
        && at.elapsed() < cfg.languages_ttl
    {
        return Ok(list.clone());
    }
    let url = format!("{}/languages", cfg.url);
    let res = http.send(|c| authed(cfg, c.get(&url))).await?;
    let list: Vec<Language> = http.json(res).await?;
    *cached = Some((Instant::now(), list.clone()));
    Ok(list)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewRun {
    /// A Judge0 language id from `GET /api/code/languages`.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::validation::whole_number")]
    pub language_id: i32,
    /// The program; at most `CODE_RUN_MAX_SOURCE_BYTES` bytes (default 65536).
    #[schema(min_length = 1, max_length = 65536)]
    pub source: String,
    /// Standard input; at most `CODE_RUN_MAX_STDIN_BYTES` bytes (default 65536).
    #[schema(max_length = 65536)]
    pub stdin: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct CodeRun {
    pub id: Uuid,
    pub language_id: i32,
    /// `processing` (poll `GET /api/code/runs/{id}`), `completed` or `failed`.
    pub status: String,
    /// Judge0's verdict: "Accepted", "Time Limit Exceeded", "Compilation Error", ...
    pub verdict: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub compile_output: Option<String>,
    pub message: Option<String>,
    /// CPU seconds used.
    pub time_seconds: Option<f64>,
    pub memory_kb: Option<i32>,
    /// Limits the run was given.
    pub cpu_time_limit_seconds: f64,
    pub memory_limit_kb: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, language_id, status, verdict, stdout, stderr, compile_output, message, \
    time_seconds, memory_kb, cpu_time_limit_seconds, memory_limit_kb, created_at, updated_at";

#[derive(Debug, Deserialize)]
struct Status {
    id: i32,
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Submission {
    token: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    compile_output: Option<String>,
    message: Option<String>,
    status: Option<Status>,
    time: Option<String>,
    memory: Option<i64>,
}

/// Starts a run of `user_id`'s program, counted against `RATE_LIMIT_CODE_RUN` for the user
/// and the client address.
pub async fn create(
    state: &AppState,
    user_id: Uuid,
    client: &str,
    new: &NewRun,
) -> AppResult<CodeRun> {
    let (cfg, http) = config(state)?;
    if new.source.trim().is_empty() {
        return Err(AppError::validation("source must not be empty"));
    }
    if new.source.len() > cfg.max_source_bytes {
        return Err(AppError::validation(format!(
            "source must be at most {} bytes",
            cfg.max_source_bytes
        )));
    }
    let stdin = new.stdin.as_deref().unwrap_or("");
    if stdin.len() > cfg.max_stdin_bytes {
        return Err(AppError::validation(format!(
            "stdin must be at most {} bytes",
            cfg.max_stdin_bytes
        )));
    }
    rate_limit::enforce(state, LimitName::CodeRun, Some(user_id), client).await?;
    if !languages(state)
        .await?
        .iter()
        .any(|l| l.id == new.language_id)
    {
        return Err(AppError::validation(format!(
            "unknown language id {}",
            new.language_id
        )));
    }

    let id = Uuid::new_v4();
    sqlx::query(
        "insert into code_runs (id, user_id, language_id, source, stdin, status, cpu_time_limit_seconds, memory_limit_kb) \
         values ($1, $2, $3, $4, $5, 'processing', $6, $7)",
    )
    .bind(id)
    .bind(user_id)
    .bind(new.language_id)
    .bind(&new.source)
    .bind(stdin)
    .bind(cfg.cpu_time_limit_secs)
    .bind(cfg.memory_limit_kb as i32)
    .execute(&state.db)
    .await?;

    let body = json!({
        "language_id": new.language_id,
        "source_code": STANDARD.encode(&new.source),
        "stdin": STANDARD.encode(stdin),
        "cpu_time_limit": cfg.cpu_time_limit_secs,
        // Wall clock bounds sleeping programs too; Judge0's default ratio is 2x CPU.
        "wall_time_limit": (cfg.cpu_time_limit_secs * 2.0).min(20.0),
        "memory_limit": cfg.memory_limit_kb,
    });
    let url = format!("{}/submissions", cfg.url);
    let wait = if cfg.wait { "true" } else { "false" };
    // A POST runs the program again: sent once, never retried.
    let sent = http
        .send(|c| {
            authed(cfg, c.post(&url))
                .query(&[
                    ("base64_encoded", "true"),
                    ("wait", wait),
                    ("fields", FIELDS),
                ])
                .json(&body)
        })
        .await;
    let submission: Submission = match sent {
        Ok(res) => match http.json(res).await {
            Ok(s) => s,
            Err(err) => return Err(fail(state, id, err.into()).await),
        },
        Err(err) => return Err(fail(state, id, err.into()).await),
    };
    store(state, id, &submission).await?;
    fetch(state, id).await
}

/// Marks the run failed with the (secret-free) reason and hands the error back.
async fn fail(state: &AppState, id: Uuid, err: AppError) -> AppError {
    let recorded =
        sqlx::query("update code_runs set status = 'failed', message = $2 where id = $1")
            .bind(id)
            .bind(err.to_string())
            .execute(&state.db)
            .await;
    if let Err(e) = recorded {
        tracing::warn!(run_id = %id, error = %e, "could not record a failed code run");
    }
    err
}

fn decode(field: Option<&str>) -> Option<String> {
    let raw: String = field?.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = STANDARD.decode(raw).ok()?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if text.len() > MAX_OUTPUT_BYTES {
        let mut cut = MAX_OUTPUT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n[output truncated]");
    }
    Some(text)
}

async fn store(state: &AppState, id: Uuid, s: &Submission) -> AppResult<()> {
    let finished = s.status.as_ref().is_some_and(|st| st.id >= 3);
    sqlx::query(
        "update code_runs set judge0_token = coalesce($2, judge0_token), status = $3, verdict = $4, \
           stdout = $5, stderr = $6, compile_output = $7, message = $8, time_seconds = $9, memory_kb = $10 \
         where id = $1",
    )
    .bind(id)
    .bind(s.token.as_deref())
    .bind(if finished { "completed" } else { "processing" })
    .bind(s.status.as_ref().and_then(|st| st.description.as_deref()))
    .bind(decode(s.stdout.as_deref()))
    .bind(decode(s.stderr.as_deref()))
    .bind(decode(s.compile_output.as_deref()))
    .bind(decode(s.message.as_deref()))
    .bind(s.time.as_deref().and_then(|t| t.parse::<f64>().ok()))
    .bind(s.memory.map(|m| m as i32))
    .execute(&state.db)
    .await?;
    Ok(())
}

async fn fetch(state: &AppState, id: Uuid) -> AppResult<CodeRun> {
    sqlx::query_as::<_, CodeRun>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from code_runs where id = $1"
    )))
    .bind(id)
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| AppError::not_found(format!("code run {id} not found")))
}

/// The run (its owner or an admin); an unfinished one is refreshed from Judge0.
pub async fn get(state: &AppState, id: Uuid, caller: &AuthUser) -> AppResult<CodeRun> {
    config(state)?;
    let row: Option<(Uuid, String, Option<String>)> =
        sqlx::query_as("select user_id, status, judge0_token from code_runs where id = $1")
            .bind(id)
            .fetch_optional(&state.db)
            .await?;
    let (owner, status, token) =
        row.ok_or_else(|| AppError::not_found(format!("code run {id} not found")))?;
    if owner != caller.id() && !caller.role().is_admin() {
        return Err(AppError::forbidden(
            "only the student who started a run can see it",
        ));
    }
    if status == "processing"
        && let Some(token) = token
    {
        let (cfg, http) = config(state)?;
        let url = format!("{}/submissions/{}", cfg.url, urlencode(&token));
        // A GET: retried by the policy on 5xx and timeouts.
        let res = http
            .send(|c| {
                authed(cfg, c.get(&url)).query(&[("base64_encoded", "true"), ("fields", FIELDS)])
            })
            .await?;
        let submission: Submission = http.json(res).await?;
        store(state, id, &submission).await?;
    }
    fetch(state, id).await
}

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_with_line_breaks_decodes_and_long_output_is_cut() {
        assert_eq!(decode(Some("aGVs\nbG8K")).as_deref(), Some("hello\n"));
        assert_eq!(decode(None), None);
        let long = STANDARD.encode("é".repeat(MAX_OUTPUT_BYTES));
        let cut = decode(Some(&long)).unwrap();
        assert!(cut.ends_with("[output truncated]") && cut.len() < MAX_OUTPUT_BYTES + 32);
    }
}
