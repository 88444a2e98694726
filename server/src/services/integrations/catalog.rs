//! Every integration's declaration: its variables and its effective settings.
//!
//! Adding one: a variant in [`IntegrationId`] (and `ALL`), a sub-struct parsed in
//! `config.rs`, and a [`Spec`] here returned by [`spec`].

use std::time::Duration;

use super::http::HttpPolicy;
use super::{EnvVar, IntegrationId, Settings, Spec};
use crate::config::{Config, SmtpTls};

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
        IntegrationId::MrHire => &MR_HIRE,
    }
}

// --- S3 buckets: AWS credentials come from the SDK's default chain, not from these
// variables. The first variable of each is the canonical name, the others the seed's.

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
        EnvVar::optional("S3_BUCKET"),
        EnvVar::optional("AWS_S3_DOCUMENTS_BUCKET"),
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
        EnvVar::optional("AWS_S3_BUCKET_NAME"),
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
        EnvVar::optional("AWS_S3_BANNER_BUCKET"),
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
        EnvVar::optional("AWS_S3_INVOICE_BUCKET"),
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

static MR_HIRE: Spec = Spec {
    id: IntegrationId::MrHire,
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
