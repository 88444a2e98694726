//! Every setting the server reads from its environment, parsed in one place.
//!
//! A missing or malformed value becomes one `ConfigError` line naming the variable;
//! secret values are never part of an error message or a `Debug` print.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the process runs; drives CORS leniency and log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

/// Which parts of the backend this process runs (API, queue workers or both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRole {
    All,
    Api,
    Workers,
}

impl ProcessRole {
    pub fn serves_api(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Api)
    }
    pub fn runs_workers(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Workers)
    }
}

/// A string that must never be printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub email: String,
    pub password: Secret,
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// Custom endpoint (moto, MinIO); path-style addressing is used when set.
    pub endpoint: Option<String>,
    pub presign_ttl: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    pub tls: SmtpTls,
}

#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
    /// Let resume URLs point at loopback/private addresses (tests, local dev only).
    pub allow_private_resume_urls: bool,
}

/// Queue workers: key prefix, per-queue concurrency, retry policy, outbox relay cadence.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// BullMQ key prefix (`bull` like the Node app, so existing queues and Bull Board keep working).
    pub prefix: String,
    pub email_concurrency: usize,
    pub database_concurrency: usize,
    pub cleanup_concurrency: usize,
    pub kpi_concurrency: usize,
    pub resume_concurrency: usize,
    /// Attempts per job (first run + retries).
    pub attempts: u32,
    /// Base delay of the exponential backoff between attempts.
    pub backoff: Duration,
    pub outbox_poll: Duration,
    pub cleanup_every: Duration,
    pub kpi_every: Duration,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub app_env: AppEnv,
    pub role: ProcessRole,
    pub database_url: Secret,
    pub database_max_connections: u32,
    pub redis_url: Secret,
    pub cors_allowed_origins: Vec<String>,
    pub jwt_secret: Secret,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Bootstrap accounts ensured at start; `None` when unset (a standby color starting
    /// against an already seeded database needs neither).
    pub admin: Option<Credentials>,
    pub superadmin: Option<Credentials>,
    pub enable_seeding: bool,
    pub assets_dir: PathBuf,
    pub body_limit_bytes: usize,
    pub shutdown_grace: Duration,
    /// After SIGTERM: how long the server keeps serving new requests while `/api/health`
    /// already answers 503, so endpoint removal reaches the ingress before it stops.
    pub shutdown_drain: Duration,
    /// Apply `migrations/` at boot; false when a separate `mas-server migrate` (the
    /// operator's Job) did it.
    pub migrate_on_start: bool,
    /// Reported by `/api/health` and sent as `x-app-version` on every response.
    pub app_version: String,
    /// Port of the internal listener (connection drain/resume), on `host`; none when unset.
    pub internal_port: Option<u16>,
    /// Bearer token of the internal endpoints; they answer 404 while it is unset.
    pub control_token: Option<Secret>,
    pub login_max_attempts: u32,
    pub login_window: Duration,
    /// Reverse proxies (ingress, load balancer) in front of the server that append
    /// to `X-Forwarded-For`; 0 means the header is never trusted.
    pub trusted_proxy_hops: usize,
    pub s3: Option<S3Config>,
    pub smtp: Option<SmtpConfig>,
    pub llm: Option<LlmConfig>,
    /// Shared facts about the third-party integrations (see the block below).
    pub integrations: IntegrationsConfig,
    /// Google, code execution, voice calls, partner proxies and the CDN.
    pub external: ExternalConfig,
    pub queues: QueueConfig,
    pub log_json: bool,
    pub realtime: RealtimeConfig,
}

/// Socket.IO, presence and terminal relay settings.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// Prefix of every realtime Redis key and channel; replicas that must act as
    /// one share it (tests use a unique one per test).
    pub redis_prefix: String,
    /// Largest Socket.IO HTTP long-polling request body (engine.io `max_payload`).
    pub socketio_max_payload: u64,
    /// Largest Socket.IO / relay WebSocket message.
    pub ws_max_message: usize,
    /// A replica that misses heartbeats this long is considered dead and its
    /// sockets offline.
    pub presence_ttl: Duration,
    /// Validity of a terminal pairing token.
    pub terminal_pairing_ttl: Duration,
}

/// What `mas-server migrate` needs: only the database (a migration Job may carry nothing else).
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub max_connections: u32,
}

impl DatabaseConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(vars);
        let url = env.required("DATABASE_URL")?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("DATABASE_URL", "must start with postgres://"));
        }
        Ok(DatabaseConfig {
            url: Secret::new(url),
            max_connections: env.parse("DATABASE_MAX_CONNECTIONS", 20)?,
        })
    }
}

/// Where `mas-server healthcheck` finds this server: `HOST` and `PORT` as the server
/// reads them, with a wildcard host reached over loopback.
pub fn local_health_url(vars: &HashMap<String, String>) -> Result<String, ConfigError> {
    let env = Env(vars);
    let host: IpAddr = env.parse("HOST", IpAddr::from([0, 0, 0, 0]))?;
    let port: u16 = env.parse("PORT", 8000)?;
    let host = match host {
        h if h.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        h => h,
    };
    Ok(format!(
        "http://{}/api/health",
        std::net::SocketAddr::new(host, port)
    ))
}

/// A version string that fits an HTTP header value.
fn app_version(raw: Option<&str>) -> Result<String, ConfigError> {
    let Some(raw) = raw else {
        return Ok(env!("CARGO_PKG_VERSION").to_string());
    };
    if raw.len() > 128 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "APP_VERSION",
            "must be at most 128 printable ASCII characters without spaces",
        ));
    }
    Ok(raw.to_string())
}

// --- Third-party integrations -----------------------------------------------------
// Each integration's own settings are a sub-struct parsed in `from_map` (S3Config,
// SmtpConfig, LlmConfig above; later ones go here). `services::integrations` declares
// the variables and reads this to report what is configured.

/// What the integration registry needs beyond each integration's own sub-struct.
#[derive(Debug, Clone, Default)]
pub struct IntegrationsConfig {
    /// Names (never values) of the declared integration variables that are set, so a
    /// disabled integration can name exactly the variables still missing.
    pub set_vars: BTreeSet<&'static str>,
    /// Operator overrides of every provider's HTTP policy (unset: the declared values).
    pub http_timeout: Option<Duration>,
    pub breaker_threshold: Option<u32>,
    pub breaker_cooldown: Option<Duration>,
}

impl IntegrationsConfig {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(IntegrationsConfig {
            set_vars: crate::services::integrations::declared_vars()
                .filter(|var| env.opt(var).is_some())
                .collect(),
            http_timeout: env
                .optional::<u64>("INTEGRATIONS_HTTP_TIMEOUT_MS")?
                .map(Duration::from_millis),
            breaker_threshold: env
                .optional::<u32>("INTEGRATIONS_BREAKER_THRESHOLD")?
                .map(|n| n.max(1)),
            breaker_cooldown: env
                .optional::<u64>("INTEGRATIONS_BREAKER_COOLDOWN_MS")?
                .map(Duration::from_millis),
        })
    }

    /// `policy` with the operator's overrides applied.
    pub fn tune(
        &self,
        policy: crate::services::integrations::HttpPolicy,
    ) -> crate::services::integrations::HttpPolicy {
        crate::services::integrations::HttpPolicy {
            timeout: self.http_timeout.unwrap_or(policy.timeout),
            breaker_threshold: self.breaker_threshold.unwrap_or(policy.breaker_threshold),
            breaker_cooldown: self.breaker_cooldown.unwrap_or(policy.breaker_cooldown),
            ..policy
        }
    }
}

// --- External integrations: Google, code execution, voice calls, partners, CDN ----
// (integrations-2) Each one is `None` while its switching variable is unset; the
// registry (`services::integrations::catalog`) declares the variables and reports why.

/// Google sign-in (OpenID Connect authorization-code flow with PKCE).
#[derive(Debug, Clone)]
pub struct GoogleOidcConfig {
    pub client_id: String,
    pub client_secret: Secret,
    /// Our callback (`/api/auth/google/callback` on the public origin).
    pub redirect_uri: String,
    /// Issuer whose `/.well-known/openid-configuration` is used; tests point it at a
    /// local OpenID Provider.
    pub issuer: String,
    /// When set, the callback redirects the browser here with the tokens in the URL
    /// fragment (never sent to a server); when unset it answers JSON.
    pub post_login_redirect: Option<String>,
    /// Lifetime of a started sign-in (state, nonce, PKCE verifier).
    pub flow_ttl: Duration,
}

/// OAuth client endpoints shared by Calendar and Drive (Google's defaults).
#[derive(Debug, Clone)]
pub struct GoogleOAuthEndpoints {
    pub auth_url: String,
    pub token_url: String,
}

/// Calendar events for meetings, created as one organizer account (its refresh token).
#[derive(Debug, Clone)]
pub struct GoogleCalendarConfig {
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    pub calendar_id: String,
    pub api_url: String,
    pub oauth: GoogleOAuthEndpoints,
}

/// Mentors' Drive connection (recordings), refresh tokens encrypted at rest.
#[derive(Debug, Clone)]
pub struct GoogleDriveConfig {
    pub client_id: String,
    pub client_secret: Secret,
    pub redirect_uri: String,
    /// AES-256-GCM key for refresh tokens at rest (32 bytes).
    pub token_key: Secret,
    pub api_url: String,
    pub oauth: GoogleOAuthEndpoints,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judge0Auth {
    /// Self-hosted Judge0: `X-Auth-Token` (its `AUTHN_HEADER` default).
    AuthToken,
    /// Judge0 on RapidAPI: `X-RapidAPI-Key` + `X-RapidAPI-Host`.
    RapidApi,
}

/// Code execution through Judge0 and the limits every run gets.
#[derive(Debug, Clone)]
pub struct Judge0Config {
    pub url: String,
    pub api_key: Option<Secret>,
    pub auth: Judge0Auth,
    pub max_source_bytes: usize,
    pub max_stdin_bytes: usize,
    pub cpu_time_limit_secs: f64,
    pub memory_limit_kb: u32,
    pub runs_per_minute: u32,
    /// Ask Judge0 to answer with the result (`wait=true`); else runs are polled.
    pub wait: bool,
    pub languages_ttl: Duration,
}

/// ElevenLabs conversational agent ("Aarya") placing interview calls.
#[derive(Debug, Clone)]
pub struct ElevenLabsConfig {
    pub api_url: String,
    pub api_key: Secret,
    pub agent_id: String,
    pub agent_phone_number_id: String,
    pub webhook_secret: Secret,
    /// Oldest accepted webhook timestamp (replay window).
    pub webhook_tolerance: Duration,
}

/// Graphy (Mr. Learn) public API: merchant id and key.
#[derive(Debug, Clone)]
pub struct GraphyConfig {
    pub api_url: String,
    pub mid: String,
    pub api_key: Secret,
}

/// A partner backend behind a fixed base URL and an optional key.
#[derive(Debug, Clone)]
pub struct PartnerConfig {
    pub base_url: String,
    pub api_key: Option<Secret>,
}

/// Proxy bounds shared by the partner proxies.
#[derive(Debug, Clone, Copy)]
pub struct ProxyLimits {
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ExternalConfig {
    pub google_oidc: Option<GoogleOidcConfig>,
    pub google_calendar: Option<GoogleCalendarConfig>,
    pub google_drive: Option<GoogleDriveConfig>,
    pub judge0: Option<Judge0Config>,
    pub elevenlabs: Option<ElevenLabsConfig>,
    pub graphy: Option<GraphyConfig>,
    pub mr_hire: Option<PartnerConfig>,
    pub class_agent: Option<PartnerConfig>,
    pub proxy_limits: Option<ProxyLimits>,
    /// Base URL of the CDN serving `/assets` (no trailing slash).
    pub assets_cdn_url: Option<String>,
}

impl ExternalConfig {
    pub fn proxy_limits(&self) -> ProxyLimits {
        self.proxy_limits.unwrap_or(ProxyLimits {
            max_request_bytes: 256 * 1024,
            max_response_bytes: 2 * 1024 * 1024,
        })
    }

    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let client = match (env.opt("GOOGLE_CLIENT_ID"), env.opt("GOOGLE_CLIENT_SECRET")) {
            (Some(id), Some(secret)) => Some((id.to_string(), Secret::new(secret))),
            _ => None,
        };
        let oauth = GoogleOAuthEndpoints {
            auth_url: http_url(env, "GOOGLE_OAUTH_AUTH_URL")?
                .unwrap_or_else(|| "https://accounts.google.com/o/oauth2/v2/auth".into()),
            token_url: http_url(env, "GOOGLE_OAUTH_TOKEN_URL")?
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
        };

        // Parsed even while sign-in is off, so a typo shows at boot, not at enablement.
        let issuer = http_url(env, "GOOGLE_OIDC_ISSUER")?;
        let post_login_redirect = http_url(env, "GOOGLE_POST_LOGIN_REDIRECT")?;
        let google_oidc = match (&client, http_url(env, "GOOGLE_REDIRECT_URI")?) {
            (Some((id, secret)), Some(redirect_uri)) => Some(GoogleOidcConfig {
                client_id: id.clone(),
                client_secret: secret.clone(),
                redirect_uri,
                issuer: issuer.unwrap_or_else(|| "https://accounts.google.com".into()),
                post_login_redirect,
                flow_ttl: env.seconds("GOOGLE_SIGNIN_TTL_SECONDS", 600)?,
            }),
            _ => None,
        };

        let google_calendar = match (&client, env.opt("GOOGLE_CALENDAR_REFRESH_TOKEN")) {
            (Some((id, secret)), Some(refresh)) => Some(GoogleCalendarConfig {
                client_id: id.clone(),
                client_secret: secret.clone(),
                refresh_token: Secret::new(refresh),
                calendar_id: env.opt("GOOGLE_CALENDAR_ID").unwrap_or("primary").into(),
                api_url: http_url(env, "GOOGLE_CALENDAR_API_URL")?
                    .unwrap_or_else(|| "https://www.googleapis.com/calendar/v3".into()),
                oauth: oauth.clone(),
            }),
            _ => None,
        };

        let token_key = match env.opt("TOKEN_ENCRYPTION_KEY") {
            None => None,
            Some(raw) => Some(Secret::new(hex::encode(encryption_key(raw)?))),
        };
        let google_drive = match (
            &client,
            http_url(env, "GOOGLE_DRIVE_REDIRECT_URI")?,
            token_key,
        ) {
            (Some((id, secret)), Some(redirect_uri), Some(token_key)) => Some(GoogleDriveConfig {
                client_id: id.clone(),
                client_secret: secret.clone(),
                redirect_uri,
                token_key,
                api_url: http_url(env, "GOOGLE_DRIVE_API_URL")?
                    .unwrap_or_else(|| "https://www.googleapis.com/drive/v3".into()),
                oauth,
            }),
            _ => None,
        };

        let judge0 = match http_url(env, "JUDGE0_URL")? {
            None => None,
            Some(url) => {
                let auth = match env
                    .opt("JUDGE0_AUTH")
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    None if url.contains(".rapidapi.com") => Judge0Auth::RapidApi,
                    None | Some("auth-token") => Judge0Auth::AuthToken,
                    Some("rapidapi") => Judge0Auth::RapidApi,
                    Some(other) => {
                        return Err(invalid(
                            "JUDGE0_AUTH",
                            format!("expected auth-token or rapidapi, got {other:?}"),
                        ));
                    }
                };
                let cpu: f64 = env.parse("CODE_RUN_CPU_SECONDS", 5.0)?;
                if !(cpu > 0.0 && cpu <= 15.0) {
                    return Err(invalid("CODE_RUN_CPU_SECONDS", "must be in (0, 15]"));
                }
                Some(Judge0Config {
                    url,
                    api_key: env.opt("JUDGE0_API_KEY").map(Secret::new),
                    auth,
                    max_source_bytes: positive(
                        env.parse("CODE_RUN_MAX_SOURCE_BYTES", 64 * 1024)?,
                        "CODE_RUN_MAX_SOURCE_BYTES",
                    )?,
                    max_stdin_bytes: positive(
                        env.parse("CODE_RUN_MAX_STDIN_BYTES", 64 * 1024)?,
                        "CODE_RUN_MAX_STDIN_BYTES",
                    )?,
                    cpu_time_limit_secs: cpu,
                    memory_limit_kb: env.parse("CODE_RUN_MEMORY_KB", 128_000)?,
                    runs_per_minute: env.parse::<u32>("CODE_RUN_PER_MINUTE", 10)?.max(1),
                    wait: env.bool("JUDGE0_WAIT", true)?,
                    languages_ttl: env.seconds("JUDGE0_LANGUAGES_TTL_SECONDS", 3600)?,
                })
            }
        };

        let elevenlabs = match (
            env.opt("ELEVENLABS_API_KEY"),
            env.opt("ELEVENLABS_AGENT_ID"),
            env.opt("ELEVENLABS_AGENT_PHONE_NUMBER_ID"),
            env.opt("ELEVENLABS_WEBHOOK_SECRET"),
        ) {
            (Some(key), Some(agent), Some(phone), Some(hook)) => Some(ElevenLabsConfig {
                api_url: http_url(env, "ELEVENLABS_API_URL")?
                    .unwrap_or_else(|| "https://api.elevenlabs.io".into()),
                api_key: Secret::new(key),
                agent_id: agent.into(),
                agent_phone_number_id: phone.into(),
                webhook_secret: Secret::new(hook),
                webhook_tolerance: env.seconds("ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS", 1800)?,
            }),
            // Half-configured voice calls stay off; the registry names what is missing.
            _ => None,
        };
        Ok(ExternalConfig {
            elevenlabs,
            ..Self::partners(env, google_oidc, google_calendar, google_drive, judge0)?
        })
    }

    /// The partner proxies and the CDN, plus what [`ExternalConfig::read`] parsed.
    fn partners(
        env: &Env<'_>,
        google_oidc: Option<GoogleOidcConfig>,
        google_calendar: Option<GoogleCalendarConfig>,
        google_drive: Option<GoogleDriveConfig>,
        judge0: Option<Judge0Config>,
    ) -> Result<Self, ConfigError> {
        let graphy = match (env.opt("GRAPHY_MID"), env.opt("GRAPHY_API_KEY")) {
            (Some(mid), Some(key)) => Some(GraphyConfig {
                api_url: http_url(env, "GRAPHY_API_URL")?
                    .unwrap_or_else(|| "https://api.ongraphy.com/public/v1".into()),
                mid: mid.into(),
                api_key: Secret::new(key),
            }),
            _ => None,
        };
        let partner = |url_var: &'static str, key_var: &'static str, key_required: bool| {
            let url = http_url(env, url_var)?;
            let key = env.opt(key_var).map(Secret::new);
            Ok::<_, ConfigError>(match (url, key) {
                (Some(base_url), key) if key.is_some() || !key_required => Some(PartnerConfig {
                    base_url,
                    api_key: key,
                }),
                _ => None,
            })
        };
        Ok(ExternalConfig {
            google_oidc,
            google_calendar,
            google_drive,
            judge0,
            elevenlabs: None,
            graphy,
            mr_hire: partner("MR_HIRE_BACKEND_URL", "MR_HIRE_API_KEY", false)?,
            class_agent: partner("CLASS_AGENT_URL", "CLASS_AGENT_API_KEY", true)?,
            proxy_limits: Some(ProxyLimits {
                max_request_bytes: env.parse("PARTNER_PROXY_MAX_REQUEST_BYTES", 256 * 1024)?,
                max_response_bytes: env
                    .parse("PARTNER_PROXY_MAX_RESPONSE_BYTES", 2 * 1024 * 1024)?,
            }),
            assets_cdn_url: http_url(env, "MAS_ASSETS_CDN_URL")?,
        })
    }
}

/// An absolute http(s) URL without a trailing slash, or `None` when unset.
fn http_url(env: &Env<'_>, var: &'static str) -> Result<Option<String>, ConfigError> {
    let Some(raw) = env.opt(var) else {
        return Ok(None);
    };
    let parsed = url::Url::parse(raw).map_err(|e| invalid(var, format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(var, "must be an absolute http:// or https:// URL"));
    }
    Ok(Some(raw.trim_end_matches('/').to_string()))
}

/// A 256-bit key given as 64 hex digits or standard base64 (never echoed back).
fn encryption_key(raw: &str) -> Result<[u8; 32], ConfigError> {
    use base64::Engine as _;
    let bytes = if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(raw).ok()
    } else {
        base64::engine::general_purpose::STANDARD.decode(raw).ok()
    };
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            invalid(
                "TOKEN_ENCRYPTION_KEY",
                "must be 32 bytes, as 64 hex digits or base64",
            )
        })
}

/// One clear line naming the offending variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration error: {0} is required but not set")]
    Missing(&'static str),
    #[error("configuration error: {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.into(),
    }
}

fn positive(value: usize, var: &'static str) -> Result<usize, ConfigError> {
    if value == 0 {
        Err(invalid(var, "must be at least 1"))
    } else {
        Ok(value)
    }
}

/// Reads variables from a map so tests can feed exact inputs.
struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn opt(&self, var: &'static str) -> Option<&str> {
        self.0.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str) -> Result<&str, ConfigError> {
        self.opt(var).ok_or(ConfigError::Missing(var))
    }

    fn parse<T: std::str::FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.opt(var) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e: T::Err| invalid(var, format!("{e} (got {raw:?})"))),
        }
    }

    fn optional<T: std::str::FromStr>(&self, var: &'static str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.opt(var)
            .map(|raw| {
                raw.parse()
                    .map_err(|e: T::Err| invalid(var, format!("{e} (got {raw:?})")))
            })
            .transpose()
    }

    fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.opt(var).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(invalid(
                var,
                format!("expected true or false, got {other:?}"),
            )),
        }
    }

    fn seconds(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.parse::<u64>(var, default).map(Duration::from_secs)
    }

    /// Both variables or neither: half a pair is a mistake worth stopping for.
    fn credentials(
        &self,
        email_var: &'static str,
        password_var: &'static str,
    ) -> Result<Option<Credentials>, ConfigError> {
        match (self.opt(email_var), self.opt(password_var)) {
            (None, None) => return Ok(None),
            (Some(_), None) => return Err(ConfigError::Missing(password_var)),
            (None, Some(_)) => return Err(ConfigError::Missing(email_var)),
            (Some(_), Some(_)) => {}
        }
        let email = self.required(email_var)?.to_string();
        if !crate::validation::is_email(&email) {
            return Err(invalid(email_var, "not an email address"));
        }
        let password = self.required(password_var)?;
        if password.len() < 8 {
            return Err(invalid(password_var, "must be at least 8 characters"));
        }
        Ok(Some(Credentials {
            email,
            password: Secret::new(password),
        }))
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(vars);

        let app_env = match env
            .opt("APP_ENV")
            .or_else(|| env.opt("NODE_ENV"))
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            // Unset means production: a forgotten variable must not open CORS to every origin.
            None | Some("production" | "prod") => AppEnv::Production,
            Some("development" | "dev") => AppEnv::Development,
            Some("test") => AppEnv::Test,
            Some(other) => {
                return Err(invalid(
                    "APP_ENV",
                    format!("expected development, test or production, got {other:?}"),
                ));
            }
        };

        let role = match env
            .opt("PROCESS_ROLE")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("all") => ProcessRole::All,
            Some("api") => ProcessRole::Api,
            Some("workers") => ProcessRole::Workers,
            Some(other) => {
                return Err(invalid(
                    "PROCESS_ROLE",
                    format!("expected all, api or workers, got {other:?}"),
                ));
            }
        };

        let database = DatabaseConfig::from_map(vars)?;
        let redis_url = env.required("REDIS_URL")?;
        if !(redis_url.starts_with("redis://") || redis_url.starts_with("rediss://")) {
            return Err(invalid(
                "REDIS_URL",
                "must start with redis:// or rediss://",
            ));
        }

        let jwt_secret = env.required("JWT_SECRET")?;
        if jwt_secret.len() < 32 {
            return Err(invalid("JWT_SECRET", "must be at least 32 bytes"));
        }

        let cors_allowed_origins = match env.opt("CORS_ALLOWED_ORIGINS") {
            None => Vec::new(),
            Some(raw) => serde_json::from_str::<Vec<String>>(raw).map_err(|e| {
                invalid(
                    "CORS_ALLOWED_ORIGINS",
                    format!("expected a JSON array of origins: {e}"),
                )
            })?,
        };

        let s3 = match env.opt("S3_BUCKET") {
            None => None,
            Some(bucket) => Some(S3Config {
                bucket: bucket.to_string(),
                region: env
                    .opt("AWS_REGION")
                    .or_else(|| env.opt("AWS_DEFAULT_REGION"))
                    .unwrap_or("us-east-1")
                    .to_string(),
                endpoint: env
                    .opt("S3_ENDPOINT")
                    .or_else(|| env.opt("AWS_ENDPOINT_URL"))
                    .map(str::to_string),
                presign_ttl: env.seconds("S3_PRESIGN_TTL_SECONDS", 900)?,
            }),
        };

        let smtp = match env.opt("SMTP_HOST") {
            None => None,
            Some(host) => Some(SmtpConfig {
                host: host.to_string(),
                port: env.parse("SMTP_PORT", 587)?,
                username: env.opt("SMTP_USER").map(str::to_string),
                password: env.opt("SMTP_PASSWORD").map(Secret::new),
                from: env
                    .opt("SMTP_FROM")
                    .unwrap_or("MAS <no-reply@myanalyticsschool.com>")
                    .to_string(),
                tls: match env.opt("SMTP_TLS").map(str::to_ascii_lowercase).as_deref() {
                    None | Some("starttls") => SmtpTls::StartTls,
                    Some("none") => SmtpTls::None,
                    Some("tls") => SmtpTls::Tls,
                    Some(other) => {
                        return Err(invalid(
                            "SMTP_TLS",
                            format!("expected none, starttls or tls, got {other:?}"),
                        ));
                    }
                },
            }),
        };

        let llm = match (env.opt("LITELLM_BASE_URL"), env.opt("LITELLM_API_KEY")) {
            (Some(base_url), Some(key)) => Some(LlmConfig {
                base_url: base_url.trim_end_matches('/').to_string(),
                api_key: Secret::new(key),
                model: env
                    .opt("LITELLM_MODEL")
                    .unwrap_or("gpt-4o-mini")
                    .to_string(),
                allow_private_resume_urls: env.bool("RESUME_URL_ALLOW_PRIVATE", false)?,
            }),
            (Some(_), None) => return Err(ConfigError::Missing("LITELLM_API_KEY")),
            _ => None,
        };

        Ok(Config {
            host: env.parse("HOST", IpAddr::from([0, 0, 0, 0]))?,
            port: env.parse("PORT", 8000)?,
            app_env,
            role,
            database_url: database.url,
            database_max_connections: database.max_connections,
            redis_url: Secret::new(redis_url),
            cors_allowed_origins,
            jwt_secret: Secret::new(jwt_secret),
            access_token_ttl: env.seconds("JWT_ACCESS_TTL_SECONDS", 15 * 60)?,
            refresh_token_ttl: env.seconds("JWT_REFRESH_TTL_SECONDS", 30 * 24 * 3600)?,
            admin: env.credentials("ADMIN_EMAIL", "ADMIN_PASSWORD")?,
            superadmin: env.credentials("SUPERADMIN_EMAIL", "SUPERADMIN_PASSWORD")?,
            enable_seeding: env.bool("ENABLE_SEEDING", false)?,
            assets_dir: PathBuf::from(env.opt("ASSETS_DIR").unwrap_or("server/assets")),
            body_limit_bytes: env.parse("BODY_LIMIT_BYTES", 20 * 1024 * 1024)?,
            shutdown_grace: env.seconds("SHUTDOWN_GRACE_SECONDS", 25)?,
            shutdown_drain: env.seconds("SHUTDOWN_DRAIN_SECONDS", 5)?,
            migrate_on_start: env.bool("MIGRATE_ON_START", true)?,
            app_version: app_version(env.opt("APP_VERSION"))?,
            internal_port: env.optional("INTERNAL_PORT")?,
            control_token: env.opt("CONTROL_TOKEN").map(Secret::new),
            login_max_attempts: env.parse("LOGIN_MAX_ATTEMPTS", 10)?,
            login_window: env.seconds("LOGIN_WINDOW_SECONDS", 15 * 60)?,
            trusted_proxy_hops: env.parse("TRUSTED_PROXY_HOPS", 0)?,
            s3,
            smtp,
            llm,
            integrations: IntegrationsConfig::read(&env)?,
            external: ExternalConfig::read(&env)?,
            queues: QueueConfig {
                prefix: env.opt("QUEUE_PREFIX").unwrap_or("bull").to_string(),
                email_concurrency: positive(
                    env.parse("QUEUE_EMAIL_CONCURRENCY", 5)?,
                    "QUEUE_EMAIL_CONCURRENCY",
                )?,
                database_concurrency: positive(
                    env.parse("QUEUE_DATABASE_CONCURRENCY", 2)?,
                    "QUEUE_DATABASE_CONCURRENCY",
                )?,
                cleanup_concurrency: positive(
                    env.parse("QUEUE_CLEANUP_CONCURRENCY", 1)?,
                    "QUEUE_CLEANUP_CONCURRENCY",
                )?,
                kpi_concurrency: positive(
                    env.parse("QUEUE_KPI_CONCURRENCY", 1)?,
                    "QUEUE_KPI_CONCURRENCY",
                )?,
                resume_concurrency: positive(
                    env.parse("QUEUE_RESUME_CONCURRENCY", 2)?,
                    "QUEUE_RESUME_CONCURRENCY",
                )?,
                attempts: env.parse("QUEUE_JOB_ATTEMPTS", 3)?.max(1),
                backoff: Duration::from_millis(env.parse("QUEUE_BACKOFF_MS", 2000)?),
                outbox_poll: Duration::from_millis(
                    env.parse("EMAIL_OUTBOX_POLL_MS", 2000)?.max(50),
                ),
                cleanup_every: env.seconds("CLEANUP_EVERY_SECONDS", 24 * 3600)?,
                kpi_every: env.seconds("KPI_EVERY_SECONDS", 15 * 60)?,
            },
            log_json: env.bool("LOG_JSON", app_env == AppEnv::Production)?,
            realtime: RealtimeConfig {
                redis_prefix: env
                    .opt("REALTIME_REDIS_PREFIX")
                    .unwrap_or("mas")
                    .to_string(),
                socketio_max_payload: env.parse("SOCKETIO_MAX_PAYLOAD_BYTES", 1_000_000)?,
                ws_max_message: env.parse("WS_MAX_MESSAGE_BYTES", 1024 * 1024)?,
                presence_ttl: env.seconds("PRESENCE_TTL_SECONDS", 30)?,
                terminal_pairing_ttl: env.seconds("TERMINAL_PAIRING_TTL_SECONDS", 300)?,
            },
        })
    }

    pub fn is_development(&self) -> bool {
        self.app_env == AppEnv::Development
    }

    pub fn database(&self) -> DatabaseConfig {
        DatabaseConfig {
            url: self.database_url.clone(),
            max_connections: self.database_max_connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HashMap<String, String> {
        [
            ("DATABASE_URL", "postgres://u@127.0.0.1/db"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("ADMIN_EMAIL", "admin@example.com"),
            ("ADMIN_PASSWORD", "admin-password"),
            ("SUPERADMIN_EMAIL", "root@example.com"),
            ("SUPERADMIN_PASSWORD", "root-password"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn queue_settings_parse_and_validate() {
        let c = Config::from_map(&base()).unwrap();
        assert_eq!(c.role, ProcessRole::All);
        assert_eq!((c.queues.prefix.as_str(), c.queues.attempts), ("bull", 3));
        assert_eq!(c.queues.kpi_every, Duration::from_secs(900));
        assert_eq!(c.queues.cleanup_every, Duration::from_secs(86_400));

        let mut v = base();
        v.insert("PROCESS_ROLE".into(), "workers".into());
        v.insert("QUEUE_RESUME_CONCURRENCY".into(), "7".into());
        let c = Config::from_map(&v).unwrap();
        assert!(c.role.runs_workers() && !c.role.serves_api());
        assert_eq!(c.queues.resume_concurrency, 7);

        let mut v = base();
        v.insert("QUEUE_EMAIL_CONCURRENCY".into(), "0".into());
        let err = Config::from_map(&v).unwrap_err().to_string();
        assert!(err.contains("QUEUE_EMAIL_CONCURRENCY"), "{err}");
    }

    #[test]
    fn defaults_apply() {
        let c = Config::from_map(&base()).unwrap();
        assert_eq!(c.port, 8000);
        assert_eq!(c.host.to_string(), "0.0.0.0");
        // Unset means production (strict CORS, JSON logs).
        assert_eq!(c.app_env, AppEnv::Production);
        assert!(!c.is_development() && c.log_json);
        assert_eq!(c.body_limit_bytes, 20 * 1024 * 1024);
        assert!(c.s3.is_none() && c.smtp.is_none() && c.llm.is_none());
        assert_eq!(c.trusted_proxy_hops, 0);
        assert!(c.migrate_on_start);
        assert_eq!(c.app_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(c.shutdown_drain, Duration::from_secs(5));
        assert!(c.internal_port.is_none() && c.control_token.is_none());

        let mut v = base();
        v.insert("APP_ENV".into(), "development".into());
        assert!(Config::from_map(&v).unwrap().is_development());
    }

    #[test]
    fn release_settings_parse() {
        let mut v = base();
        v.insert("MIGRATE_ON_START".into(), "false".into());
        v.insert("APP_VERSION".into(), "2026.12.1-green".into());
        v.insert("INTERNAL_PORT".into(), "9090".into());
        v.insert("CONTROL_TOKEN".into(), "control-token-value".into());
        v.insert("SHUTDOWN_DRAIN_SECONDS".into(), "0".into());
        let c = Config::from_map(&v).unwrap();
        assert!(!c.migrate_on_start);
        assert_eq!(c.app_version, "2026.12.1-green");
        assert_eq!(c.internal_port, Some(9090));
        assert_eq!(
            c.control_token.as_ref().map(Secret::expose),
            Some("control-token-value")
        );
        assert_eq!(c.shutdown_drain, Duration::ZERO);
        assert!(!format!("{c:?}").contains("control-token-value"));

        for (var, value) in [
            ("APP_VERSION", "has space"),
            ("INTERNAL_PORT", "70000"),
            ("MIGRATE_ON_START", "maybe"),
        ] {
            let mut v = base();
            v.insert(var.into(), value.into());
            let err = Config::from_map(&v).unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
        }
    }

    #[test]
    fn health_url_follows_host_and_port() {
        let map = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            local_health_url(&map(&[])).unwrap(),
            "http://127.0.0.1:8000/api/health"
        );
        assert_eq!(
            local_health_url(&map(&[("PORT", "3000"), ("HOST", "::")])).unwrap(),
            "http://127.0.0.1:3000/api/health"
        );
        assert_eq!(
            local_health_url(&map(&[("HOST", "::1")])).unwrap(),
            "http://[::1]:8000/api/health"
        );
        assert!(local_health_url(&map(&[("PORT", "x")])).is_err());
    }

    #[test]
    fn bootstrap_accounts_are_optional_but_come_in_pairs() {
        let mut v = base();
        for k in [
            "ADMIN_EMAIL",
            "ADMIN_PASSWORD",
            "SUPERADMIN_EMAIL",
            "SUPERADMIN_PASSWORD",
        ] {
            v.remove(k);
        }
        let c = Config::from_map(&v).unwrap();
        assert!(c.admin.is_none() && c.superadmin.is_none());
        v.insert("ADMIN_EMAIL".into(), "admin@example.com".into());
        assert_eq!(
            Config::from_map(&v).unwrap_err(),
            ConfigError::Missing("ADMIN_PASSWORD")
        );
        v.remove("ADMIN_EMAIL");
        v.insert("SUPERADMIN_PASSWORD".into(), "root-password".into());
        assert_eq!(
            Config::from_map(&v).unwrap_err(),
            ConfigError::Missing("SUPERADMIN_EMAIL")
        );
    }

    #[test]
    fn trusted_proxy_hops_parses() {
        let mut v = base();
        v.insert("TRUSTED_PROXY_HOPS".into(), "2".into());
        assert_eq!(Config::from_map(&v).unwrap().trusted_proxy_hops, 2);
        v.insert("TRUSTED_PROXY_HOPS".into(), "-1".into());
        let err = Config::from_map(&v).unwrap_err().to_string();
        assert!(err.contains("TRUSTED_PROXY_HOPS"), "{err}");
    }

    #[test]
    fn missing_variable_is_named() {
        let mut v = base();
        v.remove("DATABASE_URL");
        let err = Config::from_map(&v).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration error: DATABASE_URL is required but not set"
        );
    }

    #[test]
    fn malformed_values_are_named_without_secrets() {
        let mut v = base();
        v.insert("CORS_ALLOWED_ORIGINS".into(), "http://a.com".into());
        let err = Config::from_map(&v).unwrap_err().to_string();
        assert!(err.contains("CORS_ALLOWED_ORIGINS"), "{err}");

        let mut v = base();
        v.insert("PORT".into(), "eighty".into());
        assert!(
            Config::from_map(&v)
                .unwrap_err()
                .to_string()
                .contains("PORT")
        );

        let mut v = base();
        v.insert("JWT_SECRET".into(), "short-secret-value".into());
        let err = Config::from_map(&v).unwrap_err().to_string();
        assert!(err.contains("JWT_SECRET") && !err.contains("short-secret-value"));
    }

    #[test]
    fn node_env_is_accepted_and_secrets_hidden_in_debug() {
        let mut v = base();
        v.insert("NODE_ENV".into(), "production".into());
        v.insert(
            "CORS_ALLOWED_ORIGINS".into(),
            r#"["https://app.example.com"]"#.into(),
        );
        let c = Config::from_map(&v).unwrap();
        assert_eq!(c.app_env, AppEnv::Production);
        assert_eq!(c.cors_allowed_origins, vec!["https://app.example.com"]);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("0123456789abcdef") && !dbg.contains("admin-password"));
    }
}
