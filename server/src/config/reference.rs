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

/// Ours → the seed's name. Either may be set; both set with different values is a start-up
/// error naming both, so an existing secret works unchanged and never half-applies.
pub const ALIASES: &[(&str, &str)] = &[
    ("APP_ENV", "NODE_ENV"),
    ("SMTP_HOST", "EMAIL_HOST"),
    ("SMTP_PORT", "EMAIL_PORT"),
    ("SMTP_USER", "EMAIL_USER"),
    ("SMTP_PASSWORD", "EMAIL_PASS"),
    ("SMTP_FROM", "EMAIL_FROM"),
    ("S3_BUCKET", "AWS_S3_BUCKET_NAME"),
    ("AWS_REGION", "AWS_DEFAULT_REGION"),
    ("S3_ENDPOINT", "AWS_ENDPOINT_URL"),
    ("LITELLM_API_KEY", "LITELLM_MASTER_KEY"),
];

/// The seed's name accepted for `ours`, if any.
pub fn alias_of(ours: &str) -> Option<&'static str> {
    ALIASES.iter().find(|(o, _)| *o == ours).map(|(_, s)| *s)
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
        "S3_BUCKET",
        "",
        "Upload bucket; uploads answer 503 while unset. AWS credentials come from the SDK's \
         default chain (IRSA, instance role or `AWS_ACCESS_KEY_ID`).",
    ),
    var("AWS_REGION", "us-east-1", "Region of the bucket."),
    var(
        "S3_ENDPOINT",
        "",
        "Custom S3 endpoint (MinIO, moto); path-style addressing when set.",
    ),
    var(
        "S3_PRESIGN_TTL_SECONDS",
        "900",
        "Validity of presigned upload and download URLs.",
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
            let name = match alias_of(v.name) {
                Some(seed) => format!("`{}` (or `{seed}`)", v.name),
                None => format!("`{}`", v.name),
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
