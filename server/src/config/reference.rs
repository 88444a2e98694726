//! The environment contract: every variable the server reads, what it means, and the seed's
//! (Node backend's) names accepted for ours. `docs/configuration.md` is rendered from this
//! table (`mas-server config-reference`), and tests fail when `Config` reads a variable the
//! table does not list, or the table lists one nothing reads, so the Secrets Manager secret
//! can be filled from the document.

use std::fmt::Write as _;

use crate::services::integrations::{self, IntegrationId};

/// One documented variable.
pub struct Variable {
    pub name: &'static str,
    /// The server does not start without it.
    pub required: bool,
    /// Never logged or shown (integration variables also take the catalog's flag).
    pub secret: bool,
    /// The value used when unset, as a reader writes it; empty when there is none.
    pub default: &'static str,
    pub meaning: &'static str,
}

const fn var(name: &'static str, default: &'static str, meaning: &'static str) -> Variable {
    Variable {
        name,
        required: false,
        secret: false,
        default,
        meaning,
    }
}

const fn required(name: &'static str, meaning: &'static str) -> Variable {
    Variable {
        name,
        required: true,
        secret: false,
        default: "",
        meaning,
    }
}

const fn secret(mut v: Variable) -> Variable {
    v.secret = true;
    v
}

/// Ours → a name the seed used for it (a variable may have several). Any may be set; two
/// set with different values is a start-up error naming both, so an existing secret works
/// unchanged and never half-applies.
pub const ALIASES: &[(&str, &str)] = &[
    ("APP_ENV", "NODE_ENV"),
    ("SMTP_HOST", "EMAIL_HOST"),
    ("SMTP_PORT", "EMAIL_PORT"),
    ("SMTP_USER", "EMAIL_USER"),
    ("SMTP_PASSWORD", "EMAIL_PASS"),
    ("SMTP_FROM", "EMAIL_FROM"),
    ("S3_DOCUMENTS_BUCKET", "S3_BUCKET"),
    ("S3_DOCUMENTS_BUCKET", "AWS_S3_DOCUMENTS_BUCKET"),
    ("S3_RECORDINGS_BUCKET", "AWS_S3_BUCKET_NAME"),
    ("S3_ASSETS_BUCKET", "AWS_S3_BANNER_BUCKET"),
    ("S3_INVOICES_BUCKET", "AWS_S3_INVOICE_BUCKET"),
    ("AWS_REGION", "AWS_DEFAULT_REGION"),
    ("S3_ENDPOINT", "AWS_ENDPOINT_URL"),
    ("LITELLM_API_KEY", "LITELLM_MASTER_KEY"),
];

/// The seed's names accepted for `ours`.
pub fn aliases_of(ours: &str) -> impl Iterator<Item = &'static str> + '_ {
    ALIASES
        .iter()
        .filter(move |(o, _)| *o == ours)
        .map(|(_, s)| *s)
}

/// Sections in document order.
pub const SECTIONS: &[(&str, &[Variable])] = &[
    ("Process", PROCESS),
    ("Database and Redis", STORES),
    ("Authentication", AUTH),
    ("HTTP", HTTP),
    ("Releases (blue/green)", RELEASES),
    ("Queues", QUEUES),
    ("Realtime", REALTIME),
    ("Storage (S3)", STORAGE),
    ("Email (SMTP)", EMAIL),
    ("LLM gateway (LiteLLM)", LLM),
    ("Security", SECURITY),
    ("Payments, webhooks, calling, messaging, eSign", COMMERCE),
    ("Google, code runs, voice calls, partners", EXTERNAL),
];

const PROCESS: &[Variable] = &[
    var(
        "APP_ENV",
        "production",
        "`production`, `development` or `test`. Development allows every CORS origin and \
         must be asked for.",
    ),
    var(
        "PROCESS_ROLE",
        "all",
        "`all`, `api` (HTTP and Socket.IO only) or `workers` (queue workers only).",
    ),
    var("HOST", "0.0.0.0", "Address the public listener binds."),
    var("PORT", "8000", "Port of the public listener."),
    var(
        "LOG_JSON",
        "true in production",
        "JSON log lines (for log shippers) instead of human-readable ones.",
    ),
    var(
        "ASSETS_DIR",
        "server/assets",
        "Directory served under `/assets/*`.",
    ),
    var(
        "ENABLE_SEEDING",
        "false",
        "Insert demo data at start (development only).",
    ),
];

const STORES: &[Variable] = &[
    secret(required(
        "DATABASE_URL",
        "PostgreSQL URL (`postgres://user:password@host:5432/db`); add `sslmode=require` for TLS.",
    )),
    var(
        "DATABASE_MAX_CONNECTIONS",
        "20",
        "Connection pool size per process.",
    ),
    var(
        "DATABASE_MIN_CONNECTIONS",
        "4",
        "Connections opened before the server reports ready and kept open (capped at \
         `DATABASE_MAX_CONNECTIONS`). Set it to the pool size to keep connection setup off the \
         request path when a new color takes traffic.",
    ),
    secret(required(
        "REDIS_URL",
        "Redis URL (`redis://` or `rediss://` for TLS, optional `/db`). The seed's \
         `REDIS_HOST` + `REDIS_PORT` (+ `REDIS_PASSWORD`) are accepted instead.",
    )),
    var(
        "REDIS_HOST",
        "",
        "Seed form of `REDIS_URL`: host; used when `REDIS_URL` is unset, an error when both \
         are set and disagree.",
    ),
    var("REDIS_PORT", "6379", "Seed form of `REDIS_URL`: port."),
    secret(var(
        "REDIS_PASSWORD",
        "",
        "Seed form of `REDIS_URL`: password.",
    )),
];

const AUTH: &[Variable] = &[
    secret(required(
        "JWT_SECRET",
        "HMAC key of access tokens, at least 32 bytes.",
    )),
    var(
        "JWT_ACCESS_TTL_SECONDS",
        "900",
        "Lifetime of an access token.",
    ),
    var(
        "JWT_REFRESH_TTL_SECONDS",
        "2592000",
        "Lifetime of a refresh token (30 days).",
    ),
    var(
        "ADMIN_EMAIL",
        "",
        "Bootstrap admin ensured at start (with `ADMIN_PASSWORD`; both or neither).",
    ),
    secret(var(
        "ADMIN_PASSWORD",
        "",
        "Password of the bootstrap admin, at least 8 characters.",
    )),
    var(
        "SUPERADMIN_EMAIL",
        "",
        "Bootstrap superadmin (with `SUPERADMIN_PASSWORD`; both or neither).",
    ),
    secret(var(
        "SUPERADMIN_PASSWORD",
        "",
        "Password of the bootstrap superadmin, at least 8 characters.",
    )),
    var(
        "LOGIN_MAX_ATTEMPTS",
        "10",
        "Failed logins per account and client address within the window before 429.",
    ),
    var(
        "LOGIN_WINDOW_SECONDS",
        "900",
        "Window of the login attempt limit.",
    ),
];

const HTTP: &[Variable] = &[
    var(
        "CORS_ALLOWED_ORIGINS",
        "none (same origin)",
        "JSON array of allowed browser origins, e.g. `[\"https://app.example.com\"]`.",
    ),
    var(
        "BODY_LIMIT_BYTES",
        "20971520",
        "Largest request body (20 MiB).",
    ),
    var(
        "TRUSTED_PROXY_HOPS",
        "0",
        "Proxies in front of the server appending to `X-Forwarded-For` (the ingress counts \
         one); 0 never trusts the header.",
    ),
];

const RELEASES: &[Variable] = &[
    var(
        "APP_VERSION",
        "the crate version",
        "Reported by `/api/health` and sent as `x-app-version` (the operator sets the release).",
    ),
    var(
        "MIGRATE_ON_START",
        "true",
        "Apply migrations at start under a lock; false when the operator's migration Job \
         ran `mas-server migrate`.",
    ),
    var(
        "INTERNAL_PORT",
        "unset (no internal listener)",
        "Port of the internal listener (connection drain/resume for the operator).",
    ),
    secret(var(
        "CONTROL_TOKEN",
        "",
        "Bearer token of the internal endpoints; they answer 404 while unset.",
    )),
    var(
        "SHUTDOWN_DRAIN_SECONDS",
        "5",
        "After SIGTERM, keep serving while `/api/health` answers 503, so the ingress drops \
         the endpoint first.",
    ),
    var(
        "SHUTDOWN_GRACE_SECONDS",
        "25",
        "Longest wait for in-flight requests and jobs at shutdown.",
    ),
];

const QUEUES: &[Variable] = &[
    var(
        "QUEUE_PREFIX",
        "bull",
        "BullMQ key prefix (the Node app's, so existing queues keep working).",
    ),
    var("QUEUE_EMAIL_CONCURRENCY", "5", "Concurrent email jobs."),
    var(
        "QUEUE_DATABASE_CONCURRENCY",
        "2",
        "Concurrent database jobs.",
    ),
    var("QUEUE_CLEANUP_CONCURRENCY", "1", "Concurrent cleanup jobs."),
    var("QUEUE_KPI_CONCURRENCY", "1", "Concurrent KPI jobs."),
    var(
        "QUEUE_RESUME_CONCURRENCY",
        "2",
        "Concurrent resume-analysis jobs.",
    ),
    var(
        "QUEUE_JOB_ATTEMPTS",
        "3",
        "Attempts per job (first run and retries).",
    ),
    var(
        "QUEUE_BACKOFF_MS",
        "2000",
        "Base delay of the exponential backoff between attempts.",
    ),
    var(
        "EMAIL_OUTBOX_POLL_MS",
        "2000",
        "How often the email outbox is relayed to the queue (at least 50).",
    ),
    var(
        "QUEUE_REDRIVE_AFTER_SECONDS",
        "600",
        "Email outbox, webhook and WhatsApp rows handed to Redis but not settled after this \
         long are handed over again (their job was lost, e.g. Redis restarted without \
         persistence); a job still in Redis is not duplicated (its id is the row's).",
    ),
    var(
        "CLEANUP_EVERY_SECONDS",
        "86400",
        "Period of the cleanup job.",
    ),
    var("KPI_EVERY_SECONDS", "900", "Period of the KPI job."),
];

const REALTIME: &[Variable] = &[
    var(
        "REALTIME_REDIS_PREFIX",
        "mas",
        "Prefix of realtime Redis keys and channels; replicas acting as one share it.",
    ),
    var(
        "SOCKETIO_MAX_PAYLOAD_BYTES",
        "1000000",
        "Largest Socket.IO long-polling request body.",
    ),
    var(
        "SOCKETIO_MAX_BUFFERED_PACKETS",
        "2048",
        "Packets buffered per socket before an emit to it fails (a slow client); a join burst of a large room must fit.",
    ),
    var(
        "SOCKETIO_ADAPTER",
        "redis",
        "`redis`: rooms span every replica (Redis pub/sub); `memory`: this process only, for a single replica.",
    ),
    var(
        "WS_MAX_MESSAGE_BYTES",
        "1048576",
        "Largest Socket.IO or terminal relay WebSocket message.",
    ),
    var(
        "PRESENCE_TTL_SECONDS",
        "30",
        "A replica silent this long is dead and its sockets offline.",
    ),
    var(
        "TERMINAL_PAIRING_TTL_SECONDS",
        "300",
        "Validity of a terminal pairing token.",
    ),
];

const STORAGE: &[Variable] = &[
    var(
        "S3_DOCUMENTS_BUCKET",
        "",
        "Private bucket of student documents (resumes, documents, avatars, signed agreements). \
         Each bucket is optional at start: a purpose whose bucket is unset answers 503. AWS \
         credentials come from the SDK's default chain (IRSA, instance role or \
         `AWS_ACCESS_KEY_ID`).",
    ),
    var(
        "S3_RECORDINGS_BUCKET",
        "",
        "Private bucket of meeting recordings.",
    ),
    var(
        "S3_ASSETS_BUCKET",
        "",
        "Public bucket of banner assets (admins upload).",
    ),
    var(
        "S3_INVOICES_BUCKET",
        "",
        "Private bucket of invoice PDFs; without it invoices are emailed but not archived.",
    ),
    var("AWS_REGION", "us-east-1", "Region of the buckets."),
    var(
        "S3_ENDPOINT",
        "",
        "Custom S3 endpoint (MinIO, moto); path-style addressing when set.",
    ),
    var(
        "S3_PRESIGN_TTL_SECONDS",
        "900",
        "Validity of presigned upload URLs.",
    ),
    var(
        "S3_PRIVATE_GET_TTL_SECONDS",
        "300",
        "Validity of signed GETs of private objects (1..3600): short, they are bearer links.",
    ),
    var(
        "UPLOAD_CONFIRM_WINDOW_SECONDS",
        "86400",
        "How long an upload may stay unconfirmed before the cleanup deletes it.",
    ),
    var(
        "MAS_ASSETS_CDN_URL",
        "",
        "Public base URL (a CDN) of the assets bucket and of `/assets/*`; unset serves from \
         this origin.",
    ),
];

const EMAIL: &[Variable] = &[
    var(
        "SMTP_HOST",
        "",
        "SMTP server; email is queued but not sent while unset.",
    ),
    var("SMTP_PORT", "587", "SMTP port."),
    var("SMTP_USER", "", "SMTP user name."),
    secret(var("SMTP_PASSWORD", "", "SMTP password.")),
    var(
        "SMTP_FROM",
        "MAS <no-reply@myanalyticsschool.com>",
        "Sender of every email.",
    ),
    var("SMTP_TLS", "starttls", "`starttls`, `tls` or `none`."),
];

const LLM: &[Variable] = &[
    var(
        "LITELLM_BASE_URL",
        "",
        "LiteLLM gateway URL; resume analysis answers 503 while unset.",
    ),
    secret(var(
        "LITELLM_API_KEY",
        "",
        "Gateway key (required with `LITELLM_BASE_URL`).",
    )),
    var("LITELLM_MODEL", "gpt-4o-mini", "Model of resume analyses."),
    var(
        "RESUME_URL_ALLOW_PRIVATE",
        "false",
        "Let resume URLs point at private addresses (local development only).",
    ),
];

const SECURITY: &[Variable] = &[
    var(
        "RATE_LIMIT_REGISTER",
        "client=20/1h",
        "Registrations. Every `RATE_LIMIT_*` is `off` or `user=MAX/WINDOW,client=MAX/WINDOW` \
         (either part; window in s, m, h or d); over it: 429 with `Retry-After`.",
    ),
    var(
        "RATE_LIMIT_VERIFICATION",
        "client=30/1h",
        "Email verification attempts.",
    ),
    var(
        "RATE_LIMIT_RESEND",
        "client=10/1h",
        "Verification code re-sends.",
    ),
    var(
        "RATE_LIMIT_PAIRING",
        "user=20/10m,client=60/10m",
        "Terminal pairing creations.",
    ),
    var(
        "RATE_LIMIT_UPLOAD",
        "user=60/1h,client=200/1h",
        "Upload URL requests.",
    ),
    var(
        "RATE_LIMIT_CODE_RUN",
        "user=10/1m,client=120/1m",
        "Code runs (`POST /api/code/runs`); unset, the per-user part is `CODE_RUN_PER_MINUTE`.",
    ),
    var(
        "RATE_LIMIT_WEBHOOK",
        "client=600/1m",
        "Inbound webhook calls (Razorpay, WhatsApp, Exotel, Leegality, ElevenLabs), per address.",
    ),
    var(
        "JWT_KEY_ID",
        "derived from JWT_SECRET",
        "`kid` of the tokens signed now.",
    ),
    secret(var(
        "JWT_PREVIOUS_SECRET",
        "",
        "The previous signing key, still accepted (never used to sign) during a rotation; \
         remove it once its tokens expired.",
    )),
    var(
        "JWT_PREVIOUS_KEY_ID",
        "derived from JWT_PREVIOUS_SECRET",
        "`kid` of the previous key.",
    ),
    secret(var(
        "DATA_ENCRYPTION_KEYS",
        "unset (sealing refused)",
        "`kid:64hex,...` AES-256-GCM keys for secrets at rest: the first encrypts, all decrypt.",
    )),
    var(
        "SESSION_REAUTH_GRACE_SECONDS",
        "30",
        "After a socket's or relay's token expires, time to send `auth:refresh`.",
    ),
    var(
        "ACCOUNT_STATUS_CACHE_SECONDS",
        "60",
        "Longest a replica trusts its cached account status (changes arrive by pub/sub).",
    ),
    var(
        "DATABASE_CA_FILE",
        "",
        "PEM CA of the PostgreSQL server certificate (with `sslmode=verify-full`).",
    ),
    var(
        "REDIS_CA_FILE",
        "",
        "PEM CA of the Redis server certificate (`rediss://`).",
    ),
    var(
        "OUTBOUND_DNS_SERVER",
        "",
        "Tests only (`APP_ENV=test`): DNS server of the guarded outbound fetches.",
    ),
    var(
        "OUTBOUND_CONNECT_TO",
        "",
        "Tests only (`APP_ENV=test`): `ip:port=ip:port` dial overrides after the address check.",
    ),
];

const COMMERCE: &[Variable] = &[
    var(
        "BACKEND_PUBLIC_URL",
        "",
        "This backend's public URL; provider callbacks (Exotel status) are built from it.",
    ),
    var(
        "WEBHOOK_BODY_LIMIT_BYTES",
        "262144",
        "Largest inbound webhook body (1024..2097152); larger: 413.",
    ),
    var(
        "RAZORPAY_KEY_ID",
        "",
        "Razorpay key id (with `RAZORPAY_KEY_SECRET`).",
    ),
    secret(var("RAZORPAY_KEY_SECRET", "", "Razorpay key secret.")),
    var(
        "RAZORPAY_BASE_URL",
        "https://api.razorpay.com",
        "Razorpay API.",
    ),
    secret(var(
        "RAZORPAY_WEBHOOK_SECRET",
        "",
        "Signs Razorpay webhooks (at least 8 characters); the webhook answers 503 while unset.",
    )),
    var(
        "EXOTEL_API_KEY",
        "",
        "Exotel API key; requires `EXOTEL_API_TOKEN`, `EXOTEL_SID`, `EXOTEL_CALLER_ID`, \
         `EXOTEL_SUBDOMAIN`. Unset: calls fall back to `tel:` links.",
    ),
    secret(var("EXOTEL_API_TOKEN", "", "Exotel API token.")),
    var("EXOTEL_SID", "", "Exotel account SID."),
    var(
        "EXOTEL_CALLER_ID",
        "",
        "Exotel virtual number calls come from.",
    ),
    var(
        "EXOTEL_SUBDOMAIN",
        "",
        "Regional API host, `api.exotel.com` or `api.<region>.exotel.com`; checked at start.",
    ),
    var(
        "EXOTEL_BASE_URL",
        "https://<EXOTEL_SUBDOMAIN>",
        "Exotel API base URL.",
    ),
    secret(var(
        "EXOTEL_WEBHOOK_TOKEN",
        "",
        "Token Exotel's status callbacks carry (at least 16 characters).",
    )),
    secret(var(
        "WHATSAPP_ACCESS_TOKEN",
        "",
        "WhatsApp Cloud API token (with `WHATSAPP_PHONE_NUMBER_ID`).",
    )),
    var("WHATSAPP_PHONE_NUMBER_ID", "", "Sending phone number id."),
    var(
        "WHATSAPP_GRAPH_API_VERSION",
        "v21.0",
        "Graph API version (`vN.N`).",
    ),
    var(
        "WHATSAPP_GRAPH_BASE_URL",
        "https://graph.facebook.com",
        "Graph API base URL.",
    ),
    var(
        "WHATSAPP_TEMPLATE_BOOKING_CONFIRMATION",
        "booking_confirmation",
        "Template of booking confirmations.",
    ),
    var(
        "WHATSAPP_TEMPLATE_REMINDER",
        "session_reminder",
        "Template of session reminders.",
    ),
    var(
        "WHATSAPP_TEMPLATE_LANGUAGE",
        "en",
        "Language of the templates.",
    ),
    secret(var(
        "WHATSAPP_APP_SECRET",
        "",
        "Signs WhatsApp webhooks (`X-Hub-Signature-256`).",
    )),
    secret(var(
        "WHATSAPP_VERIFY_TOKEN",
        "",
        "Token of the webhook's `hub.verify_token` handshake.",
    )),
    secret(var(
        "LEEGALITY_AUTH_TOKEN",
        "",
        "Leegality API token (with `LEEGALITY_PAP_PROFILE_ID`).",
    )),
    var(
        "LEEGALITY_PAP_PROFILE_ID",
        "",
        "Leegality workflow profile of the PAP agreement.",
    ),
    var(
        "LEEGALITY_BASE_URL",
        "https://app1.leegality.com/api",
        "Leegality API.",
    ),
    var(
        "LEEGALITY_PAP_DOCUMENT_NAME",
        "PAP Agreement",
        "Name of the signing document.",
    ),
    secret(var(
        "LEEGALITY_PRIVATE_SALT",
        "",
        "Verifies Leegality webhooks (HMAC-SHA1).",
    )),
    secret(var(
        "MR_HIRE_SERVICE_TOKEN",
        "",
        "Token mr-hire-backend presents to this backend (at least 32 characters).",
    )),
    secret(var(
        "MR_HIRE_SERVICE_TOKEN_PREVIOUS",
        "",
        "The previous token, still accepted during a rotation.",
    )),
];

const EXTERNAL: &[Variable] = &[
    var(
        "INTEGRATIONS_HTTP_TIMEOUT_MS",
        "each provider's own",
        "Overrides every provider's request timeout.",
    ),
    var(
        "INTEGRATIONS_BREAKER_THRESHOLD",
        "each provider's own",
        "Consecutive failures that open a provider's circuit.",
    ),
    var(
        "INTEGRATIONS_BREAKER_COOLDOWN_MS",
        "each provider's own",
        "How long an open circuit stays open.",
    ),
    var(
        "GOOGLE_CLIENT_ID",
        "",
        "Google OAuth client (sign-in, Calendar, Drive).",
    ),
    secret(var(
        "GOOGLE_CLIENT_SECRET",
        "",
        "Google OAuth client secret.",
    )),
    var(
        "GOOGLE_REDIRECT_URI",
        "",
        "Our `/api/auth/google/callback` URL; Google sign-in is on with the client and this.",
    ),
    var(
        "GOOGLE_OIDC_ISSUER",
        "https://accounts.google.com",
        "OpenID Provider issuer (discovery).",
    ),
    var(
        "GOOGLE_POST_LOGIN_REDIRECT",
        "",
        "Where the callback redirects with the tokens in the fragment; unset answers JSON.",
    ),
    var(
        "GOOGLE_SIGNIN_TTL_SECONDS",
        "600",
        "Lifetime of a started sign-in.",
    ),
    secret(var(
        "GOOGLE_CALENDAR_REFRESH_TOKEN",
        "",
        "Refresh token of the organizer account owning meeting events.",
    )),
    var(
        "GOOGLE_CALENDAR_ID",
        "primary",
        "Calendar of meeting events.",
    ),
    var(
        "GOOGLE_CALENDAR_API_URL",
        "https://www.googleapis.com/calendar/v3",
        "Calendar API.",
    ),
    var(
        "GOOGLE_OAUTH_TOKEN_URL",
        "https://oauth2.googleapis.com/token",
        "Google token endpoint.",
    ),
    var(
        "GOOGLE_OAUTH_AUTH_URL",
        "https://accounts.google.com/o/oauth2/v2/auth",
        "Google consent endpoint (Drive).",
    ),
    var(
        "GOOGLE_DRIVE_REDIRECT_URI",
        "",
        "Our Drive callback URL (Drive is on with the client, this and `TOKEN_ENCRYPTION_KEY`).",
    ),
    var(
        "GOOGLE_DRIVE_API_URL",
        "https://www.googleapis.com/drive/v3",
        "Drive API.",
    ),
    secret(var(
        "TOKEN_ENCRYPTION_KEY",
        "",
        "AES-256-GCM key (64 hex digits or base64) of Drive refresh tokens at rest.",
    )),
    var("JUDGE0_URL", "", "Judge0 API; code runs are on while set."),
    secret(var("JUDGE0_API_KEY", "", "Judge0 key.")),
    var(
        "JUDGE0_AUTH",
        "rapidapi for *.rapidapi.com, else auth-token",
        "How the key is sent: `auth-token` or `rapidapi`.",
    ),
    var(
        "JUDGE0_WAIT",
        "true",
        "Wait for results instead of polling.",
    ),
    var(
        "JUDGE0_LANGUAGES_TTL_SECONDS",
        "3600",
        "Cache of the language list.",
    ),
    var("CODE_RUN_MAX_SOURCE_BYTES", "65536", "Largest program."),
    var(
        "CODE_RUN_MAX_STDIN_BYTES",
        "65536",
        "Largest standard input.",
    ),
    var("CODE_RUN_CPU_SECONDS", "5", "CPU limit of a run, (0, 15]."),
    var("CODE_RUN_MEMORY_KB", "128000", "Memory limit of a run."),
    var(
        "CODE_RUN_PER_MINUTE",
        "10",
        "Runs per user per minute: the per-user part of the code-run limit unless \
         `RATE_LIMIT_CODE_RUN` is set.",
    ),
    secret(var(
        "ELEVENLABS_API_KEY",
        "",
        "ElevenLabs key; voice calls need all four ELEVENLABS_* required values.",
    )),
    var(
        "ELEVENLABS_AGENT_ID",
        "",
        "Conversational agent of interview calls.",
    ),
    var(
        "ELEVENLABS_AGENT_PHONE_NUMBER_ID",
        "",
        "Phone number the agent calls from.",
    ),
    secret(var(
        "ELEVENLABS_WEBHOOK_SECRET",
        "",
        "Verifies ElevenLabs post-call webhooks.",
    )),
    var(
        "ELEVENLABS_API_URL",
        "https://api.elevenlabs.io",
        "ElevenLabs API.",
    ),
    var(
        "ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS",
        "1800",
        "Oldest accepted webhook timestamp.",
    ),
    var(
        "GRAPHY_MID",
        "",
        "Graphy merchant id (with `GRAPHY_API_KEY`).",
    ),
    secret(var("GRAPHY_API_KEY", "", "Graphy key.")),
    var(
        "GRAPHY_API_URL",
        "https://api.ongraphy.com/public/v1",
        "Graphy API.",
    ),
    var(
        "MR_HIRE_BACKEND_URL",
        "",
        "mr-hire-backend, reached through `/api/partners/mr-hire/*`.",
    ),
    secret(var("MR_HIRE_API_KEY", "", "Key sent to mr-hire-backend.")),
    var(
        "CLASS_AGENT_URL",
        "",
        "Class agent service (with `CLASS_AGENT_API_KEY`).",
    ),
    secret(var("CLASS_AGENT_API_KEY", "", "Class agent key.")),
    var(
        "PARTNER_PROXY_MAX_REQUEST_BYTES",
        "262144",
        "Largest request through a partner proxy.",
    ),
    var(
        "PARTNER_PROXY_MAX_RESPONSE_BYTES",
        "2097152",
        "Largest response through a partner proxy.",
    ),
];

/// Every documented variable, in document order.
pub fn variables() -> impl Iterator<Item = &'static Variable> {
    SECTIONS.iter().flat_map(|(_, vars)| vars.iter())
}

/// The integration declaring `name`, with its catalog entry.
fn integration_of(name: &str) -> Option<(IntegrationId, integrations::EnvVar)> {
    IntegrationId::ALL.into_iter().find_map(|id| {
        integrations::catalog::spec(id)
            .vars
            .iter()
            .find(|v| v.name == name)
            .map(|v| (id, *v))
    })
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// `docs/configuration.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration\n\n\
         <!-- Generated by `mas-server config-reference` from server/src/config/reference.rs \
         (scripts/generate); a test fails when it drifts. -->\n\n\
         Every variable the server reads, read once at start. A missing or malformed value \
         stops the start with one line naming the variable (never its value). Secrets are \
         never logged or returned. An integration whose required variables are unset is \
         switched off and its routes answer 503 `INTEGRATION_DISABLED` naming what is \
         missing (`GET /api/admin/integrations` lists them).\n\n\
         | Required | meaning |\n|---|---|\n\
         | yes | the server does not start without it |\n\
         | *integration* | needed to switch that integration on |\n\
         | no | optional |\n",
    );
    for (title, vars) in SECTIONS {
        let _ = write!(
            out,
            "\n## {title}\n\n| Variable | Required | Secret | Default | Meaning |\n|---|---|---|---|---|\n"
        );
        for v in *vars {
            let catalog = integration_of(v.name);
            let required = match (v.required, catalog) {
                (true, _) => "yes".to_string(),
                (false, Some((id, e))) if e.required => id.name().to_string(),
                _ => "no".to_string(),
            };
            let secret = v.secret || catalog.is_some_and(|(_, e)| e.secret);
            let seeds: Vec<String> = aliases_of(v.name).map(|s| format!("`{s}`")).collect();
            let name = if seeds.is_empty() {
                format!("`{}`", v.name)
            } else {
                format!("`{}` (or {})", v.name, seeds.join(", "))
            };
            let _ = writeln!(
                out,
                "| {name} | {required} | {} | {} | {} |",
                if secret { "yes" } else { "no" },
                cell(v.default),
                cell(v.meaning)
            );
        }
    }
    out.push_str(
        "\n## The seed's names\n\nAn existing secret of the Node backend works unchanged: each name \
         below is read when ours is unset; both set with different values stops the start \
         naming both.\n\n| Ours | The seed's |\n|---|---|\n",
    );
    for (ours, seed) in ALIASES {
        let _ = writeln!(out, "| `{ours}` | `{seed}` |");
    }
    out.push_str("| `REDIS_URL` | `REDIS_HOST` + `REDIS_PORT` + `REDIS_PASSWORD` |\n");
    out
}
