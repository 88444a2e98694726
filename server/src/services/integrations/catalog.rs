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
        IntegrationId::S3 => &S3,
        IntegrationId::Smtp => &SMTP,
        IntegrationId::LiteLlm => &LITELLM,
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
