//! A mentor's Google Drive connection, for their meeting recordings: OAuth consent
//! (offline access), the refresh token encrypted at rest ([`TokenCipher`]), and listing
//! the recordings with a fresh access token.
//!
//! Followed: Google's OAuth 2.0 for web server applications,
//! https://developers.google.com/identity/protocols/oauth2/web-server (authorization URL
//! parameters `access_type=offline`, `prompt=consent`, `include_granted_scopes`,
//! `state`; code exchange and refresh at `https://oauth2.googleapis.com/token`), and the
//! Drive API v3 reference, https://developers.google.com/drive/api/reference/rest/v3
//! (`about.get?fields=user`, `files.list` with `q`, `fields`, `orderBy`, `pageSize`; Meet
//! saves recordings as `video/mp4` files in the organizer's Drive).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::calendar::refresh_access_token;
use crate::config::GoogleDriveConfig;
use crate::error::{AppError, AppResult};
use crate::services::integrations::{IntegrationId, OutboundError};
use crate::services::secrets;
use crate::services::token_crypto::TokenCipher;
use crate::state::AppState;

pub const STATE_COOKIE: &str = "mas_drive_state";
const CONSENT_TTL: Duration = Duration::from_secs(600);
const SCOPES: &str = "openid email https://www.googleapis.com/auth/drive.readonly";

fn config(state: &AppState) -> AppResult<&GoogleDriveConfig> {
    state.integrations.ensure(IntegrationId::GoogleDrive)?;
    state.config.external.google_drive.as_ref().ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("google_drive registered without settings"))
    })
}

fn consent_key(state_param: &str) -> String {
    format!("oauth:drive:consent:{}", secrets::hash_token(state_param))
}

/// The row's associated data: a token sealed for one mentor opens for no other.
fn aad(user_id: Uuid) -> String {
    format!("google-drive-refresh:{user_id}")
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentStart {
    /// Send the mentor's browser here (Google's consent screen).
    pub authorization_url: String,
    /// Seconds the consent stays valid.
    pub expires_in: u64,
}

pub struct Started {
    pub consent: ConsentStart,
    pub state: String,
    pub secure_cookie: bool,
}

pub async fn start(state: &AppState, user_id: Uuid) -> AppResult<Started> {
    let cfg = config(state)?;
    let state_param = secrets::random_token();
    let mut redis = state.redis.clone();
    redis::cmd("SET")
        .arg(consent_key(&state_param))
        .arg(user_id.to_string())
        .arg("EX")
        .arg(CONSENT_TTL.as_secs())
        .query_async::<()>(&mut redis)
        .await?;
    let mut url = url::Url::parse(&cfg.oauth.auth_url)
        .map_err(|_| AppError::internal(anyhow::anyhow!("GOOGLE_OAUTH_AUTH_URL is unusable")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", &cfg.redirect_uri)
        .append_pair("scope", SCOPES)
        .append_pair("access_type", "offline")
        // Google only returns a refresh token on consent; ask for it every time.
        .append_pair("prompt", "consent")
        .append_pair("include_granted_scopes", "true")
        .append_pair("state", &state_param);
    Ok(Started {
        consent: ConsentStart {
            authorization_url: url.into(),
            expires_in: CONSENT_TTL.as_secs(),
        },
        state: state_param,
        secure_cookie: cfg.redirect_uri.starts_with("https://"),
    })
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Callback {
    #[param(max_length = 2048)]
    pub code: Option<String>,
    #[param(max_length = 256)]
    pub state: Option<String>,
    #[param(max_length = 256)]
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct CodeAnswer {
    access_token: String,
    refresh_token: Option<String>,
    scope: Option<String>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DriveConnection {
    pub connected: bool,
    /// The Google account the recordings come from.
    pub google_email: Option<String>,
    pub scope: Option<String>,
    pub connected_at: Option<DateTime<Utc>>,
}

pub async fn finish(
    state: &AppState,
    cb: &Callback,
    cookie_state: Option<&str>,
) -> AppResult<DriveConnection> {
    let cfg = config(state)?;
    let http = state.integrations.http(IntegrationId::GoogleDrive)?;
    if cb.error.is_some() {
        return Err(AppError::unauthorized(
            "Google Drive was not connected: consent was not given",
        ));
    }
    let (Some(code), Some(state_param)) = (cb.code.as_deref(), cb.state.as_deref()) else {
        return Err(AppError::validation("code and state are required"));
    };
    let invalid = || {
        AppError::validation("the consent state is invalid, expired or already used; connect again")
    };
    if cookie_state != Some(state_param) {
        return Err(invalid());
    }
    let mut redis = state.redis.clone();
    let user: Option<String> = redis::cmd("GETDEL")
        .arg(consent_key(state_param))
        .query_async(&mut redis)
        .await?;
    let user_id: Uuid = user.and_then(|u| u.parse().ok()).ok_or_else(invalid)?;

    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", cfg.redirect_uri.as_str()),
        ("client_id", cfg.client_id.as_str()),
        ("client_secret", cfg.client_secret.expose()),
    ];
    let res = http
        .send(|c| c.post(&cfg.oauth.token_url).form(&form))
        .await
        .map_err(|err| match err {
            OutboundError::Status { status, .. } if status.is_client_error() => {
                AppError::unauthorized(
                    "Google refused the authorization code (expired or already used)",
                )
            }
            other => other.into(),
        })?;
    let answer: CodeAnswer = http.json(res).await?;
    let refresh = answer.refresh_token.ok_or_else(|| {
        AppError::BadGateway("google_drive granted no offline access (no refresh token)".into())
    })?;
    let about = http
        .send(|c| {
            c.get(format!("{}/about", cfg.api_url))
                .bearer_auth(&answer.access_token)
                .query(&[("fields", "user(emailAddress)")])
        })
        .await?;
    let about: serde_json::Value = http.json(about).await?;
    let email = about["user"]["emailAddress"].as_str().map(str::to_string);

    let sealed = TokenCipher::new(&cfg.token_key)?.encrypt(&refresh, &aad(user_id))?;
    sqlx::query(
        "insert into google_drive_connections (user_id, refresh_token_enc, google_email, scope) \
         values ($1, $2, $3, $4) \
         on conflict (user_id) do update set refresh_token_enc = excluded.refresh_token_enc, \
           google_email = excluded.google_email, scope = excluded.scope, connected_at = now()",
    )
    .bind(user_id)
    .bind(&sealed)
    .bind(email.as_deref())
    .bind(answer.scope.as_deref())
    .execute(&state.db)
    .await?;
    tracing::info!(%user_id, "google drive connected");
    status(state, user_id).await
}

pub async fn status(state: &AppState, user_id: Uuid) -> AppResult<DriveConnection> {
    config(state)?;
    let row: Option<DriveConnection> = sqlx::query_as(
        "select true as connected, google_email, scope, connected_at \
         from google_drive_connections where user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&state.db)
    .await?;
    Ok(row.unwrap_or(DriveConnection {
        connected: false,
        google_email: None,
        scope: None,
        connected_at: None,
    }))
}

pub async fn disconnect(state: &AppState, user_id: Uuid) -> AppResult<DriveConnection> {
    config(state)?;
    sqlx::query("delete from google_drive_connections where user_id = $1")
        .bind(user_id)
        .execute(&state.db)
        .await?;
    status(state, user_id).await
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub id: String,
    pub name: String,
    pub created_time: Option<String>,
    pub web_view_link: Option<String>,
    /// Bytes, as Drive reports it (a decimal string).
    pub size: Option<String>,
}

#[derive(Deserialize)]
struct FileList {
    #[serde(default)]
    files: Vec<Recording>,
}

/// The mentor's recordings, newest first (at most 50).
pub async fn recordings(state: &AppState, user_id: Uuid) -> AppResult<Vec<Recording>> {
    let cfg = config(state)?;
    let http = state.integrations.http(IntegrationId::GoogleDrive)?;
    let sealed: Option<String> = sqlx::query_scalar(
        "select refresh_token_enc from google_drive_connections where user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&state.db)
    .await?;
    let sealed = sealed.ok_or_else(|| AppError::conflict("connect Google Drive first"))?;
    let refresh = TokenCipher::new(&cfg.token_key)?.decrypt(&sealed, &aad(user_id))?;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.expose()),
        ("client_id", cfg.client_id.as_str()),
        ("client_secret", cfg.client_secret.expose()),
    ];
    let (access, _) = refresh_access_token(http, &cfg.oauth.token_url, &form)
        .await
        .map_err(|err| match err {
            OutboundError::Status { status, .. }
                if status.as_u16() == 400 || status.as_u16() == 401 =>
            {
                AppError::conflict("the Google Drive connection was revoked; connect again")
            }
            other => other.into(),
        })?;
    let res = http
        .send(|c| {
            c.get(format!("{}/files", cfg.api_url))
                .bearer_auth(access.expose())
                .query(&[
                    ("q", "mimeType = 'video/mp4' and trashed = false"),
                    ("fields", "files(id,name,createdTime,webViewLink,size)"),
                    ("orderBy", "createdTime desc"),
                    ("pageSize", "50"),
                ])
        })
        .await?;
    let list: FileList = http.json(res).await?;
    Ok(list.files)
}
