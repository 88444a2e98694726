//! Razorpay's REST API (Orders, Refunds) through the integration HTTP policy, and the
//! two signature checks Razorpay documents.
//!
//! Contracts followed:
//! - Orders API, `POST /v1/orders` with HTTP basic auth `key_id:key_secret`, body
//!   `{amount (paise), currency, receipt, notes}` → order entity `{id: "order_…",
//!   entity: "order", amount, currency, receipt, status: "created"}`:
//!   https://razorpay.com/docs/api/orders/create/
//! - Refunds API, `POST /v1/payments/{payment_id}/refund` `{amount, receipt, notes}` →
//!   refund entity `{id: "rfnd_…", entity: "refund", amount, payment_id, status}`:
//!   https://razorpay.com/docs/api/refunds/create-normal/
//! - Checkout signature: `razorpay_signature` = hex HMAC-SHA256(`order_id|payment_id`,
//!   key secret), with the order id *we* stored, never one from the callback:
//!   https://razorpay.com/docs/payments/payment-gateway/s2s-integration/test-s2s/best-practices/security
//! - Webhook signature: `X-Razorpay-Signature` = hex HMAC-SHA256(raw body, webhook
//!   secret), over the exact bytes received; `X-Razorpay-Event-Id` identifies an event
//!   across redeliveries: https://razorpay.com/docs/webhooks/validate-test/

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::integrations::IntegrationId;
use super::webhooks::signature;
use crate::config::RazorpayConfig;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Order {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub payment_id: String,
    #[serde(default)]
    pub status: String,
}

fn config(state: &AppState) -> AppResult<&RazorpayConfig> {
    state.integrations.ensure(IntegrationId::Razorpay)?;
    state.config.commerce.razorpay.as_ref().ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("razorpay configured without its settings"))
    })
}

pub fn key_id(state: &AppState) -> AppResult<&str> {
    Ok(&config(state)?.key_id)
}

/// Creates the order for exactly `amount_paise` (from our catalogue). A POST without
/// an idempotency guarantee, so the policy sends it once.
pub async fn create_order(
    state: &AppState,
    amount_paise: i64,
    currency: &str,
    receipt: &str,
    notes: serde_json::Value,
) -> AppResult<Order> {
    let c = config(state)?;
    let client = state.integrations.http(IntegrationId::Razorpay)?;
    let url = format!("{}/v1/orders", c.base_url);
    let res = client
        .send(|http| {
            http.post(&url)
                .basic_auth(&c.key_id, Some(c.key_secret.expose()))
                .json(&json!({
                    "amount": amount_paise,
                    "currency": currency,
                    "receipt": receipt,
                    "notes": notes,
                }))
        })
        .await?;
    let order: Order = client.json(res).await?;
    // The order must be for what we asked: anything else is not an order we can sell.
    if order.amount != amount_paise || order.currency != currency || order.id.is_empty() {
        return Err(AppError::BadGateway(
            "razorpay returned an order that does not match the request".into(),
        ));
    }
    Ok(order)
}

/// Refunds `amount_paise` of a captured payment.
pub async fn refund(
    state: &AppState,
    payment_id: &str,
    amount_paise: i64,
    receipt: &str,
) -> AppResult<Refund> {
    let c = config(state)?;
    let client = state.integrations.http(IntegrationId::Razorpay)?;
    let url = format!("{}/v1/payments/{payment_id}/refund", c.base_url);
    let res = client
        .send(|http| {
            http.post(&url)
                .basic_auth(&c.key_id, Some(c.key_secret.expose()))
                .json(&json!({"amount": amount_paise, "receipt": receipt}))
        })
        .await?;
    let refund: Refund = client.json(res).await?;
    if refund.id.is_empty() {
        return Err(AppError::BadGateway(
            "razorpay returned a refund without an id".into(),
        ));
    }
    Ok(refund)
}

/// The checkout handler's signature over our stored order id and the payment id.
pub fn checkout_signature_matches(
    state: &AppState,
    order_id: &str,
    payment_id: &str,
    signature_hex: &str,
) -> AppResult<bool> {
    let c = config(state)?;
    let message = format!("{order_id}|{payment_id}");
    Ok(signature::hmac_sha256_hex_matches(
        c.key_secret.expose().as_bytes(),
        message.as_bytes(),
        signature_hex,
    ))
}
