//! Outgoing mail over SMTP (lettre), rendered from the templates in [`templates`].

pub mod templates;

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment as MailAttachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{SmtpConfig, SmtpTls};
pub use templates::{Attachment, Rendered, TemplateError, render};

const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(
        "SMTP is not configured: set SMTP_HOST (and SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SMTP_FROM)"
    )]
    NotConfigured,
    #[error("invalid SMTP configuration: {0}")]
    BadConfig(String),
    #[error("invalid address {0:?}")]
    BadAddress(String),
    #[error("building message: {0}")]
    Build(String),
    #[error("SMTP delivery failed: {0}")]
    Delivery(String),
}

impl MailError {
    /// Retrying helps only when the server or the network may recover.
    pub fn is_transient(&self) -> bool {
        matches!(self, MailError::Delivery(_))
    }
}

/// A configured SMTP transport (or the reason there is none).
pub struct Mailer {
    transport: Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox), MailError>,
}

impl Mailer {
    pub fn from_config(config: Option<&SmtpConfig>) -> Mailer {
        let transport = match config {
            None => Err(MailError::NotConfigured),
            Some(c) => build_transport(c),
        };
        Mailer { transport }
    }

    /// Sends `mail` to `to`. `idempotency_key` (stable across retries of the same
    /// message) becomes the `Message-ID` `<key@sender domain>`, so a receiving system
    /// can drop a duplicate if a retry ever sends it twice.
    pub async fn send(
        &self,
        to: &str,
        mail: &Rendered,
        idempotency_key: Option<&str>,
    ) -> Result<(), MailError> {
        let (transport, from) = self.transport.as_ref().map_err(clone_error)?;
        let to: Mailbox = to
            .parse()
            .map_err(|_| MailError::BadAddress(to.to_string()))?;
        let message_id = idempotency_key.map(|key| format!("<{key}@{}>", from.email.domain()));
        let body = MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone());
        // Attachments make it multipart/mixed: the readable part first, then the files.
        let body = if mail.attachments.is_empty() {
            body
        } else {
            let mut mixed = MultiPart::mixed().multipart(body);
            for a in &mail.attachments {
                let content_type = ContentType::parse(&a.content_type)
                    .map_err(|e| MailError::Build(format!("attachment {}: {e}", a.filename)))?;
                mixed = mixed.singlepart(
                    MailAttachment::new(a.filename.clone()).body(a.bytes.clone(), content_type),
                );
            }
            mixed
        };
        let message = Message::builder()
            .message_id(message_id)
            .from(from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Delivery(crate::error::with_sources(&e)))
    }
}

fn clone_error(err: &MailError) -> MailError {
    match err {
        MailError::NotConfigured => MailError::NotConfigured,
        MailError::BadConfig(m) => MailError::BadConfig(m.clone()),
        MailError::BadAddress(m) => MailError::BadAddress(m.clone()),
        MailError::Build(m) => MailError::Build(m.clone()),
        MailError::Delivery(m) => MailError::Delivery(m.clone()),
    }
}

fn build_transport(
    c: &SmtpConfig,
) -> Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox), MailError> {
    let from: Mailbox = c
        .from
        .parse()
        .map_err(|_| MailError::BadConfig(format!("SMTP_FROM {:?} is not a mailbox", c.from)))?;
    let builder = match c.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
        SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)
            .map_err(|e| MailError::BadConfig(format!("SMTP_HOST: {e}")))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host)
            .map_err(|e| MailError::BadConfig(format!("SMTP_HOST: {e}")))?,
    };
    let mut builder = builder.port(c.port).timeout(Some(SMTP_TIMEOUT));
    if let Some(user) = &c.username {
        let password = c
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok((builder.build(), from))
}
