//! Every setting the server reads from its environment, parsed in one place.
//!
//! A missing or malformed value becomes one `ConfigError` line naming the variable;
//! secret values are never part of an error message or a `Debug` print.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub mod reference;

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

/// How Socket.IO rooms reach other replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketIoAdapter {
    /// Redis pub/sub: replicas act as one (the default).
    Redis,
    /// This process only: for a single replica (benchmarks, a laptop); a broadcast never
    /// leaves the process.
    Memory,
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
    /// A row handed to Redis but not settled after this long is handed over again (its job
    /// was lost, e.g. Redis restarted without persistence).
    pub redrive_after: Duration,
    pub cleanup_every: Duration,
    pub kpi_every: Duration,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub app_env: AppEnv,
    pub role: ProcessRole,
    pub database: DatabaseConfig,
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
    /// Object storage: the four buckets and their shared client settings.
    pub storage: StorageConfig,
    pub smtp: Option<SmtpConfig>,
    pub llm: Option<LlmConfig>,
    /// Shared facts about the third-party integrations (see the block below).
    pub integrations: IntegrationsConfig,
    /// Google, code execution, voice calls, partner proxies and the CDN.
    pub external: ExternalConfig,
    pub queues: QueueConfig,
    pub log_json: bool,
    pub realtime: RealtimeConfig,
    /// Abuse limits, key rotation, TLS to the data stores, session follow-up (see below).
    pub security: SecurityConfig,
    /// Payments, inbound webhooks, CRM calling, messaging and eSign (block below).
    pub commerce: CommerceConfig,
}

/// Socket.IO, presence and terminal relay settings.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// Prefix of every realtime Redis key and channel; replicas that must act as
    /// one share it (tests use a unique one per test).
    pub redis_prefix: String,
    /// Largest Socket.IO HTTP long-polling request body (engine.io `max_payload`).
    pub socketio_max_payload: u64,
    /// Packets buffered per socket before an emit to it fails: a burst (a room of
    /// hundreds joining at once, each announced to all) must fit.
    pub socketio_max_buffered: usize,
    pub socketio_adapter: SocketIoAdapter,
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
    /// Connections opened at start and kept open (at most `max_connections`).
    pub min_connections: u32,
    /// `DATABASE_CA_FILE`: PEM CA that signs the PostgreSQL server certificate
    /// (same as `sslrootcert=` in the URL; use with `sslmode=verify-full`).
    pub ca_file: Option<PathBuf>,
}

impl DatabaseConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::read(&Env::new(vars)?)
    }

    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let url = env.required("DATABASE_URL")?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("DATABASE_URL", "must start with postgres://"));
        }
        let max_connections = env.parse("DATABASE_MAX_CONNECTIONS", 20)?;
        if max_connections == 0 {
            return Err(invalid("DATABASE_MAX_CONNECTIONS", "must be at least 1"));
        }
        Ok(DatabaseConfig {
            url: Secret::new(url),
            max_connections,
            min_connections: env
                .parse("DATABASE_MIN_CONNECTIONS", 4u32)?
                .min(max_connections),
            ca_file: env.opt("DATABASE_CA_FILE").map(PathBuf::from),
        })
    }
}

/// Where `mas-server healthcheck` finds this server: `HOST` and `PORT` as the server
/// reads them, with a wildcard host reached over loopback.
pub fn local_health_url(vars: &HashMap<String, String>) -> Result<String, ConfigError> {
    let env = Env::new(vars)?;
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

// --- Security ----------------------------------------------------------------------
// Abuse limits, signing and encryption keys, TLS to the data stores, and how sessions
// on long-lived connections follow their account. Parsed by `SecurityConfig::read`.

/// Settings of the security hardening (each variable is documented in `docs/security.md`).
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// `RATE_LIMIT_<NAME>` for every [`LimitName`](crate::services::rate_limit::LimitName).
    pub rate_limits: RateLimits,
    /// `JWT_KEY_ID`: `kid` of the tokens signed with `JWT_SECRET` (default: derived
    /// from the secret, so a new secret always gets a new id).
    pub jwt_key_id: String,
    /// `JWT_PREVIOUS_SECRET` (+ `JWT_PREVIOUS_KEY_ID`): verified, never used to sign,
    /// so a rotation does not log anyone out; remove it once its tokens have expired.
    pub jwt_previous: Option<(String, Secret)>,
    /// `DATA_ENCRYPTION_KEYS`: `kid:hex32bytes,...`, the first encrypts, all decrypt.
    pub data_keys: Vec<(String, Secret)>,
    /// `SESSION_REAUTH_GRACE_SECONDS`: after a socket's or relay's access token
    /// expires, how long it may take to send a new one before it is disconnected.
    pub session_grace: Duration,
    /// `ACCOUNT_STATUS_CACHE_SECONDS`: upper bound on how long a replica trusts its
    /// in-process account status (invalidations normally arrive at once).
    pub account_cache_ttl: Duration,
    /// `REDIS_CA_FILE`: PEM CA that signs the Redis server certificate (`rediss://`).
    pub redis_ca_file: Option<PathBuf>,
    /// Test only (`APP_ENV=test`): `OUTBOUND_DNS_SERVER`, the `ip:port` of the DNS
    /// server the guarded outbound fetches (resume URLs) resolve with.
    pub outbound_dns_server: Option<std::net::SocketAddr>,
    /// Test only: `OUTBOUND_CONNECT_TO` = `ip:port=ip:port,...`, where a guarded
    /// fetch dials after the address passed the check (so a test never sends traffic
    /// to the public address it pretends to fetch from).
    pub outbound_connect_to: Vec<(std::net::SocketAddr, std::net::SocketAddr)>,
}

/// One limit's ceilings; `None` leaves that scope unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitRule {
    pub per_user: Option<LimitWindow>,
    pub per_client: Option<LimitWindow>,
}

/// At most `max` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitWindow {
    pub max: u32,
    pub window: Duration,
}

/// Every limit's rule, by name.
#[derive(Debug, Clone, Default)]
pub struct RateLimits(pub HashMap<crate::services::rate_limit::LimitName, LimitRule>);

impl RateLimits {
    pub fn rule(&self, name: crate::services::rate_limit::LimitName) -> LimitRule {
        self.0
            .get(&name)
            .copied()
            .unwrap_or_else(|| name.default_rule())
    }
}

/// `30s`, `10m`, `1h`, `2d` or plain seconds.
fn parse_window(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (digits, unit) = match raw.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&raw[..i], c),
        _ => (raw, 's'),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("window {raw:?} is not a number of s, m, h or d"))?;
    let secs = match unit {
        's' => n,
        'm' => n * 60,
        'h' => n * 3600,
        'd' => n * 86_400,
        _ => {
            return Err(format!(
                "window {raw:?} has an unknown unit (use s, m, h or d)"
            ));
        }
    };
    if secs == 0 {
        return Err("a window must be at least one second".into());
    }
    Ok(Duration::from_secs(secs))
}

/// `off`, or `user=MAX/WINDOW,client=MAX/WINDOW` (either part may be left out).
pub fn parse_limit_rule(raw: &str) -> Result<LimitRule, String> {
    let mut rule = LimitRule {
        per_user: None,
        per_client: None,
    };
    if raw.trim().eq_ignore_ascii_case("off") {
        return Ok(rule);
    }
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (scope, spec) = part
            .split_once('=')
            .ok_or_else(|| format!("expected scope=MAX/WINDOW, got {part:?}"))?;
        let (max, window) = spec
            .split_once('/')
            .ok_or_else(|| format!("expected MAX/WINDOW after {scope}=, got {spec:?}"))?;
        let max: u32 = max
            .trim()
            .parse()
            .map_err(|_| format!("{max:?} is not a request count"))?;
        if max == 0 {
            return Err("a maximum must be at least 1 (use off to disable)".into());
        }
        let window = LimitWindow {
            max,
            window: parse_window(window)?,
        };
        match scope.trim() {
            "user" => rule.per_user = Some(window),
            "client" => rule.per_client = Some(window),
            other => return Err(format!("unknown scope {other:?} (use user or client)")),
        }
    }
    Ok(rule)
}

/// A short public id for a signing key: the first 8 bytes of its SHA-256, in hex.
pub fn key_fingerprint(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(secret.as_bytes())[..8])
}

fn key_id(raw: &str, var: &'static str) -> Result<String, ConfigError> {
    let valid = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(raw.to_string())
    } else {
        Err(invalid(var, "must be 1 to 64 of A-Z, a-z, 0-9, -, _ or ."))
    }
}

impl SecurityConfig {
    fn read(env: &Env<'_>, app_env: AppEnv) -> Result<Self, ConfigError> {
        let mut rate_limits = HashMap::new();
        for name in crate::services::rate_limit::LimitName::ALL {
            let var = name.env_var();
            let rule = match env.opt(var) {
                // CODE_RUN_PER_MINUTE (the original setting) is the per-user ceiling of code
                // runs unless RATE_LIMIT_CODE_RUN says otherwise.
                None if name == crate::services::rate_limit::LimitName::CodeRun => LimitRule {
                    per_user: Some(LimitWindow {
                        max: env.parse::<u32>("CODE_RUN_PER_MINUTE", 10)?.max(1),
                        window: Duration::from_secs(60),
                    }),
                    ..name.default_rule()
                },
                None => name.default_rule(),
                Some(raw) => parse_limit_rule(raw).map_err(|reason| invalid(var, reason))?,
            };
            rate_limits.insert(name, rule);
        }

        let current = env.required("JWT_SECRET")?;
        let jwt_key_id = match env.opt("JWT_KEY_ID") {
            Some(raw) => key_id(raw, "JWT_KEY_ID")?,
            None => key_fingerprint(current),
        };
        let jwt_previous = match env.opt("JWT_PREVIOUS_SECRET") {
            None => None,
            Some(previous) => {
                if previous.len() < 32 {
                    return Err(invalid("JWT_PREVIOUS_SECRET", "must be at least 32 bytes"));
                }
                let kid = match env.opt("JWT_PREVIOUS_KEY_ID") {
                    Some(raw) => key_id(raw, "JWT_PREVIOUS_KEY_ID")?,
                    None => key_fingerprint(previous),
                };
                if kid == jwt_key_id {
                    return Err(invalid(
                        "JWT_PREVIOUS_KEY_ID",
                        "must differ from JWT_KEY_ID",
                    ));
                }
                Some((kid, Secret::new(previous)))
            }
        };

        let mut data_keys: Vec<(String, Secret)> = Vec::new();
        if let Some(raw) = env.opt("DATA_ENCRYPTION_KEYS") {
            for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let (kid, key) = entry.split_once(':').ok_or_else(|| {
                    invalid("DATA_ENCRYPTION_KEYS", "expected kid:hexkey entries")
                })?;
                let kid = key_id(kid.trim(), "DATA_ENCRYPTION_KEYS")?;
                let bytes = hex::decode(key.trim()).map_err(|_| {
                    invalid("DATA_ENCRYPTION_KEYS", format!("key {kid} is not hex"))
                })?;
                if bytes.len() != 32 {
                    return Err(invalid(
                        "DATA_ENCRYPTION_KEYS",
                        format!("key {kid} must be 32 bytes (64 hex digits)"),
                    ));
                }
                if data_keys.iter().any(|(k, _)| *k == kid) {
                    return Err(invalid(
                        "DATA_ENCRYPTION_KEYS",
                        format!("key id {kid} appears twice"),
                    ));
                }
                data_keys.push((kid, Secret::new(key.trim())));
            }
        }

        let test_only = |var: &'static str| -> Result<(), ConfigError> {
            if env.opt(var).is_some() && app_env != AppEnv::Test {
                Err(invalid(var, "is only allowed with APP_ENV=test"))
            } else {
                Ok(())
            }
        };
        test_only("OUTBOUND_DNS_SERVER")?;
        test_only("OUTBOUND_CONNECT_TO")?;
        let mut outbound_connect_to = Vec::new();
        if let Some(raw) = env.opt("OUTBOUND_CONNECT_TO") {
            for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let parsed = pair
                    .split_once('=')
                    .and_then(|(from, to)| Some((from.parse().ok()?, to.parse().ok()?)));
                outbound_connect_to.push(parsed.ok_or_else(|| {
                    invalid("OUTBOUND_CONNECT_TO", "expected ip:port=ip:port entries")
                })?);
            }
        }

        Ok(SecurityConfig {
            rate_limits: RateLimits(rate_limits),
            jwt_key_id,
            jwt_previous,
            data_keys,
            session_grace: env.seconds("SESSION_REAUTH_GRACE_SECONDS", 30)?,
            account_cache_ttl: env.seconds("ACCOUNT_STATUS_CACHE_SECONDS", 60)?,
            redis_ca_file: env.opt("REDIS_CA_FILE").map(PathBuf::from),
            outbound_dns_server: env.optional("OUTBOUND_DNS_SERVER")?,
            outbound_connect_to,
        })
    }
}

// --- Object storage: four buckets ---------------------------------------------------
// Each bucket is its own integration (`s3-documents`, ...): boot never fails on a missing
// one (a blue/green standby must come up whatever is configured, and `/api/health`
// never depends on a third party); a purpose whose bucket is unset answers 503
// INTEGRATION_DISABLED at use. The invoice bucket is optional by design: without it an
// invoice is still emailed, just not archived.

/// A bucket name (under our variable or the seed's, see `reference::ALIASES`), checked
/// against S3's naming rules so a typo fails at start.
fn bucket(env: &Env<'_>, var: &'static str) -> Result<Option<String>, ConfigError> {
    let Some(bucket) = env.opt(var) else {
        return Ok(None);
    };
    // 3-63 of a-z, 0-9, '.', '-', starting with a letter or digit.
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.as_bytes()[0].is_ascii_alphanumeric();
    if !valid {
        return Err(invalid(
            var,
            "not an S3 bucket name (3-63 characters of a-z, 0-9, '.', '-')",
        ));
    }
    Ok(Some(bucket.to_string()))
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub region: String,
    /// Custom endpoint (moto, MinIO); path-style addressing is used when set.
    pub endpoint: Option<String>,
    /// Validity of a presigned upload URL.
    pub presign_ttl: Duration,
    /// Validity of a signed GET of a private object: short, it is a bearer credential.
    pub private_get_ttl: Duration,
    /// How long an issued upload may stay unconfirmed before the cleanup deletes it.
    pub upload_confirm_window: Duration,
    /// Recordings of meetings (private).
    pub recordings: Option<String>,
    /// Student documents: resumes, documents, avatars, signed agreements (private).
    pub documents: Option<String>,
    /// Banner assets (public: served from `MAS_ASSETS_CDN_URL` or the bucket origin).
    pub assets: Option<String>,
    /// Invoices (private, optional).
    pub invoices: Option<String>,
    /// `MAS_ASSETS_CDN_URL`: public base URL (a CDN) of the assets bucket and of `/assets/*`.
    pub assets_cdn_url: Option<String>,
}

impl StorageConfig {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let assets_cdn_url = optional_http_url(env, "MAS_ASSETS_CDN_URL")?;
        Ok(StorageConfig {
            region: env.opt("AWS_REGION").unwrap_or("us-east-1").to_string(),
            endpoint: env
                .opt("S3_ENDPOINT")
                .map(|e| e.trim_end_matches('/').to_string()),
            presign_ttl: env.seconds("S3_PRESIGN_TTL_SECONDS", 900)?,
            private_get_ttl: bounded_seconds(env, "S3_PRIVATE_GET_TTL_SECONDS", 300, 1, 3600)?,
            upload_confirm_window: env.seconds("UPLOAD_CONFIRM_WINDOW_SECONDS", 24 * 3600)?,
            recordings: bucket(env, "S3_RECORDINGS_BUCKET")?,
            documents: bucket(env, "S3_DOCUMENTS_BUCKET")?,
            assets: bucket(env, "S3_ASSETS_BUCKET")?,
            invoices: bucket(env, "S3_INVOICES_BUCKET")?,
            assets_cdn_url,
        })
    }
}

fn bounded_seconds(
    env: &Env<'_>,
    var: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    let secs = env.parse::<u64>(var, default)?;
    if !(min..=max).contains(&secs) {
        return Err(invalid(var, format!("must be between {min} and {max}")));
    }
    Ok(Duration::from_secs(secs))
}

/// An absolute http(s) URL without a trailing slash.
fn http_url(var: &'static str, raw: &str) -> Result<String, ConfigError> {
    let parsed = reqwest::Url::parse(raw).map_err(|e| invalid(var, format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(var, "must be an http(s) URL"));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

// --- Payments, webhooks, CRM calling, messaging, eSign ------------------------------
// Outbound calls of each provider are one integration, its inbound webhook another
// (the webhook needs only its secret): either can be configured alone.

/// Razorpay: orders, checkout verification, refunds (key pair) and webhooks (secret).
#[derive(Debug, Clone)]
pub struct RazorpayConfig {
    pub key_id: String,
    pub key_secret: Secret,
    /// `https://api.razorpay.com` unless `RAZORPAY_BASE_URL` points elsewhere (tests).
    pub base_url: String,
}

/// Exotel click-to-call and SMS.
#[derive(Debug, Clone)]
pub struct ExotelConfig {
    pub api_key: String,
    pub api_token: Secret,
    pub account_sid: String,
    /// The regional API host: `api.exotel.com` (Singapore) or `api.in.exotel.com` (Mumbai).
    pub subdomain: String,
    /// The ExoPhone shown to the called party and used as the SMS sender.
    pub caller_id: String,
    /// `https://<subdomain>` unless `EXOTEL_BASE_URL` points elsewhere (tests).
    pub base_url: String,
}

/// WhatsApp Cloud API template sends.
#[derive(Debug, Clone)]
pub struct WhatsAppConfig {
    pub access_token: Secret,
    pub phone_number_id: String,
    pub graph_api_version: String,
    /// `https://graph.facebook.com` unless `WHATSAPP_GRAPH_BASE_URL` points elsewhere.
    pub base_url: String,
    pub booking_template: String,
    pub reminder_template: String,
    pub template_language: String,
}

/// Leegality eSign of the PAP agreement.
#[derive(Debug, Clone)]
pub struct LeegalityConfig {
    pub auth_token: Secret,
    /// `https://app1.leegality.com/api` (production) or the sandbox, or a test server.
    pub base_url: String,
    /// The published workflow (with the PAP template) signing requests are made from.
    pub pap_profile_id: String,
    pub pap_document_name: String,
}

/// The webhooks' verification secrets; each webhook answers 503 while its is unset.
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets {
    pub razorpay: Option<Secret>,
    pub whatsapp_app_secret: Option<Secret>,
    pub whatsapp_verify_token: Option<Secret>,
    pub exotel_token: Option<Secret>,
    pub leegality_private_salt: Option<Secret>,
}

#[derive(Debug, Clone, Default)]
pub struct CommerceConfig {
    /// Where providers reach this backend (`BACKEND_PUBLIC_URL`): callback URLs.
    pub public_url: Option<String>,
    pub razorpay: Option<RazorpayConfig>,
    pub exotel: Option<ExotelConfig>,
    pub whatsapp: Option<WhatsAppConfig>,
    pub leegality: Option<LeegalityConfig>,
    pub webhooks: WebhookSecrets,
    /// Bearer tokens mr-hire-backend presents (current, and the previous one while
    /// rotating); its routes answer 503 while none is set.
    pub mr_hire_tokens: Vec<Secret>,
    /// Largest webhook body accepted (413 above); far below the global body limit.
    pub webhook_body_limit: usize,
}

impl CommerceConfig {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let public_url = match env.opt("BACKEND_PUBLIC_URL") {
            None => None,
            Some(url) => Some(http_url("BACKEND_PUBLIC_URL", url)?),
        };
        let razorpay = match env.pair("RAZORPAY_KEY_ID", "RAZORPAY_KEY_SECRET")? {
            None => None,
            Some((key_id, key_secret)) => Some(RazorpayConfig {
                key_id: key_id.to_string(),
                key_secret: Secret::new(key_secret),
                base_url: http_url(
                    "RAZORPAY_BASE_URL",
                    env.opt("RAZORPAY_BASE_URL")
                        .unwrap_or("https://api.razorpay.com"),
                )?,
            }),
        };
        let exotel = match env.opt("EXOTEL_API_KEY") {
            None => None,
            Some(api_key) => {
                let subdomain = exotel_subdomain(env.required("EXOTEL_SUBDOMAIN")?)?;
                let base_url = match env.opt("EXOTEL_BASE_URL") {
                    Some(url) => http_url("EXOTEL_BASE_URL", url)?,
                    None => format!("https://{subdomain}"),
                };
                Some(ExotelConfig {
                    api_key: api_key.to_string(),
                    api_token: Secret::new(env.required("EXOTEL_API_TOKEN")?),
                    account_sid: env.required("EXOTEL_SID")?.to_string(),
                    subdomain,
                    caller_id: env.required("EXOTEL_CALLER_ID")?.to_string(),
                    base_url,
                })
            }
        };
        let whatsapp = match env.pair("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID")? {
            None => None,
            Some((token, phone_number_id)) => {
                let version = env.opt("WHATSAPP_GRAPH_API_VERSION").unwrap_or("v21.0");
                let valid_version = version
                    .strip_prefix('v')
                    .and_then(|v| v.split_once('.'))
                    .is_some_and(|(major, minor)| {
                        !major.is_empty()
                            && !minor.is_empty()
                            && major
                                .bytes()
                                .chain(minor.bytes())
                                .all(|b| b.is_ascii_digit())
                    });
                if !valid_version {
                    return Err(invalid(
                        "WHATSAPP_GRAPH_API_VERSION",
                        format!("expected a Graph API version like v21.0, got {version:?}"),
                    ));
                }
                Some(WhatsAppConfig {
                    access_token: Secret::new(token),
                    phone_number_id: phone_number_id.to_string(),
                    graph_api_version: version.to_string(),
                    base_url: http_url(
                        "WHATSAPP_GRAPH_BASE_URL",
                        env.opt("WHATSAPP_GRAPH_BASE_URL")
                            .unwrap_or("https://graph.facebook.com"),
                    )?,
                    booking_template: env
                        .opt("WHATSAPP_TEMPLATE_BOOKING_CONFIRMATION")
                        .unwrap_or("booking_confirmation")
                        .to_string(),
                    reminder_template: env
                        .opt("WHATSAPP_TEMPLATE_REMINDER")
                        .unwrap_or("session_reminder")
                        .to_string(),
                    template_language: env
                        .opt("WHATSAPP_TEMPLATE_LANGUAGE")
                        .unwrap_or("en")
                        .to_string(),
                })
            }
        };
        let leegality = match env.pair("LEEGALITY_AUTH_TOKEN", "LEEGALITY_PAP_PROFILE_ID")? {
            None => None,
            Some((token, profile)) => Some(LeegalityConfig {
                auth_token: Secret::new(token),
                base_url: http_url(
                    "LEEGALITY_BASE_URL",
                    env.opt("LEEGALITY_BASE_URL")
                        .unwrap_or("https://app1.leegality.com/api"),
                )?,
                pap_profile_id: profile.to_string(),
                pap_document_name: env
                    .opt("LEEGALITY_PAP_DOCUMENT_NAME")
                    .unwrap_or("PAP Agreement")
                    .to_string(),
            }),
        };
        let webhooks = WebhookSecrets {
            razorpay: env.secret_min("RAZORPAY_WEBHOOK_SECRET", 8)?,
            whatsapp_app_secret: env.secret_min("WHATSAPP_APP_SECRET", 8)?,
            whatsapp_verify_token: env.secret_min("WHATSAPP_VERIFY_TOKEN", 8)?,
            exotel_token: env.secret_min("EXOTEL_WEBHOOK_TOKEN", 16)?,
            leegality_private_salt: env.secret_min("LEEGALITY_PRIVATE_SALT", 8)?,
        };
        let mr_hire_tokens = match (
            env.secret_min("MR_HIRE_SERVICE_TOKEN", 32)?,
            env.secret_min("MR_HIRE_SERVICE_TOKEN_PREVIOUS", 32)?,
        ) {
            (None, Some(_)) => return Err(ConfigError::Missing("MR_HIRE_SERVICE_TOKEN")),
            (current, previous) => current.into_iter().chain(previous).collect(),
        };
        let webhook_body_limit: usize = env.parse("WEBHOOK_BODY_LIMIT_BYTES", 256 * 1024)?;
        if !(1024..=2 * 1024 * 1024).contains(&webhook_body_limit) {
            return Err(invalid(
                "WEBHOOK_BODY_LIMIT_BYTES",
                "must be between 1024 and 2097152",
            ));
        }
        Ok(CommerceConfig {
            public_url,
            razorpay,
            exotel,
            whatsapp,
            leegality,
            webhooks,
            mr_hire_tokens,
            webhook_body_limit,
        })
    }
}

// --- External integrations: Google, code execution, voice calls, partners, CDN ----
// Each one is `None` while its switching variable is unset; the
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
            auth_url: optional_http_url(env, "GOOGLE_OAUTH_AUTH_URL")?
                .unwrap_or_else(|| "https://accounts.google.com/o/oauth2/v2/auth".into()),
            token_url: optional_http_url(env, "GOOGLE_OAUTH_TOKEN_URL")?
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
        };

        // Parsed even while sign-in is off, so a typo shows at boot, not at enablement.
        let issuer = optional_http_url(env, "GOOGLE_OIDC_ISSUER")?;
        let post_login_redirect = optional_http_url(env, "GOOGLE_POST_LOGIN_REDIRECT")?;
        let google_oidc = match (&client, optional_http_url(env, "GOOGLE_REDIRECT_URI")?) {
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
                api_url: optional_http_url(env, "GOOGLE_CALENDAR_API_URL")?
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
            optional_http_url(env, "GOOGLE_DRIVE_REDIRECT_URI")?,
            token_key,
        ) {
            (Some((id, secret)), Some(redirect_uri), Some(token_key)) => Some(GoogleDriveConfig {
                client_id: id.clone(),
                client_secret: secret.clone(),
                redirect_uri,
                token_key,
                api_url: optional_http_url(env, "GOOGLE_DRIVE_API_URL")?
                    .unwrap_or_else(|| "https://www.googleapis.com/drive/v3".into()),
                oauth,
            }),
            _ => None,
        };

        let judge0 = match optional_http_url(env, "JUDGE0_URL")? {
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
                api_url: optional_http_url(env, "ELEVENLABS_API_URL")?
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
                api_url: optional_http_url(env, "GRAPHY_API_URL")?
                    .unwrap_or_else(|| "https://api.ongraphy.com/public/v1".into()),
                mid: mid.into(),
                api_key: Secret::new(key),
            }),
            _ => None,
        };
        let partner = |url_var: &'static str, key_var: &'static str, key_required: bool| {
            let url = optional_http_url(env, url_var)?;
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
        })
    }
}

/// `EXOTEL_SUBDOMAIN` is a regional API host such as `api.exotel.com` (Singapore) or
/// `api.in.exotel.com` (Mumbai) — https://developer.exotel.com/docs/voice-v1/api-reference/connect-two-numbers
/// ("Regional Endpoints"). Exotel's console writes the URL as
/// `https://<key>:<token><subdomain>`, so a leading `@` is accepted and dropped; a
/// scheme, a path or another host is an error at start, not a failed call later.
pub fn exotel_subdomain(raw: &str) -> Result<String, ConfigError> {
    const VAR: &str = "EXOTEL_SUBDOMAIN";
    let host = raw.trim().trim_start_matches('@').to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let regional = match labels.as_slice() {
        ["api", "exotel", "com"] => true,
        ["api", region, "exotel", "com"] => {
            !region.is_empty() && region.bytes().all(|b| b.is_ascii_lowercase())
        }
        _ => false,
    };
    if !regional {
        return Err(invalid(
            VAR,
            format!(
                "expected the regional API host, like api.exotel.com or api.in.exotel.com (no scheme, no path), got {raw:?}"
            ),
        ));
    }
    Ok(host)
}

/// [`http_url`] of `var`, or `None` when unset.
fn optional_http_url(env: &Env<'_>, var: &'static str) -> Result<Option<String>, ConfigError> {
    env.opt(var).map(|raw| http_url(var, raw)).transpose()
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
    #[error(
        "configuration error: {ours} and {seed} name the same setting with different values: set one"
    )]
    Conflict {
        ours: &'static str,
        seed: &'static str,
    },
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

/// Reads variables from a map so tests can feed exact inputs; records every name read so a
/// test can hold the documented contract (`reference`) to what is really read.
struct Env<'a> {
    vars: &'a HashMap<String, String>,
    read: RefCell<BTreeSet<&'static str>>,
}

impl<'a> Env<'a> {
    /// Refuses a variable set under both our name and the seed's with different values.
    fn new(vars: &'a HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        // Every pair of names of one setting (ours and the seed's, or two of the seed's).
        for (ours, seed) in reference::ALIASES {
            let others = std::iter::once(*ours).chain(reference::aliases_of(ours));
            for other in others.filter(|o| o != seed) {
                if let (Some(a), Some(b)) = (get(other), get(seed))
                    && a != b
                {
                    return Err(ConfigError::Conflict { ours: other, seed });
                }
            }
        }
        Ok(Env {
            vars,
            read: RefCell::default(),
        })
    }

    fn raw(&self, var: &str) -> Option<&'a str> {
        self.vars
            .get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Our name, else the seed's (`reference::ALIASES`).
    fn opt(&self, var: &'static str) -> Option<&'a str> {
        self.read.borrow_mut().insert(var);
        self.raw(var)
            .or_else(|| reference::aliases_of(var).find_map(|seed| self.raw(seed)))
    }

    /// `REDIS_URL`, or the seed's `REDIS_HOST`/`REDIS_PORT`/`REDIS_PASSWORD` composed into one;
    /// both forms set must name the same server.
    fn redis_url(&self) -> Result<String, ConfigError> {
        let url = self.opt("REDIS_URL");
        let Some(host) = self.opt("REDIS_HOST") else {
            return url
                .map(str::to_string)
                .ok_or(ConfigError::Missing("REDIS_URL"));
        };
        let port: u16 = self.parse("REDIS_PORT", 6379)?;
        let invalid_host = || invalid("REDIS_HOST", "not a host name or address");
        let mut composed = url::Url::parse("redis://localhost").map_err(|_| invalid_host())?;
        composed.set_host(Some(host)).map_err(|_| invalid_host())?;
        let _ = composed.set_port(Some(port));
        if let Some(password) = self.opt("REDIS_PASSWORD") {
            let _ = composed.set_password(Some(password));
        }
        let composed = composed.to_string();
        match url {
            None => Ok(composed),
            Some(url) => {
                let same = |u: &str| {
                    url::Url::parse(u)
                        .map(|u| (u.host_str().map(str::to_owned), u.port().unwrap_or(6379)))
                        .ok()
                };
                let names_same_server = same(url).is_some() && same(url) == same(&composed);
                if names_same_server {
                    Ok(url.to_string())
                } else {
                    Err(ConfigError::Conflict {
                        ours: "REDIS_URL",
                        seed: "REDIS_HOST",
                    })
                }
            }
        }
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

    /// Both variables or neither (half a pair names the missing one).
    fn pair(
        &self,
        first: &'static str,
        second: &'static str,
    ) -> Result<Option<(&str, &str)>, ConfigError> {
        match (self.opt(first), self.opt(second)) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::Missing(second)),
            (None, Some(_)) => Err(ConfigError::Missing(first)),
            (Some(a), Some(b)) => Ok(Some((a, b))),
        }
    }

    /// An optional secret of at least `min` bytes (a short one is guessable).
    fn secret_min(&self, var: &'static str, min: usize) -> Result<Option<Secret>, ConfigError> {
        match self.opt(var) {
            None => Ok(None),
            Some(v) if v.len() < min => {
                Err(invalid(var, format!("must be at least {min} characters")))
            }
            Some(v) => Ok(Some(Secret::new(v))),
        }
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
        Self::read(&Env::new(vars)?)
    }

    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let app_env = match env.opt("APP_ENV").map(str::to_ascii_lowercase).as_deref() {
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

        let database = DatabaseConfig::read(env)?;
        let redis_url = env.redis_url()?;
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

        let storage = StorageConfig::read(env)?;
        let commerce = CommerceConfig::read(env)?;

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
            database,
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
            storage,
            smtp,
            llm,
            integrations: IntegrationsConfig::read(env)?,
            external: ExternalConfig::read(env)?,
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
                redrive_after: env.seconds("QUEUE_REDRIVE_AFTER_SECONDS", 600)?,
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
                socketio_max_buffered: positive(
                    env.parse("SOCKETIO_MAX_BUFFERED_PACKETS", 2048)?,
                    "SOCKETIO_MAX_BUFFERED_PACKETS",
                )?,
                socketio_adapter: match env
                    .opt("SOCKETIO_ADAPTER")
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    None | Some("redis") => SocketIoAdapter::Redis,
                    Some("memory") => SocketIoAdapter::Memory,
                    Some(other) => {
                        return Err(invalid(
                            "SOCKETIO_ADAPTER",
                            format!("expected redis or memory, got {other:?}"),
                        ));
                    }
                },
                ws_max_message: env.parse("WS_MAX_MESSAGE_BYTES", 1024 * 1024)?,
                presence_ttl: env.seconds("PRESENCE_TTL_SECONDS", 30)?,
                terminal_pairing_ttl: env.seconds("TERMINAL_PAIRING_TTL_SECONDS", 300)?,
            },
            security: SecurityConfig::read(env, app_env)?,
            commerce,
        })
    }

    pub fn is_development(&self) -> bool {
        self.app_env == AppEnv::Development
    }

    pub fn database(&self) -> DatabaseConfig {
        self.database.clone()
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
        assert!(c.storage.documents.is_none() && c.smtp.is_none() && c.llm.is_none());
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
    fn buckets_accept_the_seed_names_and_refuse_conflicts() {
        let mut v = base();
        v.insert("AWS_S3_BUCKET_NAME".into(), "mas-recordings".into());
        v.insert("S3_BUCKET".into(), "mas-docs".into());
        v.insert("S3_DOCUMENTS_BUCKET".into(), "mas-docs".into());
        v.insert("S3_ASSETS_BUCKET".into(), "mas-assets".into());
        v.insert(
            "MAS_ASSETS_CDN_URL".into(),
            "https://cdn.example.com/".into(),
        );
        let c = Config::from_map(&v).unwrap();
        assert_eq!(c.storage.recordings.as_deref(), Some("mas-recordings"));
        // The same value under two names is fine.
        assert_eq!(c.storage.documents.as_deref(), Some("mas-docs"));
        assert_eq!(c.storage.assets.as_deref(), Some("mas-assets"));
        assert_eq!(c.storage.invoices, None);
        assert_eq!(
            c.storage.assets_cdn_url.as_deref(),
            Some("https://cdn.example.com")
        );
        assert_eq!(c.storage.private_get_ttl, Duration::from_secs(300));

        v.insert("S3_BUCKET".into(), "other-docs".into());
        let err = Config::from_map(&v).unwrap_err().to_string();
        assert!(
            err.contains("S3_DOCUMENTS_BUCKET") && err.contains("S3_BUCKET"),
            "{err}"
        );

        let mut v = base();
        v.insert("S3_INVOICES_BUCKET".into(), "Bad_Bucket".into());
        let err = Config::from_map(&v).unwrap_err().to_string();
        assert!(err.contains("S3_INVOICES_BUCKET"), "{err}");
    }

    #[test]
    fn exotel_subdomain_is_a_regional_api_host() {
        assert_eq!(
            exotel_subdomain("api.exotel.com").unwrap(),
            "api.exotel.com"
        );
        assert_eq!(
            exotel_subdomain("@api.in.exotel.com").unwrap(),
            "api.in.exotel.com"
        );
        for bad in [
            "https://api.exotel.com",
            "api.exotel.com/v1",
            "twilix.exotel.in",
            "exotel.com",
            "api.in.exotel.com.evil.com",
            "",
        ] {
            let err = exotel_subdomain(bad).unwrap_err().to_string();
            assert!(err.contains("EXOTEL_SUBDOMAIN"), "{bad}: {err}");
        }
        let mut v = base();
        for (k, val) in [
            ("EXOTEL_API_KEY", "key"),
            ("EXOTEL_API_TOKEN", "token"),
            ("EXOTEL_SID", "sid"),
            ("EXOTEL_CALLER_ID", "08012345678"),
            ("EXOTEL_SUBDOMAIN", "https://api.exotel.com"),
        ] {
            v.insert(k.into(), val.into());
        }
        let err = Config::from_map(&v).unwrap_err().to_string();
        assert!(err.contains("EXOTEL_SUBDOMAIN"), "{err}");
        v.insert("EXOTEL_SUBDOMAIN".into(), "api.in.exotel.com".into());
        let c = Config::from_map(&v).unwrap();
        let e = c.commerce.exotel.unwrap();
        assert_eq!(e.base_url, "https://api.in.exotel.com");
        assert!(!format!("{e:?}").contains("token\""));
    }

    #[test]
    fn provider_settings_come_in_pairs_and_secrets_stay_hidden() {
        let mut v = base();
        v.insert("RAZORPAY_KEY_ID".into(), "rzp_test_1".into());
        assert_eq!(
            Config::from_map(&v).unwrap_err(),
            ConfigError::Missing("RAZORPAY_KEY_SECRET")
        );
        v.insert("RAZORPAY_KEY_SECRET".into(), "razorpay-key-secret".into());
        v.insert(
            "RAZORPAY_WEBHOOK_SECRET".into(),
            "razorpay-webhook-secret".into(),
        );
        v.insert("WHATSAPP_GRAPH_API_VERSION".into(), "21".into());
        v.insert("WHATSAPP_ACCESS_TOKEN".into(), "wa-token".into());
        v.insert("WHATSAPP_PHONE_NUMBER_ID".into(), "1234".into());
        let err = Config::from_map(&v).unwrap_err().to_string();
        assert!(err.contains("WHATSAPP_GRAPH_API_VERSION"), "{err}");
        v.insert("WHATSAPP_GRAPH_API_VERSION".into(), "v22.0".into());
        let c = Config::from_map(&v).unwrap();
        assert_eq!(
            c.commerce.razorpay.as_ref().unwrap().base_url,
            "https://api.razorpay.com"
        );
        assert_eq!(
            c.commerce.whatsapp.as_ref().unwrap().graph_api_version,
            "v22.0"
        );
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("razorpay-key-secret") && !dbg.contains("razorpay-webhook-secret"),
            "{dbg}"
        );

        let mut v = base();
        v.insert("MR_HIRE_SERVICE_TOKEN_PREVIOUS".into(), "x".repeat(40));
        assert_eq!(
            Config::from_map(&v).unwrap_err(),
            ConfigError::Missing("MR_HIRE_SERVICE_TOKEN")
        );
        v.insert("MR_HIRE_SERVICE_TOKEN".into(), "short".into());
        let err = Config::from_map(&v).unwrap_err().to_string();
        assert!(err.contains("MR_HIRE_SERVICE_TOKEN"), "{err}");
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
    fn rate_limit_rules_parse_and_are_named_when_wrong() {
        use crate::services::rate_limit::LimitName;
        let rule = parse_limit_rule("user=5/10m, client=100/1h").unwrap();
        assert_eq!(
            rule.per_user,
            Some(LimitWindow {
                max: 5,
                window: Duration::from_secs(600)
            })
        );
        assert_eq!(rule.per_client.unwrap().window, Duration::from_secs(3600));
        let off = parse_limit_rule("off").unwrap();
        assert!(off.per_user.is_none() && off.per_client.is_none());
        assert_eq!(
            parse_limit_rule("client=3/90")
                .unwrap()
                .per_client
                .unwrap()
                .window
                .as_secs(),
            90
        );
        for bad in [
            "user=0/1m",
            "user=5",
            "admin=5/1m",
            "user=x/1m",
            "user=5/0",
            "user=5/3w",
        ] {
            assert!(parse_limit_rule(bad).is_err(), "{bad}");
        }

        let c = Config::from_map(&base()).unwrap();
        assert_eq!(
            c.security.rate_limits.rule(LimitName::Pairing),
            LimitName::Pairing.default_rule()
        );
        let mut v = base();
        v.insert("RATE_LIMIT_REGISTER".into(), "client=2/1m".into());
        let c = Config::from_map(&v).unwrap();
        assert_eq!(
            c.security
                .rate_limits
                .rule(LimitName::Register)
                .per_client
                .unwrap()
                .max,
            2
        );
        v.insert("RATE_LIMIT_UPLOAD".into(), "user=lots".into());
        let err = Config::from_map(&v).unwrap_err().to_string();
        assert!(err.contains("RATE_LIMIT_UPLOAD"), "{err}");
    }

    #[test]
    fn key_rotation_and_encryption_keys_parse() {
        let c = Config::from_map(&base()).unwrap();
        assert_eq!(
            c.security.jwt_key_id,
            key_fingerprint("0123456789abcdef0123456789abcdef")
        );
        assert!(c.security.jwt_previous.is_none() && c.security.data_keys.is_empty());

        let mut v = base();
        v.insert("JWT_KEY_ID".into(), "2026-12".into());
        v.insert(
            "JWT_PREVIOUS_SECRET".into(),
            "previous-secret-previous-secret-0".into(),
        );
        v.insert(
            "DATA_ENCRYPTION_KEYS".into(),
            format!("k2:{},k1:{}", "ab".repeat(32), "cd".repeat(32)),
        );
        let c = Config::from_map(&v).unwrap();
        assert_eq!(c.security.jwt_key_id, "2026-12");
        let (kid, _) = c.security.jwt_previous.as_ref().unwrap();
        assert_eq!(kid, &key_fingerprint("previous-secret-previous-secret-0"));
        let kids: Vec<_> = c
            .security
            .data_keys
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(kids, ["k2", "k1"]);
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("previous-secret") && !dbg.contains(&"ab".repeat(32)),
            "{dbg}"
        );

        for (var, value) in [
            ("JWT_PREVIOUS_SECRET", "short"),
            ("JWT_KEY_ID", "has space"),
            ("DATA_ENCRYPTION_KEYS", "k1:abcd"),
            ("DATA_ENCRYPTION_KEYS", "nokid"),
            ("OUTBOUND_DNS_SERVER", "127.0.0.1:53"),
        ] {
            let mut v = base();
            v.insert(var.into(), value.into());
            let err = Config::from_map(&v).unwrap_err().to_string();
            assert!(err.contains(var), "{var}: {err}");
        }
        let mut v = base();
        v.insert("APP_ENV".into(), "test".into());
        v.insert("OUTBOUND_DNS_SERVER".into(), "127.0.0.1:5353".into());
        v.insert(
            "OUTBOUND_CONNECT_TO".into(),
            "93.184.215.14:0=127.0.0.2:0".into(),
        );
        let c = Config::from_map(&v).unwrap();
        assert_eq!(c.security.outbound_connect_to.len(), 1);
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

    /// The variables read from `vars` (every conditional branch the map switches on).
    fn read_names(vars: &HashMap<String, String>) -> BTreeSet<&'static str> {
        let env = Env::new(vars).unwrap();
        Config::read(&env).unwrap();
        env.read.into_inner()
    }

    #[test]
    fn the_reference_lists_exactly_what_is_read() {
        let mut v = base();
        // Switch every optional block on, so its variables are read too.
        for (k, val) in [
            ("S3_DOCUMENTS_BUCKET", "docs-bucket"),
            ("SMTP_HOST", "smtp.local"),
            ("LITELLM_BASE_URL", "http://llm.local"),
            ("LITELLM_API_KEY", "k"),
            ("REDIS_HOST", "127.0.0.1"),
            (
                "JWT_PREVIOUS_SECRET",
                "previous-secret-previous-secret-0123",
            ),
        ] {
            v.insert(k.into(), val.into());
        }
        let read = read_names(&v);
        let documented: BTreeSet<&str> = reference::variables().map(|d| d.name).collect();
        let undocumented: Vec<_> = read.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "read but not in config/reference.rs: {undocumented:?}"
        );
        let unread: Vec<_> = documented.difference(&read).collect();
        assert!(unread.is_empty(), "documented but never read: {unread:?}");
        let mut names = BTreeSet::new();
        for d in reference::variables() {
            assert!(names.insert(d.name), "{} documented twice", d.name);
        }
    }

    #[test]
    fn the_configuration_document_is_generated_from_the_reference() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == reference::markdown(),
            "docs/configuration.md is out of date: run scripts/generate \
             (or `mas-server config-reference > docs/configuration.md`)"
        );
    }

    #[test]
    fn the_seed_names_are_accepted_and_a_disagreement_names_both() {
        let mut v = base();
        for (k, val) in [
            ("NODE_ENV", "development"),
            ("EMAIL_HOST", "smtp.local"),
            ("EMAIL_USER", "mailer"),
            ("EMAIL_PASS", "mail-secret"),
            ("AWS_S3_BUCKET_NAME", "seed-bucket"),
            ("LITELLM_BASE_URL", "http://llm.local"),
            ("LITELLM_MASTER_KEY", "llm-secret"),
        ] {
            v.insert(k.into(), val.into());
        }
        let c = Config::from_map(&v).unwrap();
        assert_eq!(c.app_env, AppEnv::Development);
        let smtp = c.smtp.unwrap();
        assert_eq!(smtp.username.as_deref(), Some("mailer"));
        assert_eq!(smtp.password.unwrap().expose(), "mail-secret");
        assert_eq!(c.storage.recordings.as_deref(), Some("seed-bucket"));
        assert_eq!(c.llm.unwrap().api_key.expose(), "llm-secret");
        // The same value under both names is fine; different values stop the start.
        v.insert("SMTP_USER".into(), "mailer".into());
        assert!(Config::from_map(&v).is_ok());
        v.insert("SMTP_PASSWORD".into(), "other-secret".into());
        let err = Config::from_map(&v).unwrap_err().to_string();
        assert!(
            err.contains("SMTP_PASSWORD") && err.contains("EMAIL_PASS"),
            "{err}"
        );
        assert!(!err.contains("secret"), "no value in the message: {err}");
    }

    #[test]
    fn redis_host_and_port_compose_the_url() {
        let mut v = base();
        v.remove("REDIS_URL");
        assert_eq!(
            Config::from_map(&v).unwrap_err(),
            ConfigError::Missing("REDIS_URL")
        );
        v.insert("REDIS_HOST".into(), "redis.internal".into());
        v.insert("REDIS_PORT".into(), "6380".into());
        v.insert("REDIS_PASSWORD".into(), "p@ss/word".into());
        let c = Config::from_map(&v).unwrap();
        assert_eq!(
            c.redis_url.expose(),
            "redis://:p%40ss%2Fword@redis.internal:6380"
        );
        // Both forms naming the same server: ours wins (it may carry a db number).
        v.insert("REDIS_URL".into(), "redis://redis.internal:6380/2".into());
        assert_eq!(
            Config::from_map(&v).unwrap().redis_url.expose(),
            "redis://redis.internal:6380/2"
        );
        v.insert("REDIS_URL".into(), "redis://elsewhere:6379".into());
        assert_eq!(
            Config::from_map(&v).unwrap_err(),
            ConfigError::Conflict {
                ours: "REDIS_URL",
                seed: "REDIS_HOST"
            }
        );
        v.insert("REDIS_PORT".into(), "x".into());
        v.remove("REDIS_URL");
        assert!(matches!(
            Config::from_map(&v),
            Err(ConfigError::Invalid {
                var: "REDIS_PORT",
                ..
            })
        ));
    }
}
