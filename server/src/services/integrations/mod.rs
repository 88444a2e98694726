//! Third-party integrations (S3 buckets, SMTP, LiteLLM, Razorpay, Exotel, ...): one registry that knows, for
//! each, its variables, whether it is configured and why not, plus the one outbound
//! HTTP policy ([`http`]) every provider call uses.
//!
//! - Declare an integration in [`catalog`]; its settings are parsed in `config.rs`.
//! - Handlers and jobs ask [`Integrations::ensure`] (or [`Integrations::http`] for
//!   its policy client): a disabled integration answers 503 `INTEGRATION_DISABLED`
//!   naming the variables to set.
//! - `GET /api/admin/integrations` shows [`Integrations::list`].

pub mod backoff;
pub mod breaker;
pub mod catalog;
pub mod http;

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::config::{Config, Secret};
use crate::error::{AppError, AppResult};
pub use http::{CircuitView, HttpClient, HttpPolicy, OutboundError};

/// Every integration the backend knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrationId {
    /// Student documents bucket (resumes, documents, avatars, signed agreements).
    S3Documents,
    S3Recordings,
    /// Public banner assets.
    S3Assets,
    /// Private invoices; optional (invoices are still emailed without it).
    S3Invoices,
    Smtp,
    LiteLlm,
    /// Razorpay Orders / Refunds API and checkout verification.
    Razorpay,
    RazorpayWebhooks,
    /// Exotel Calls and SMS API.
    Exotel,
    ExotelWebhooks,
    /// WhatsApp Cloud API template sends.
    WhatsApp,
    WhatsAppWebhooks,
    /// Leegality eSign requests.
    Leegality,
    LeegalityWebhooks,
    /// mr-hire-backend calling this backend (service token).
    MrHireCaller,
    // Google, code execution, voice calls, partners (outbound proxies), CDN.
    /// Sign-in with Google (OpenID Connect).
    Google,
    GoogleCalendar,
    GoogleDrive,
    Judge0,
    ElevenLabs,
    Graphy,
    MrHire,
    ClassAgent,
    Cdn,
}

impl IntegrationId {
    /// In listing order; index = discriminant.
    pub const ALL: [IntegrationId; 24] = [
        IntegrationId::S3Documents,
        IntegrationId::S3Recordings,
        IntegrationId::S3Assets,
        IntegrationId::S3Invoices,
        IntegrationId::Smtp,
        IntegrationId::LiteLlm,
        IntegrationId::Razorpay,
        IntegrationId::RazorpayWebhooks,
        IntegrationId::Exotel,
        IntegrationId::ExotelWebhooks,
        IntegrationId::WhatsApp,
        IntegrationId::WhatsAppWebhooks,
        IntegrationId::Leegality,
        IntegrationId::LeegalityWebhooks,
        IntegrationId::MrHireCaller,
        IntegrationId::Google,
        IntegrationId::GoogleCalendar,
        IntegrationId::GoogleDrive,
        IntegrationId::Judge0,
        IntegrationId::ElevenLabs,
        IntegrationId::Graphy,
        IntegrationId::MrHire,
        IntegrationId::ClassAgent,
        IntegrationId::Cdn,
    ];

    /// Stable name: the listing's `name`, log fields, error messages.
    pub fn name(self) -> &'static str {
        match self {
            IntegrationId::S3Documents => "s3-documents",
            IntegrationId::S3Recordings => "s3-recordings",
            IntegrationId::S3Assets => "s3-assets",
            IntegrationId::S3Invoices => "s3-invoices",
            IntegrationId::Smtp => "smtp",
            IntegrationId::LiteLlm => "litellm",
            IntegrationId::Razorpay => "razorpay",
            IntegrationId::RazorpayWebhooks => "razorpay-webhooks",
            IntegrationId::Exotel => "exotel",
            IntegrationId::ExotelWebhooks => "exotel-webhooks",
            IntegrationId::WhatsApp => "whatsapp",
            IntegrationId::WhatsAppWebhooks => "whatsapp-webhooks",
            IntegrationId::Leegality => "leegality",
            IntegrationId::LeegalityWebhooks => "leegality-webhooks",
            IntegrationId::MrHireCaller => "mr-hire-caller",
            IntegrationId::Google => "google",
            IntegrationId::GoogleCalendar => "google-calendar",
            IntegrationId::GoogleDrive => "google-drive",
            IntegrationId::Judge0 => "judge0",
            IntegrationId::ElevenLabs => "elevenlabs",
            IntegrationId::Graphy => "graphy",
            IntegrationId::MrHire => "mr-hire",
            IntegrationId::ClassAgent => "class-agent",
            IntegrationId::Cdn => "cdn",
        }
    }
}

/// One environment variable an integration reads.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    pub name: &'static str,
    /// The integration is disabled while a required variable is unset.
    pub required: bool,
    /// Never shown in settings, logs or messages.
    pub secret: bool,
}

impl EnvVar {
    pub const fn required(name: &'static str) -> Self {
        EnvVar {
            name,
            required: true,
            secret: false,
        }
    }
    pub const fn optional(name: &'static str) -> Self {
        EnvVar {
            name,
            required: false,
            secret: false,
        }
    }
    pub const fn secret(self) -> Self {
        EnvVar {
            secret: true,
            ..self
        }
    }
}

/// An integration's declaration.
pub struct Spec {
    pub id: IntegrationId,
    pub vars: &'static [EnvVar],
    /// Its effective settings when configured (its `Config` sub-struct is present).
    pub settings: fn(&Config) -> Option<Settings>,
    /// Set for integrations called over HTTP: each gets an [`HttpClient`].
    pub http: Option<HttpPolicy>,
}

/// What a configured integration reports: non-secret values by variable name, and
/// the secret values its client scrubs from messages.
#[derive(Debug, Default)]
pub struct Settings {
    values: BTreeMap<&'static str, String>,
    secrets: Vec<Secret>,
}

impl Settings {
    pub fn value(mut self, var: &'static str, value: impl ToString) -> Self {
        self.values.insert(var, value.to_string());
        self
    }
    pub fn opt(self, var: &'static str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.value(var, v),
            None => self,
        }
    }
    pub fn secret(mut self, secret: &Secret) -> Self {
        self.secrets.push(secret.clone());
        self
    }
    pub fn opt_secret(self, secret: Option<&Secret>) -> Self {
        match secret {
            Some(s) => self.secret(s),
            None => self,
        }
    }
}

/// Every declared variable name (config.rs records which are set).
pub fn declared_vars() -> impl Iterator<Item = &'static str> {
    IntegrationId::ALL
        .into_iter()
        .flat_map(|id| catalog::spec(id).vars.iter().map(|v| v.name))
}

/// One row of `GET /api/admin/integrations`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationView {
    pub name: String,
    pub configured: bool,
    /// Required variables still unset (empty when configured).
    pub missing: Vec<String>,
    /// Effective non-secret settings by variable name (empty when not configured).
    pub settings: BTreeMap<String, String>,
    /// The HTTP circuit breaker, for integrations called over HTTP.
    pub circuit: Option<CircuitView>,
}

struct Entry {
    spec: &'static Spec,
    configured: bool,
    missing: Vec<&'static str>,
    settings: BTreeMap<&'static str, String>,
    http: Option<HttpClient>,
}

/// The registry: built once per process from [`Config`], shared through `AppState`.
pub struct Integrations {
    /// Indexed by `IntegrationId as usize` (built from `IntegrationId::ALL`).
    entries: Vec<Entry>,
}

impl Integrations {
    /// Builds the registry and logs one line per disabled integration.
    pub fn new(config: &Config) -> Self {
        let registry = Self::from_config(config);
        for entry in &registry.entries {
            if !entry.configured {
                tracing::info!(
                    integration = entry.spec.id.name(),
                    missing = entry.missing.join(","),
                    "integration disabled: {}",
                    disabled(entry)
                );
            }
        }
        registry
    }

    /// [`Integrations::new`] without the log lines.
    pub fn from_config(config: &Config) -> Self {
        let entries = IntegrationId::ALL
            .into_iter()
            .map(|id| {
                let spec = catalog::spec(id);
                let settings = (spec.settings)(config);
                let configured = settings.is_some();
                let required = spec.vars.iter().filter(|v| v.required).map(|v| v.name);
                let missing: Vec<_> = if configured {
                    Vec::new()
                } else {
                    let unset: Vec<_> = required
                        .clone()
                        .filter(|v| !config.integrations.set_vars.contains(v))
                        .collect();
                    // All set yet not configured cannot happen today; name them all anyway.
                    if unset.is_empty() {
                        required.collect()
                    } else {
                        unset
                    }
                };
                let Settings { values, secrets } = settings.unwrap_or_default();
                // Only declared, non-secret variables are ever shown.
                let values = values
                    .into_iter()
                    .filter(|(var, _)| spec.vars.iter().any(|v| v.name == *var && !v.secret))
                    .collect();
                Entry {
                    spec,
                    configured,
                    missing,
                    settings: values,
                    http: spec.http.map(|policy| {
                        HttpClient::new(id.name(), config.integrations.tune(policy), secrets)
                    }),
                }
            })
            .collect();
        Integrations { entries }
    }

    fn entry(&self, id: IntegrationId) -> &Entry {
        &self.entries[id as usize]
    }

    pub fn is_configured(&self, id: IntegrationId) -> bool {
        self.entry(id).configured
    }

    /// `Ok` when configured, else 503 `INTEGRATION_DISABLED` naming what to set.
    pub fn ensure(&self, id: IntegrationId) -> AppResult<()> {
        let entry = self.entry(id);
        if entry.configured {
            Ok(())
        } else {
            Err(disabled(entry))
        }
    }

    /// The integration's policy client, once it is configured.
    pub fn http(&self, id: IntegrationId) -> AppResult<&HttpClient> {
        self.ensure(id)?;
        self.entry(id).http.as_ref().ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "integration {} declares no HTTP policy",
                id.name()
            ))
        })
    }

    pub fn list(&self) -> Vec<IntegrationView> {
        self.entries
            .iter()
            .map(|e| IntegrationView {
                name: e.spec.id.name().to_string(),
                configured: e.configured,
                missing: e.missing.iter().map(|v| v.to_string()).collect(),
                settings: e
                    .settings
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                circuit: e.http.as_ref().map(HttpClient::circuit),
            })
            .collect()
    }
}

fn disabled(entry: &Entry) -> AppError {
    AppError::integration_disabled(entry.spec.id.name(), entry.missing.clone())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(extra: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> = [
            ("DATABASE_URL", "postgres://u@127.0.0.1/db"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Config::from_map(&vars).unwrap()
    }

    fn row(list: &[IntegrationView], name: &str) -> IntegrationView {
        list.iter().find(|r| r.name == name).unwrap().clone()
    }

    #[test]
    fn catalog_matches_the_ids() {
        for (i, id) in IntegrationId::ALL.into_iter().enumerate() {
            assert_eq!(id as usize, i);
            assert_eq!(catalog::spec(id).id, id);
        }
    }

    #[test]
    fn unset_integrations_name_their_required_variables() {
        let reg = Integrations::from_config(&config(&[]));
        let list = reg.list();
        assert_eq!(
            list.iter()
                .map(|r| r.name.as_str())
                .take(6)
                .collect::<Vec<_>>(),
            [
                "s3-documents",
                "s3-recordings",
                "s3-assets",
                "s3-invoices",
                "smtp",
                "litellm"
            ]
        );
        assert_eq!(row(&list, "s3-documents").missing, ["S3_DOCUMENTS_BUCKET"]);
        assert_eq!(
            row(&list, "razorpay").missing,
            ["RAZORPAY_KEY_ID", "RAZORPAY_KEY_SECRET"]
        );
        assert_eq!(
            row(&list, "exotel-webhooks").missing,
            ["EXOTEL_WEBHOOK_TOKEN"]
        );
        assert_eq!(row(&list, "smtp").missing, ["SMTP_HOST"]);
        assert_eq!(
            row(&list, "litellm").missing,
            ["LITELLM_BASE_URL", "LITELLM_API_KEY"]
        );
        let err = reg.ensure(IntegrationId::LiteLlm).unwrap_err();
        assert_eq!(err.status().as_u16(), 503);
        assert_eq!(err.code(), "INTEGRATION_DISABLED");
        assert_eq!(
            err.to_string(),
            "litellm is not configured: set LITELLM_BASE_URL, LITELLM_API_KEY"
        );
    }

    #[test]
    fn a_partly_set_integration_names_only_what_is_missing() {
        // LITELLM_API_KEY alone does not configure LiteLLM (the URL is what switches it on).
        let reg = Integrations::from_config(&config(&[("LITELLM_API_KEY", "sk-x")]));
        assert_eq!(row(&reg.list(), "litellm").missing, ["LITELLM_BASE_URL"]);
    }

    #[test]
    fn configured_integrations_show_settings_but_never_secrets() {
        let reg = Integrations::from_config(&config(&[
            ("SMTP_HOST", "smtp.example.com"),
            ("SMTP_USER", "mailer"),
            ("SMTP_PASSWORD", "smtp-secret-value"),
            ("LITELLM_BASE_URL", "http://llm.local/v1"),
            ("LITELLM_API_KEY", "sk-secret-value"),
        ]));
        let list = reg.list();
        let smtp = row(&list, "smtp");
        assert!(smtp.configured && smtp.missing.is_empty());
        assert_eq!(smtp.settings["SMTP_HOST"], "smtp.example.com");
        assert_eq!(smtp.settings["SMTP_PORT"], "587");
        assert!(!smtp.settings.contains_key("SMTP_PASSWORD"));
        let llm = row(&list, "litellm");
        assert_eq!(llm.settings["LITELLM_MODEL"], "gpt-4o-mini");
        assert!(llm.circuit.is_some() && smtp.circuit.is_none());
        let json = serde_json::to_string(&list).unwrap();
        assert!(!json.contains("secret-value"), "{json}");
        assert!(reg.http(IntegrationId::LiteLlm).is_ok());
        assert!(reg.ensure(IntegrationId::S3Documents).is_err());
    }
}
