//! Sign-in with Google: OpenID Connect authorization-code flow with PKCE.
//!
//! Followed: OpenID Connect Core 1.0 §3.1 (https://openid.net/specs/openid-connect-core-1_0.html:
//! `state`, `nonce`, ID token validation §3.1.3.7: `iss`, `aud`, `azp`, `exp`, signature
//! by a key from the provider's JWKS), OpenID Connect Discovery 1.0 (metadata at
//! `{issuer}/.well-known/openid-configuration`), RFC 7636 (PKCE, `S256`), and Google's
//! "OpenID Connect" guide (https://developers.google.com/identity/openid-connect/openid-connect:
//! issuer `https://accounts.google.com` or `accounts.google.com`, claims `sub`, `email`,
//! `email_verified`, `name`, `picture`; keys rotate, so the JWKS is cached and refetched
//! when an unknown `kid` appears).
//!
//! - [`start`] stores the flow (nonce, PKCE verifier) in Redis under a hash of `state`,
//!   short-lived and deleted on first use (`GETDEL`), and binds it to the browser with a
//!   cookie carrying `state`.
//! - [`finish`] checks `state` against the cookie and the store, exchanges the code
//!   (never retried: a code works once), verifies the ID token, requires a verified
//!   email, links to the account with that email or creates a student, and issues our
//!   usual token pair.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::auth::Role;
use crate::config::GoogleOidcConfig;
use crate::error::{AppError, AppResult};
use crate::services::auth::{self, Session};
use crate::services::integrations::{HttpClient, IntegrationId, OutboundError};
use crate::services::{secrets, users};
use crate::state::AppState;

/// Name of the cookie binding a started sign-in to the browser that started it.
pub const STATE_COOKIE: &str = "mas_google_state";
/// Discovery metadata is re-read this often (Google changes it rarely).
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Keys are kept this long when no unknown `kid` forces a refetch earlier.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the JWKS at most this often per minute, so tokens with
/// made-up key ids cannot turn us into a load generator against the provider.
const JWKS_REFETCHES_PER_MINUTE: usize = 5;
/// Clock skew tolerated on `exp` / `iat`.
const LEEWAY_SECS: u64 = 60;
const SCOPES: &str = "openid email profile";

/// What the provider's discovery document tells us (the parts we use).
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

#[derive(Default)]
struct JwksState {
    keys: Option<(Instant, JwkSet)>,
    /// When recent refetches for unknown key ids happened (bounded window).
    refetches: VecDeque<Instant>,
}

/// Discovery and JWKS cache, one per process.
#[derive(Default)]
pub struct OidcCache {
    metadata: Mutex<Option<(Instant, ProviderMetadata)>>,
    jwks: Mutex<JwksState>,
}

impl OidcCache {
    async fn metadata(
        &self,
        http: &HttpClient,
        cfg: &GoogleOidcConfig,
    ) -> AppResult<ProviderMetadata> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, meta)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(meta.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", cfg.issuer);
        let res = http.send(|c| c.get(&url)).await?;
        let meta: ProviderMetadata = http.json(res).await?;
        // Discovery §4.3: the document's issuer must be the one we asked.
        if !same_issuer(&meta.issuer, &cfg.issuer) {
            return Err(AppError::BadGateway(format!(
                "{} discovery names another issuer",
                http.provider()
            )));
        }
        *cached = Some((Instant::now(), meta.clone()));
        Ok(meta)
    }

    /// The verification key `kid`: from the cache, else from a refetched JWKS (keys
    /// rotate) when the refetch budget allows.
    async fn key(&self, http: &HttpClient, jwks_uri: &str, kid: &str) -> AppResult<DecodingKey> {
        let mut state = self.jwks.lock().await;
        let now = Instant::now();
        let fresh = matches!(&state.keys, Some((at, _)) if now.duration_since(*at) < JWKS_TTL);
        if fresh
            && let Some((_, set)) = &state.keys
            && let Some(jwk) = set.find(kid)
        {
            return decoding_key(jwk);
        }
        if fresh {
            // A refetch forced by an unknown kid: bounded per minute.
            while state
                .refetches
                .front()
                .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
            {
                state.refetches.pop_front();
            }
            if state.refetches.len() >= JWKS_REFETCHES_PER_MINUTE {
                tracing::warn!(
                    kid,
                    "unknown signing key and the JWKS refetch budget is spent"
                );
                return Err(invalid_token("it is signed with an unknown key"));
            }
            state.refetches.push_back(now);
        }
        let res = http.send(|c| c.get(jwks_uri)).await?;
        let set: JwkSet = http.json(res).await?;
        tracing::info!(
            keys = set.keys.len(),
            "fetched the OpenID Provider's signing keys"
        );
        let found = set.find(kid).map(decoding_key);
        state.keys = Some((now, set));
        found.unwrap_or_else(|| Err(invalid_token("it is signed with an unknown key")))
    }
}

fn decoding_key(jwk: &jsonwebtoken::jwk::Jwk) -> AppResult<DecodingKey> {
    DecodingKey::from_jwk(jwk).map_err(|_| invalid_token("its signing key is unusable"))
}

/// Google documents both spellings of its issuer.
fn same_issuer(got: &str, expected: &str) -> bool {
    let bare = |s: &str| s.trim_end_matches('/').to_string();
    bare(got) == bare(expected)
        || (bare(expected) == "https://accounts.google.com" && got == "accounts.google.com")
}

fn invalid_token(why: &str) -> AppError {
    AppError::unauthorized(format!(
        "Google sign-in failed: the ID token is invalid ({why})"
    ))
}

fn bad_state() -> AppError {
    AppError::validation(
        "Google sign-in failed: the sign-in state is invalid, expired or already used; start again",
    )
}

fn config(state: &AppState) -> AppResult<&GoogleOidcConfig> {
    state.integrations.ensure(IntegrationId::Google)?;
    state
        .config
        .external
        .google_oidc
        .as_ref()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("google registered without settings")))
}

/// What a started sign-in stores server-side (Redis), keyed by a hash of `state`.
#[derive(Serialize, Deserialize)]
struct Flow {
    nonce: String,
    verifier: String,
}

fn flow_key(state_param: &str) -> String {
    format!("oidc:google:flow:{}", secrets::hash_token(state_param))
}

fn random_b64url() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A started sign-in: where to send the browser, and the cookie binding it.
pub struct Started {
    pub authorization_url: String,
    pub state: String,
    pub ttl: Duration,
    /// The cookie must be `Secure` when our callback is served over https.
    pub secure_cookie: bool,
}

pub async fn start(state: &AppState) -> AppResult<Started> {
    let cfg = config(state)?;
    let http = state.integrations.http(IntegrationId::Google)?;
    let meta = state.external.oidc.metadata(http, cfg).await?;

    let state_param = random_b64url();
    let flow = Flow {
        nonce: random_b64url(),
        // RFC 7636 §4.1: 43..128 characters; 32 random bytes give 43.
        verifier: random_b64url(),
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(flow.verifier.as_bytes()));
    let stored = serde_json::to_string(&flow).map_err(AppError::internal)?;
    let mut redis = state.redis.clone();
    redis::cmd("SET")
        .arg(flow_key(&state_param))
        .arg(stored)
        .arg("EX")
        .arg(cfg.flow_ttl.as_secs().max(1))
        .query_async::<()>(&mut redis)
        .await?;

    let mut url = url::Url::parse(&meta.authorization_endpoint).map_err(|_| {
        AppError::BadGateway("google discovery has an unusable authorization_endpoint".into())
    })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", &cfg.redirect_uri)
        .append_pair("scope", SCOPES)
        .append_pair("state", &state_param)
        .append_pair("nonce", &flow.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(Started {
        authorization_url: url.into(),
        state: state_param,
        ttl: cfg.flow_ttl,
        secure_cookie: cfg.redirect_uri.starts_with("https://"),
    })
}

/// The callback's query, as the provider sends it.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Callback {
    /// The authorization code (absent when the user declined).
    #[param(max_length = 2048)]
    pub code: Option<String>,
    /// Echo of the `state` sent by `/api/auth/google/start`.
    #[param(max_length = 256)]
    pub state: Option<String>,
    /// Set by the provider when sign-in did not complete (e.g. `access_denied`).
    #[param(max_length = 256)]
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    // Google has sent `"true"` as a string in older tokens.
    Text(String),
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    email: Option<String>,
    email_verified: Option<Flag>,
    name: Option<String>,
    picture: Option<String>,
    nonce: Option<String>,
    azp: Option<String>,
}

pub async fn finish(
    state: &AppState,
    callback: &Callback,
    cookie_state: Option<&str>,
) -> AppResult<Session> {
    let cfg = config(state)?;
    let http = state.integrations.http(IntegrationId::Google)?;
    if let Some(err) = &callback.error {
        let err: String = err
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(AppError::unauthorized(format!(
            "Google sign-in was not completed ({err})"
        )));
    }
    let (Some(code), Some(state_param)) = (callback.code.as_deref(), callback.state.as_deref())
    else {
        return Err(AppError::validation(
            "Google sign-in failed: code and state are required",
        ));
    };
    // The state must come back to the browser that started the flow (login CSRF).
    let bound = cookie_state.is_some_and(|c| {
        hmac_eq(
            secrets::hash_token(c).as_bytes(),
            secrets::hash_token(state_param).as_bytes(),
        )
    });
    if !bound {
        return Err(bad_state());
    }
    let mut redis = state.redis.clone();
    let stored: Option<String> = redis::cmd("GETDEL")
        .arg(flow_key(state_param))
        .query_async(&mut redis)
        .await?;
    let flow: Flow = stored
        .and_then(|s| serde_json::from_str(&s).ok())
        .ok_or_else(bad_state)?;

    let meta = state.external.oidc.metadata(http, cfg).await?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", cfg.redirect_uri.as_str()),
        ("client_id", cfg.client_id.as_str()),
        ("client_secret", cfg.client_secret.expose()),
        ("code_verifier", flow.verifier.as_str()),
    ];
    // A POST: never retried by the policy, which is right for a single-use code.
    let res = http
        .send(|c| c.post(&meta.token_endpoint).form(&form))
        .await
        .map_err(|err| match err {
            OutboundError::Status { status, .. } if status.is_client_error() => {
                AppError::unauthorized("Google sign-in failed: the authorization code was refused (expired or already used)")
            }
            other => other.into(),
        })?;
    let tokens: TokenResponse = http.json(res).await?;
    let id_token = tokens
        .id_token
        .ok_or_else(|| invalid_token("the token response carries none"))?;
    let claims = verify_id_token(state, http, cfg, &meta, &id_token).await?;

    if !claims
        .nonce
        .as_deref()
        .is_some_and(|n| hmac_eq(n.as_bytes(), flow.nonce.as_bytes()))
    {
        return Err(invalid_token("its nonce does not match this sign-in"));
    }
    let verified = matches!(&claims.email_verified, Some(Flag::Bool(true)))
        || matches!(&claims.email_verified, Some(Flag::Text(t)) if t == "true");
    let Some(email) = claims.email.as_deref().filter(|_| verified) else {
        return Err(AppError::forbidden(
            "Google sign-in refused: the Google account's email address is not verified",
        ));
    };
    let email = users::normalize_email(email)?;
    let user = link_or_create(state, &claims, &email).await?;
    if !user.is_active {
        return Err(AppError::forbidden("this account has been deactivated"));
    }
    tracing::info!(user_id = %user.id, "signed in with Google");
    auth::start_session(state, &user).await
}

async fn verify_id_token(
    state: &AppState,
    http: &HttpClient,
    cfg: &GoogleOidcConfig,
    meta: &ProviderMetadata,
    token: &str,
) -> AppResult<IdClaims> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| invalid_token("it is malformed"))?;
    // Google signs with RS256; anything else (notably `none` or HS*) is refused.
    if header.alg != Algorithm::RS256 {
        return Err(invalid_token("unexpected signing algorithm"));
    }
    let kid = header.kid.ok_or_else(|| invalid_token("it names no key"))?;
    let key = state.external.oidc.key(http, &meta.jwks_uri, &kid).await?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = LEEWAY_SECS;
    validation.set_audience(&[cfg.client_id.as_str()]);
    let mut issuers = vec![meta.issuer.clone()];
    if same_issuer("accounts.google.com", &meta.issuer) {
        issuers.push("accounts.google.com".into());
    }
    validation.set_issuer(&issuers);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<IdClaims>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        invalid_token(match e.kind() {
            K::ExpiredSignature => "it has expired",
            K::InvalidAudience => "it was issued to another client",
            K::InvalidIssuer => "it was issued by another provider",
            K::InvalidSignature => "its signature does not verify",
            _ => "it does not validate",
        })
    })?;
    let claims = data.claims;
    // Core §3.1.3.7 (5): when present, azp must be our client.
    if claims
        .azp
        .as_deref()
        .is_some_and(|azp| azp != cfg.client_id)
    {
        return Err(invalid_token("it was issued to another client"));
    }
    Ok(claims)
}

/// The account behind this Google identity: the linked one, else the account with the
/// same (Google-verified) email, now linked, else a new student.
async fn link_or_create(
    state: &AppState,
    claims: &IdClaims,
    email: &str,
) -> AppResult<users::UserRecord> {
    let mut tx = state.db.begin().await?;
    let linked: Option<Uuid> = sqlx::query_scalar(
        "select user_id from user_identities where provider = 'google' and subject = $1",
    )
    .bind(&claims.sub)
    .fetch_optional(&mut *tx)
    .await?;
    let user = match linked {
        Some(id) => users::find_by_id(&mut tx, id).await?,
        None => None,
    };
    let user = match user {
        Some(user) => user,
        None => match users::find_by_email(&mut tx, email).await? {
            Some(user) => user,
            None => {
                let name = claims
                    .name
                    .as_deref()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| email.split('@').next().unwrap_or("Student"));
                let name: String = name.chars().take(users::MAX_NAME_LEN).collect();
                match users::insert_external(&mut tx, &name, email, Role::Student).await? {
                    Some(user) => user,
                    // Someone created the account meanwhile (a concurrent first sign-in).
                    None => users::find_by_email(&mut tx, email).await?.ok_or_else(|| {
                        AppError::conflict("the account changed during sign-in; try again")
                    })?,
                }
            }
        },
    };
    sqlx::query(
        "insert into user_identities (id, user_id, provider, subject, email, picture) \
         values ($1, $2, 'google', $3, $4, $5) \
         on conflict (provider, subject) do update \
         set email = excluded.email, picture = excluded.picture, last_login_at = now()",
    )
    .bind(Uuid::new_v4())
    .bind(user.id)
    .bind(&claims.sub)
    .bind(email)
    .bind(claims.picture.as_deref())
    .execute(&mut *tx)
    .await?;
    // Google verified this address, which is what our own verification would prove.
    if !user.email_verified && user.email.eq_ignore_ascii_case(email) {
        sqlx::query("update users set email_verified = true where id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
    }
    let user = users::find_by_id(&mut tx, user.id)
        .await?
        .ok_or_else(|| AppError::unauthorized("account not found"))?;
    tx.commit().await?;
    Ok(user)
}

/// Constant-time equality for same-length values.
fn hmac_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_issuer_spellings() {
        assert!(same_issuer(
            "https://accounts.google.com",
            "https://accounts.google.com/"
        ));
        assert!(same_issuer(
            "accounts.google.com",
            "https://accounts.google.com"
        ));
        assert!(!same_issuer("accounts.google.com", "http://127.0.0.1:1"));
        assert!(!same_issuer(
            "https://evil.example",
            "https://accounts.google.com"
        ));
    }

    #[test]
    fn constant_time_eq() {
        assert!(hmac_eq(b"abc", b"abc"));
        assert!(!hmac_eq(b"abc", b"abd"));
        assert!(!hmac_eq(b"abc", b"abcd"));
    }
}
