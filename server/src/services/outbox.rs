//! Transactional email outbox. Producers insert a row in the same transaction as
//! the change that needs the mail; the email worker delivers pending rows
//! (`sent_at is null`) and stamps `sent_at` / `last_error`.

use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// Template names the email worker knows how to render.
pub mod templates {
    /// Data: `name`, `otp`, `expiresInMinutes`.
    pub const VERIFY_EMAIL: &str = "verify_email";
    /// Data: `name`, `otp`, `expiresInMinutes`.
    pub const PASSWORD_RESET: &str = "password_reset";
    /// Data: `name`. Someone registered with an address that has an account.
    pub const REGISTRATION_ATTEMPT: &str = "registration_attempt";
    /// Data: `name`, `invoiceNumber`, `item`, `amount`, `attachments`
    /// (`[{filename, contentType, base64}]`).
    pub const PAYMENT_INVOICE: &str = "payment_invoice";
}

/// Channel notified (with the row id) when a message is enqueued, so a worker
/// can `LISTEN` instead of polling tightly. Delivered on commit.
pub const NOTIFY_CHANNEL: &str = "email_outbox";

/// One message for the email worker: recipient, template and its data.
#[derive(Debug, Clone, Serialize)]
pub struct EmailMessage {
    pub to: String,
    pub template: String,
    pub data: Value,
}

impl EmailMessage {
    pub fn new(to: impl Into<String>, template: impl Into<String>, data: Value) -> Self {
        EmailMessage {
            to: to.into(),
            template: template.into(),
            data,
        }
    }
}

/// The idempotency key of the outbox row `id` (also its `Message-ID` local part).
pub fn message_key(id: Uuid) -> String {
    format!("outbox.{id}")
}

/// Inserts the message. Pass a transaction (`&mut tx`) to make the mail part of
/// a larger change, or `&mut *pool.acquire().await?` on its own.
pub async fn enqueue_email(conn: &mut PgConnection, message: &EmailMessage) -> AppResult<Uuid> {
    if !crate::validation::is_email(&message.to) {
        return Err(AppError::internal(anyhow::anyhow!(
            "refusing to enqueue mail to an invalid address"
        )));
    }
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into email_outbox (id, to_email, template, payload) values ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(&message.to)
    .bind(&message.template)
    .bind(&message.data)
    .execute(&mut *conn)
    .await?;
    sqlx::query("select pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(id)
}
