//! Every integration's declaration: its variables and its effective settings.
//!
//! Adding one: a variant in [`IntegrationId`] (and `ALL`), a sub-struct parsed in
//! `config.rs`, and a [`Spec`] here returned by [`spec`].

use std::time::Duration;

use super::http::HttpPolicy;
use super::{EnvVar, IntegrationId, Settings, Spec};
use crate::config::{Config, Judge0Auth, SmtpTls};

pub fn spec(id: IntegrationId) -> &'static Spec {
    match id {
        IntegrationId::S3 => &S3,
        IntegrationId::Smtp => &SMTP,
        IntegrationId::LiteLlm => &LITELLM,
        // --- integrations-2 ---
        IntegrationId::Google => &GOOGLE,
        IntegrationId::GoogleCalendar => &GOOGLE_CALENDAR,
        IntegrationId::GoogleDrive => &GOOGLE_DRIVE,
        IntegrationId::Judge0 => &JUDGE0,
        IntegrationId::ElevenLabs => &ELEVENLABS,
        IntegrationId::Graphy => &GRAPHY,
        IntegrationId::MrHire => &MR_HIRE,
        IntegrationId::ClassAgent => &CLASS_AGENT,
        IntegrationId::Cdn => &CDN,
    }
}

/// AWS credentials come from the SDK's default chain, not from these variables.
static S3: Spec = Spec {
    id: IntegrationId::S3,
    vars: &[
        EnvVar::required("S3_BUCKET"),
        EnvVar::optional("AWS_REGION"),
        EnvVar::optional("S3_ENDPOINT"),
        EnvVar::optional("S3_PRESIGN_TTL_SECONDS"),
    ],
    settings: s3,
    http: None,
};

fn s3(config: &Config) -> Option<Settings> {
    let s3 = config.s3.as_ref()?;
    Some(
        Settings::default()
            .value("S3_BUCKET", &s3.bucket)
            .value("AWS_REGION", &s3.region)
            .opt("S3_ENDPOINT", s3.endpoint.as_ref())
            .value("S3_PRESIGN_TTL_SECONDS", s3.presign_ttl.as_secs()),
    )
}

static SMTP: Spec = Spec {
    id: IntegrationId::Smtp,
    vars: &[
        EnvVar::required("SMTP_HOST"),
        EnvVar::optional("SMTP_PORT"),
        EnvVar::optional("SMTP_USER"),
        EnvVar::optional("SMTP_PASSWORD").secret(),
        EnvVar::optional("SMTP_FROM"),
        EnvVar::optional("SMTP_TLS"),
    ],
    settings: smtp,
    http: None,
};

fn smtp(config: &Config) -> Option<Settings> {
    let smtp = config.smtp.as_ref()?;
    let tls = match smtp.tls {
        SmtpTls::None => "none",
        SmtpTls::StartTls => "starttls",
        SmtpTls::Tls => "tls",
    };
    Some(
        Settings::default()
            .value("SMTP_HOST", &smtp.host)
            .value("SMTP_PORT", smtp.port)
            .opt("SMTP_USER", smtp.username.as_ref())
            .value("SMTP_FROM", &smtp.from)
            .value("SMTP_TLS", tls)
            .opt_secret(smtp.password.as_ref()),
    )
}

static LITELLM: Spec = Spec {
    id: IntegrationId::LiteLlm,
    vars: &[
        EnvVar::required("LITELLM_BASE_URL"),
        EnvVar::required("LITELLM_API_KEY").secret(),
        EnvVar::optional("LITELLM_MODEL"),
        EnvVar::optional("RESUME_URL_ALLOW_PRIVATE"),
    ],
    settings: litellm,
    // A completion can take a while; these were the gateway client's values before the
    // shared policy. Its calls are POSTs, so the policy never retries them (the
    // resume queue job does).
    http: Some(HttpPolicy {
        connect_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(90),
        ..HttpPolicy::DEFAULT
    }),
};

fn litellm(config: &Config) -> Option<Settings> {
    let llm = config.llm.as_ref()?;
    Some(
        Settings::default()
            .value("LITELLM_BASE_URL", &llm.base_url)
            .value("LITELLM_MODEL", &llm.model)
            .value("RESUME_URL_ALLOW_PRIVATE", llm.allow_private_resume_urls)
            .secret(&llm.api_key),
    )
}

// --- integrations-2: Google, code execution, voice calls, partners, CDN -----------

/// Provider calls that answer quickly (discovery, tokens, REST reads and writes).
const QUICK: HttpPolicy = HttpPolicy {
    connect_timeout: Duration::from_secs(5),
    timeout: Duration::from_secs(15),
    ..HttpPolicy::DEFAULT
};

static GOOGLE: Spec = Spec {
    id: IntegrationId::Google,
    vars: &[
        EnvVar::required("GOOGLE_CLIENT_ID"),
        EnvVar::required("GOOGLE_CLIENT_SECRET").secret(),
        EnvVar::required("GOOGLE_REDIRECT_URI"),
        EnvVar::optional("GOOGLE_OIDC_ISSUER"),
        EnvVar::optional("GOOGLE_POST_LOGIN_REDIRECT"),
        EnvVar::optional("GOOGLE_SIGNIN_TTL_SECONDS"),
    ],
    settings: google,
    http: Some(QUICK),
};

fn google(config: &Config) -> Option<Settings> {
    let g = config.external.google_oidc.as_ref()?;
    Some(
        Settings::default()
            .value("GOOGLE_CLIENT_ID", &g.client_id)
            .value("GOOGLE_REDIRECT_URI", &g.redirect_uri)
            .value("GOOGLE_OIDC_ISSUER", &g.issuer)
            .opt("GOOGLE_POST_LOGIN_REDIRECT", g.post_login_redirect.as_ref())
            .value("GOOGLE_SIGNIN_TTL_SECONDS", g.flow_ttl.as_secs())
            .secret(&g.client_secret),
    )
}

static GOOGLE_CALENDAR: Spec = Spec {
    id: IntegrationId::GoogleCalendar,
    vars: &[
        EnvVar::required("GOOGLE_CLIENT_ID"),
        EnvVar::required("GOOGLE_CLIENT_SECRET").secret(),
        EnvVar::required("GOOGLE_CALENDAR_REFRESH_TOKEN").secret(),
        EnvVar::optional("GOOGLE_CALENDAR_ID"),
        EnvVar::optional("GOOGLE_CALENDAR_API_URL"),
        EnvVar::optional("GOOGLE_OAUTH_TOKEN_URL"),
    ],
    settings: google_calendar,
    http: Some(QUICK),
};

fn google_calendar(config: &Config) -> Option<Settings> {
    let c = config.external.google_calendar.as_ref()?;
    Some(
        Settings::default()
            .value("GOOGLE_CLIENT_ID", &c.client_id)
            .value("GOOGLE_CALENDAR_ID", &c.calendar_id)
            .value("GOOGLE_CALENDAR_API_URL", &c.api_url)
            .value("GOOGLE_OAUTH_TOKEN_URL", &c.oauth.token_url)
            .secret(&c.client_secret)
            .secret(&c.refresh_token),
    )
}

static GOOGLE_DRIVE: Spec = Spec {
    id: IntegrationId::GoogleDrive,
    vars: &[
        EnvVar::required("GOOGLE_CLIENT_ID"),
        EnvVar::required("GOOGLE_CLIENT_SECRET").secret(),
        EnvVar::required("GOOGLE_DRIVE_REDIRECT_URI"),
        EnvVar::required("TOKEN_ENCRYPTION_KEY").secret(),
        EnvVar::optional("GOOGLE_DRIVE_API_URL"),
        EnvVar::optional("GOOGLE_OAUTH_AUTH_URL"),
        EnvVar::optional("GOOGLE_OAUTH_TOKEN_URL"),
    ],
    settings: google_drive,
    http: Some(QUICK),
};

fn google_drive(config: &Config) -> Option<Settings> {
    let d = config.external.google_drive.as_ref()?;
    Some(
        Settings::default()
            .value("GOOGLE_CLIENT_ID", &d.client_id)
            .value("GOOGLE_DRIVE_REDIRECT_URI", &d.redirect_uri)
            .value("GOOGLE_DRIVE_API_URL", &d.api_url)
            .value("GOOGLE_OAUTH_AUTH_URL", &d.oauth.auth_url)
            .value("GOOGLE_OAUTH_TOKEN_URL", &d.oauth.token_url)
            .secret(&d.client_secret),
    )
}

static JUDGE0: Spec = Spec {
    id: IntegrationId::Judge0,
    vars: &[
        EnvVar::required("JUDGE0_URL"),
        EnvVar::optional("JUDGE0_API_KEY").secret(),
        EnvVar::optional("JUDGE0_AUTH"),
        EnvVar::optional("JUDGE0_WAIT"),
        EnvVar::optional("JUDGE0_LANGUAGES_TTL_SECONDS"),
        EnvVar::optional("CODE_RUN_MAX_SOURCE_BYTES"),
        EnvVar::optional("CODE_RUN_MAX_STDIN_BYTES"),
        EnvVar::optional("CODE_RUN_CPU_SECONDS"),
        EnvVar::optional("CODE_RUN_MEMORY_KB"),
        EnvVar::optional("CODE_RUN_PER_MINUTE"),
    ],
    settings: judge0,
    // `wait=true` holds the request until the program has run: CPU limit plus queueing.
    http: Some(HttpPolicy {
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(30),
        ..HttpPolicy::DEFAULT
    }),
};

fn judge0(config: &Config) -> Option<Settings> {
    let j = config.external.judge0.as_ref()?;
    Some(
        Settings::default()
            .value("JUDGE0_URL", &j.url)
            .value(
                "JUDGE0_AUTH",
                match j.auth {
                    Judge0Auth::AuthToken => "auth-token",
                    Judge0Auth::RapidApi => "rapidapi",
                },
            )
            .value("JUDGE0_WAIT", j.wait)
            .value("JUDGE0_LANGUAGES_TTL_SECONDS", j.languages_ttl.as_secs())
            .value("CODE_RUN_MAX_SOURCE_BYTES", j.max_source_bytes)
            .value("CODE_RUN_MAX_STDIN_BYTES", j.max_stdin_bytes)
            .value("CODE_RUN_CPU_SECONDS", j.cpu_time_limit_secs)
            .value("CODE_RUN_MEMORY_KB", j.memory_limit_kb)
            .value("CODE_RUN_PER_MINUTE", j.runs_per_minute)
            .opt_secret(j.api_key.as_ref()),
    )
}

static ELEVENLABS: Spec = Spec {
    id: IntegrationId::ElevenLabs,
    vars: &[
        EnvVar::required("ELEVENLABS_API_KEY").secret(),
        EnvVar::required("ELEVENLABS_AGENT_ID"),
        EnvVar::required("ELEVENLABS_AGENT_PHONE_NUMBER_ID"),
        EnvVar::required("ELEVENLABS_WEBHOOK_SECRET").secret(),
        EnvVar::optional("ELEVENLABS_API_URL"),
        EnvVar::optional("ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS"),
    ],
    settings: elevenlabs,
    http: Some(QUICK),
};

fn elevenlabs(config: &Config) -> Option<Settings> {
    let e = config.external.elevenlabs.as_ref()?;
    Some(
        Settings::default()
            .value("ELEVENLABS_API_URL", &e.api_url)
            .value("ELEVENLABS_AGENT_ID", &e.agent_id)
            .value("ELEVENLABS_AGENT_PHONE_NUMBER_ID", &e.agent_phone_number_id)
            .value(
                "ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS",
                e.webhook_tolerance.as_secs(),
            )
            .secret(&e.api_key)
            .secret(&e.webhook_secret),
    )
}

static GRAPHY: Spec = Spec {
    id: IntegrationId::Graphy,
    vars: &[
        EnvVar::required("GRAPHY_MID"),
        EnvVar::required("GRAPHY_API_KEY").secret(),
        EnvVar::optional("GRAPHY_API_URL"),
        EnvVar::optional("PARTNER_PROXY_MAX_REQUEST_BYTES"),
        EnvVar::optional("PARTNER_PROXY_MAX_RESPONSE_BYTES"),
    ],
    settings: graphy,
    http: Some(QUICK),
};

fn graphy(config: &Config) -> Option<Settings> {
    let g = config.external.graphy.as_ref()?;
    proxy_settings(config)
        .value("GRAPHY_API_URL", &g.api_url)
        .value("GRAPHY_MID", &g.mid)
        .secret(&g.api_key)
        .into()
}

static MR_HIRE: Spec = Spec {
    id: IntegrationId::MrHire,
    vars: &[
        EnvVar::required("MR_HIRE_BACKEND_URL"),
        EnvVar::optional("MR_HIRE_API_KEY").secret(),
        EnvVar::optional("PARTNER_PROXY_MAX_REQUEST_BYTES"),
        EnvVar::optional("PARTNER_PROXY_MAX_RESPONSE_BYTES"),
    ],
    settings: mr_hire,
    http: Some(QUICK),
};

fn mr_hire(config: &Config) -> Option<Settings> {
    let p = config.external.mr_hire.as_ref()?;
    proxy_settings(config)
        .value("MR_HIRE_BACKEND_URL", &p.base_url)
        .opt_secret(p.api_key.as_ref())
        .into()
}

static CLASS_AGENT: Spec = Spec {
    id: IntegrationId::ClassAgent,
    vars: &[
        EnvVar::required("CLASS_AGENT_URL"),
        EnvVar::required("CLASS_AGENT_API_KEY").secret(),
        EnvVar::optional("PARTNER_PROXY_MAX_REQUEST_BYTES"),
        EnvVar::optional("PARTNER_PROXY_MAX_RESPONSE_BYTES"),
    ],
    settings: class_agent,
    // An agent's answer may come from a language model: give it longer.
    http: Some(HttpPolicy {
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(45),
        ..HttpPolicy::DEFAULT
    }),
};

fn class_agent(config: &Config) -> Option<Settings> {
    let p = config.external.class_agent.as_ref()?;
    proxy_settings(config)
        .value("CLASS_AGENT_URL", &p.base_url)
        .opt_secret(p.api_key.as_ref())
        .into()
}

fn proxy_settings(config: &Config) -> Settings {
    let limits = config.external.proxy_limits();
    Settings::default()
        .value("PARTNER_PROXY_MAX_REQUEST_BYTES", limits.max_request_bytes)
        .value(
            "PARTNER_PROXY_MAX_RESPONSE_BYTES",
            limits.max_response_bytes,
        )
}

/// Not called over HTTP: asset URLs point at the CDN instead of this origin.
static CDN: Spec = Spec {
    id: IntegrationId::Cdn,
    vars: &[EnvVar::required("MAS_ASSETS_CDN_URL")],
    settings: cdn,
    http: None,
};

fn cdn(config: &Config) -> Option<Settings> {
    let url = config.external.assets_cdn_url.as_ref()?;
    Some(Settings::default().value("MAS_ASSETS_CDN_URL", url))
}
