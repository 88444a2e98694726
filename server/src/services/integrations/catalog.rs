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
        IntegrationId::S3Documents => &S3_DOCUMENTS,
        IntegrationId::S3Recordings => &S3_RECORDINGS,
        IntegrationId::S3Assets => &S3_ASSETS,
        IntegrationId::S3Invoices => &S3_INVOICES,
        IntegrationId::Smtp => &SMTP,
        IntegrationId::LiteLlm => &LITELLM,
        IntegrationId::Razorpay => &RAZORPAY,
        IntegrationId::RazorpayWebhooks => &RAZORPAY_WEBHOOKS,
        IntegrationId::Exotel => &EXOTEL,
        IntegrationId::ExotelWebhooks => &EXOTEL_WEBHOOKS,
        IntegrationId::WhatsApp => &WHATSAPP,
        IntegrationId::WhatsAppWebhooks => &WHATSAPP_WEBHOOKS,
        IntegrationId::Leegality => &LEEGALITY,
        IntegrationId::LeegalityWebhooks => &LEEGALITY_WEBHOOKS,
        IntegrationId::MrHireCaller => &MR_HIRE_CALLER,
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

// --- S3 buckets: AWS credentials come from the SDK's default chain, not from these
// variables. The seed's names of the buckets are accepted (`config::reference::ALIASES`).

const S3_SHARED: [EnvVar; 4] = [
    EnvVar::optional("AWS_REGION"),
    EnvVar::optional("S3_ENDPOINT"),
    EnvVar::optional("S3_PRESIGN_TTL_SECONDS"),
    EnvVar::optional("S3_PRIVATE_GET_TTL_SECONDS"),
];

static S3_DOCUMENTS: Spec = Spec {
    id: IntegrationId::S3Documents,
    vars: &[
        EnvVar::required("S3_DOCUMENTS_BUCKET"),
        S3_SHARED[0],
        S3_SHARED[1],
        S3_SHARED[2],
        S3_SHARED[3],
        EnvVar::optional("UPLOAD_CONFIRM_WINDOW_SECONDS"),
    ],
    settings: |c| bucket_settings(c, "S3_DOCUMENTS_BUCKET", c.storage.documents.as_ref()),
    http: None,
};

static S3_RECORDINGS: Spec = Spec {
    id: IntegrationId::S3Recordings,
    vars: &[
        EnvVar::required("S3_RECORDINGS_BUCKET"),
        S3_SHARED[0],
        S3_SHARED[1],
        S3_SHARED[2],
        S3_SHARED[3],
    ],
    settings: |c| bucket_settings(c, "S3_RECORDINGS_BUCKET", c.storage.recordings.as_ref()),
    http: None,
};

static S3_ASSETS: Spec = Spec {
    id: IntegrationId::S3Assets,
    vars: &[
        EnvVar::required("S3_ASSETS_BUCKET"),
        EnvVar::optional("MAS_ASSETS_CDN_URL"),
        S3_SHARED[0],
        S3_SHARED[1],
        S3_SHARED[2],
    ],
    settings: |c| {
        bucket_settings(c, "S3_ASSETS_BUCKET", c.storage.assets.as_ref())
            .map(|s| s.opt("MAS_ASSETS_CDN_URL", c.storage.assets_cdn_url.as_ref()))
    },
    http: None,
};

static S3_INVOICES: Spec = Spec {
    id: IntegrationId::S3Invoices,
    vars: &[
        EnvVar::required("S3_INVOICES_BUCKET"),
        S3_SHARED[0],
        S3_SHARED[1],
        S3_SHARED[3],
    ],
    settings: |c| bucket_settings(c, "S3_INVOICES_BUCKET", c.storage.invoices.as_ref()),
    http: None,
};

fn bucket_settings(
    config: &Config,
    var: &'static str,
    bucket: Option<&String>,
) -> Option<Settings> {
    let storage = &config.storage;
    Some(
        Settings::default()
            .value(var, bucket?)
            .value("AWS_REGION", &storage.region)
            .opt("S3_ENDPOINT", storage.endpoint.as_ref())
            .value("S3_PRESIGN_TTL_SECONDS", storage.presign_ttl.as_secs())
            .value(
                "S3_PRIVATE_GET_TTL_SECONDS",
                storage.private_get_ttl.as_secs(),
            )
            .value(
                "UPLOAD_CONFIRM_WINDOW_SECONDS",
                storage.upload_confirm_window.as_secs(),
            ),
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

// --- Payments, calling, messaging, eSign -------------------------------------------

/// Provider APIs answer in well under a second; a create-order or connect-call call
/// that takes 15 s is better failed (the user can retry) than left hanging.
const PROVIDER_POLICY: HttpPolicy = HttpPolicy {
    connect_timeout: Duration::from_secs(5),
    timeout: Duration::from_secs(15),
    ..HttpPolicy::DEFAULT
};

// --- Google, code execution, voice calls, partners, CDN ------------------------------

/// Provider calls that answer quickly (discovery, tokens, REST reads and writes).
const QUICK: HttpPolicy = PROVIDER_POLICY;

static RAZORPAY: Spec = Spec {
    id: IntegrationId::Razorpay,
    vars: &[
        EnvVar::required("RAZORPAY_KEY_ID"),
        EnvVar::required("RAZORPAY_KEY_SECRET").secret(),
        EnvVar::optional("RAZORPAY_BASE_URL"),
    ],
    settings: |c| {
        let r = c.commerce.razorpay.as_ref()?;
        Some(
            Settings::default()
                .value("RAZORPAY_KEY_ID", &r.key_id)
                .value("RAZORPAY_BASE_URL", &r.base_url)
                .secret(&r.key_secret),
        )
    },
    http: Some(PROVIDER_POLICY),
};

static RAZORPAY_WEBHOOKS: Spec = Spec {
    id: IntegrationId::RazorpayWebhooks,
    vars: &[EnvVar::required("RAZORPAY_WEBHOOK_SECRET").secret()],
    settings: |c| {
        let secret = c.commerce.webhooks.razorpay.as_ref()?;
        Some(Settings::default().secret(secret))
    },
    http: None,
};

static EXOTEL: Spec = Spec {
    id: IntegrationId::Exotel,
    vars: &[
        EnvVar::required("EXOTEL_API_KEY"),
        EnvVar::required("EXOTEL_API_TOKEN").secret(),
        EnvVar::required("EXOTEL_SID"),
        EnvVar::required("EXOTEL_SUBDOMAIN"),
        EnvVar::required("EXOTEL_CALLER_ID"),
        EnvVar::optional("EXOTEL_BASE_URL"),
        EnvVar::optional("BACKEND_PUBLIC_URL"),
    ],
    settings: |c| {
        let e = c.commerce.exotel.as_ref()?;
        Some(
            Settings::default()
                .value("EXOTEL_API_KEY", &e.api_key)
                .value("EXOTEL_SID", &e.account_sid)
                .value("EXOTEL_SUBDOMAIN", &e.subdomain)
                .value("EXOTEL_CALLER_ID", &e.caller_id)
                .value("EXOTEL_BASE_URL", &e.base_url)
                .opt("BACKEND_PUBLIC_URL", c.commerce.public_url.as_ref())
                .secret(&e.api_token),
        )
    },
    http: Some(PROVIDER_POLICY),
};

static EXOTEL_WEBHOOKS: Spec = Spec {
    id: IntegrationId::ExotelWebhooks,
    vars: &[EnvVar::required("EXOTEL_WEBHOOK_TOKEN").secret()],
    settings: |c| {
        let token = c.commerce.webhooks.exotel_token.as_ref()?;
        Some(Settings::default().secret(token))
    },
    http: None,
};

static WHATSAPP: Spec = Spec {
    id: IntegrationId::WhatsApp,
    vars: &[
        EnvVar::required("WHATSAPP_ACCESS_TOKEN").secret(),
        EnvVar::required("WHATSAPP_PHONE_NUMBER_ID"),
        EnvVar::optional("WHATSAPP_GRAPH_API_VERSION"),
        EnvVar::optional("WHATSAPP_GRAPH_BASE_URL"),
        EnvVar::optional("WHATSAPP_TEMPLATE_BOOKING_CONFIRMATION"),
        EnvVar::optional("WHATSAPP_TEMPLATE_REMINDER"),
        EnvVar::optional("WHATSAPP_TEMPLATE_LANGUAGE"),
    ],
    settings: |c| {
        let w = c.commerce.whatsapp.as_ref()?;
        Some(
            Settings::default()
                .value("WHATSAPP_PHONE_NUMBER_ID", &w.phone_number_id)
                .value("WHATSAPP_GRAPH_API_VERSION", &w.graph_api_version)
                .value("WHATSAPP_GRAPH_BASE_URL", &w.base_url)
                .value(
                    "WHATSAPP_TEMPLATE_BOOKING_CONFIRMATION",
                    &w.booking_template,
                )
                .value("WHATSAPP_TEMPLATE_REMINDER", &w.reminder_template)
                .value("WHATSAPP_TEMPLATE_LANGUAGE", &w.template_language)
                .secret(&w.access_token),
        )
    },
    http: Some(PROVIDER_POLICY),
};

static WHATSAPP_WEBHOOKS: Spec = Spec {
    id: IntegrationId::WhatsAppWebhooks,
    vars: &[
        EnvVar::required("WHATSAPP_APP_SECRET").secret(),
        EnvVar::required("WHATSAPP_VERIFY_TOKEN").secret(),
    ],
    settings: |c| {
        let w = &c.commerce.webhooks;
        Some(
            Settings::default()
                .secret(w.whatsapp_app_secret.as_ref()?)
                .secret(w.whatsapp_verify_token.as_ref()?),
        )
    },
    http: None,
};

static LEEGALITY: Spec = Spec {
    id: IntegrationId::Leegality,
    vars: &[
        EnvVar::required("LEEGALITY_AUTH_TOKEN").secret(),
        EnvVar::required("LEEGALITY_PAP_PROFILE_ID"),
        EnvVar::optional("LEEGALITY_BASE_URL"),
        EnvVar::optional("LEEGALITY_PAP_DOCUMENT_NAME"),
    ],
    settings: |c| {
        let l = c.commerce.leegality.as_ref()?;
        Some(
            Settings::default()
                .value("LEEGALITY_PAP_PROFILE_ID", &l.pap_profile_id)
                .value("LEEGALITY_BASE_URL", &l.base_url)
                .value("LEEGALITY_PAP_DOCUMENT_NAME", &l.pap_document_name)
                .secret(&l.auth_token),
        )
    },
    http: Some(PROVIDER_POLICY),
};

static LEEGALITY_WEBHOOKS: Spec = Spec {
    id: IntegrationId::LeegalityWebhooks,
    vars: &[EnvVar::required("LEEGALITY_PRIVATE_SALT").secret()],
    settings: |c| {
        let salt = c.commerce.webhooks.leegality_private_salt.as_ref()?;
        Some(Settings::default().secret(salt))
    },
    http: None,
};

static MR_HIRE_CALLER: Spec = Spec {
    id: IntegrationId::MrHireCaller,
    vars: &[
        EnvVar::required("MR_HIRE_SERVICE_TOKEN").secret(),
        EnvVar::optional("MR_HIRE_SERVICE_TOKEN_PREVIOUS").secret(),
    ],
    settings: |c| {
        let mut settings = Settings::default();
        if c.commerce.mr_hire_tokens.is_empty() {
            return None;
        }
        for token in &c.commerce.mr_hire_tokens {
            settings = settings.secret(token);
        }
        Some(settings)
    },
    http: None,
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
    let url = config.storage.assets_cdn_url.as_ref()?;
    Some(Settings::default().value("MAS_ASSETS_CDN_URL", url))
}
