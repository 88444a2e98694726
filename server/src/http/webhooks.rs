//! Inbound webhooks of Razorpay, WhatsApp (Meta), Exotel and Leegality, reached at
//! `BACKEND_PUBLIC_URL`. Each handler checks the provider's signature over the raw
//! body before parsing, then hands the event to the inbox (`services::webhooks`) and
//! answers 200 at once; the work happens on databaseQueue.
//!
//! While a webhook's secret is unset it answers **503 `INTEGRATION_DISABLED`**, not
//! 404: every one of these providers retries non-2xx deliveries (Razorpay for 24 h,
//! Meta for days), so events sent during a misconfiguration are delivered again once
//! the secret is set, instead of being dropped as "no such endpoint"; the route is in
//! the public API document anyway, so a 404 would hide nothing; and 503 names the
//! variable to set, like every other disabled integration. A bad or missing
//! signature is a 401 (the provider must not be told more), a body over
//! `WEBHOOK_BODY_LIMIT_BYTES` a 413.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiQuery, ClientAddr, WebhookBody};
use super::response::{Envelope, ok};
use crate::config::Secret;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::services::integrations::IntegrationId;
use crate::services::rate_limit::{self, LimitName};
use crate::services::webhooks::{self, Accepted, Inbound, Provider, signature};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(razorpay))
        .routes(routes!(whatsapp_verify, whatsapp))
        .routes(routes!(exotel_status))
        .routes(routes!(leegality))
}

/// The acknowledgement every webhook gets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    /// Always `true`: the event is stored (or was already).
    pub received: bool,
    /// The event was delivered before; nothing was done this time.
    pub duplicate: bool,
}

fn ack(accepted: Accepted) -> Json<Envelope<Ack>> {
    ok(Ack {
        received: true,
        duplicate: accepted == Accepted::Duplicate,
    })
}

fn secret<'a>(
    state: &'a AppState,
    id: IntegrationId,
    value: Option<&'a Secret>,
) -> AppResult<&'a Secret> {
    state.integrations.ensure(id)?;
    value.ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "{} configured without its secret",
            id.name()
        ))
    })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn json_body(body: &[u8]) -> AppResult<Value> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| AppError::validation("the body is not JSON"))?;
    if !value.is_object() {
        return Err(AppError::validation("the body is not a JSON object"));
    }
    Ok(value)
}

/// Razorpay payment events (`payment.authorized`, `payment.captured`,
/// `payment.failed`, `order.paid`, `refund.processed`; others are acknowledged and
/// ignored). `X-Razorpay-Signature` must be the hex HMAC-SHA256 of the raw body with
/// `RAZORPAY_WEBHOOK_SECRET`; `X-Razorpay-Event-Id` de-duplicates redeliveries.
#[utoipa::path(
    post, path = "/api/webhooks/razorpay", tag = "webhooks",
    params(
        ("X-Razorpay-Signature" = String, Header, description = "Hex HMAC-SHA256 of the raw body with the webhook secret", pattern = "^[0-9a-fA-F]{64}$"),
        ("X-Razorpay-Event-Id" = Option<String>, Header, description = "Razorpay's event id (the body's SHA-256 is used without it)")
    ),
    request_body(content = Object, content_type = "application/json", description = "Razorpay event `{event, payload, ...}`, at most WEBHOOK_BODY_LIMIT_BYTES (default 262144)"),
    responses(
        (status = 200, description = "Stored (or already stored: `duplicate`)", body = Envelope<Ack>),
        (status = 400, description = "Signed but not a JSON event", body = ErrorBody),
        (status = 401, description = "Missing or wrong X-Razorpay-Signature", body = ErrorBody),
        (status = 413, description = "Body over WEBHOOK_BODY_LIMIT_BYTES", body = ErrorBody),
        (status = 429, description = "Too many webhook requests from this client address (`RATE_LIMIT_WEBHOOK`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until requests are allowed again"))),
        (status = 503, description = "RAZORPAY_WEBHOOK_SECRET unset (INTEGRATION_DISABLED), or the database is down", body = ErrorBody)
    )
)]
async fn razorpay(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    WebhookBody(body): WebhookBody,
) -> AppResult<Json<Envelope<Ack>>> {
    rate_limit::enforce(&state, LimitName::Webhook, None, &client).await?;
    let key = secret(
        &state,
        IntegrationId::RazorpayWebhooks,
        state.config.commerce.webhooks.razorpay.as_ref(),
    )?;
    // https://razorpay.com/docs/webhooks/validate-test/: HMAC-SHA256 over the raw
    // body, hex, in X-Razorpay-Signature.
    let signature = header_str(&headers, "x-razorpay-signature")
        .ok_or_else(|| AppError::unauthorized("missing X-Razorpay-Signature header"))?;
    if !signature::hmac_sha256_hex_matches(key.expose().as_bytes(), &body, signature) {
        return Err(AppError::unauthorized(
            "X-Razorpay-Signature does not match the body",
        ));
    }
    let payload = json_body(&body)?;
    let event_type = payload["event"]
        .as_str()
        .ok_or_else(|| AppError::validation("the event has no `event` field"))?
        .to_string();
    let event_id = header_str(&headers, "x-razorpay-event-id")
        .map(str::to_string)
        .unwrap_or_else(|| webhooks::body_digest(&body));
    let accepted = webhooks::accept(
        &state,
        Inbound {
            provider: Provider::Razorpay,
            event_id,
            event_type,
            payload,
        },
    )
    .await?;
    Ok(ack(accepted))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HubQuery {
    /// Must be `subscribe`.
    #[serde(rename = "hub.mode")]
    #[param(rename = "hub.mode")]
    pub mode: Option<String>,
    /// Must equal `WHATSAPP_VERIFY_TOKEN`.
    #[serde(rename = "hub.verify_token")]
    #[param(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    /// Echoed back on success.
    #[serde(rename = "hub.challenge")]
    #[param(rename = "hub.challenge", max_length = 200)]
    pub challenge: Option<String>,
}

/// Meta's webhook verification handshake: answers `hub.challenge` as plain text when
/// `hub.mode=subscribe` and `hub.verify_token` equals `WHATSAPP_VERIFY_TOKEN`
/// (https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests).
#[utoipa::path(
    get, path = "/api/webhooks/whatsapp", tag = "webhooks", params(HubQuery),
    responses(
        (status = 200, description = "The challenge, as text/plain", body = String, content_type = "text/plain"),
        (status = 403, description = "Wrong mode or verify token", body = ErrorBody),
        (status = 429, description = "Too many webhook requests from this client address (`RATE_LIMIT_WEBHOOK`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until requests are allowed again"))),
        (status = 503, description = "WHATSAPP_APP_SECRET / WHATSAPP_VERIFY_TOKEN unset (INTEGRATION_DISABLED)", body = ErrorBody)
    )
)]
async fn whatsapp_verify(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiQuery(query): ApiQuery<HubQuery>,
) -> AppResult<Response> {
    rate_limit::enforce(&state, LimitName::Webhook, None, &client).await?;
    let expected = secret(
        &state,
        IntegrationId::WhatsAppWebhooks,
        state
            .config
            .commerce
            .webhooks
            .whatsapp_verify_token
            .as_ref(),
    )?;
    let token_ok = query
        .verify_token
        .as_deref()
        .is_some_and(|t| signature::secrets_equal(t, expected.expose()));
    let challenge = query.challenge.unwrap_or_default();
    if query.mode.as_deref() != Some("subscribe") || !token_ok || challenge.len() > 200 {
        return Err(AppError::forbidden("webhook verification failed"));
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        challenge,
    )
        .into_response())
}

/// WhatsApp Cloud API notifications (inbound messages, delivery statuses).
/// `X-Hub-Signature-256` must be `sha256=` + the hex HMAC-SHA256 of the raw body
/// with `WHATSAPP_APP_SECRET`.
#[utoipa::path(
    post, path = "/api/webhooks/whatsapp", tag = "webhooks",
    params(("X-Hub-Signature-256" = String, Header, description = "`sha256=<hex HMAC-SHA256 of the raw body with the app secret>`", pattern = "^sha256=[0-9a-fA-F]{64}$")),
    request_body(content = Object, content_type = "application/json", description = "`{object: \"whatsapp_business_account\", entry: [...]}`, at most WEBHOOK_BODY_LIMIT_BYTES"),
    responses(
        (status = 200, description = "Stored (or already stored: `duplicate`)", body = Envelope<Ack>),
        (status = 400, description = "Signed but not a JSON object", body = ErrorBody),
        (status = 401, description = "Missing or wrong X-Hub-Signature-256", body = ErrorBody),
        (status = 413, description = "Body over WEBHOOK_BODY_LIMIT_BYTES", body = ErrorBody),
        (status = 429, description = "Too many webhook requests from this client address (`RATE_LIMIT_WEBHOOK`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until requests are allowed again"))),
        (status = 503, description = "WHATSAPP_APP_SECRET / WHATSAPP_VERIFY_TOKEN unset (INTEGRATION_DISABLED)", body = ErrorBody)
    )
)]
async fn whatsapp(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    WebhookBody(body): WebhookBody,
) -> AppResult<Json<Envelope<Ack>>> {
    rate_limit::enforce(&state, LimitName::Webhook, None, &client).await?;
    let app_secret = secret(
        &state,
        IntegrationId::WhatsAppWebhooks,
        state.config.commerce.webhooks.whatsapp_app_secret.as_ref(),
    )?;
    // https://developers.facebook.com/docs/graph-api/webhooks/getting-started#event-notifications:
    // "sha256=" followed by the HMAC-SHA256 of the payload with the app secret.
    let signature = header_str(&headers, "x-hub-signature-256")
        .ok_or_else(|| AppError::unauthorized("missing X-Hub-Signature-256 header"))?;
    let hex = signature
        .strip_prefix("sha256=")
        .ok_or_else(|| AppError::unauthorized("X-Hub-Signature-256 must start with sha256="))?;
    if !signature::hmac_sha256_hex_matches(app_secret.expose().as_bytes(), &body, hex) {
        return Err(AppError::unauthorized(
            "X-Hub-Signature-256 does not match the body",
        ));
    }
    let payload = json_body(&body)?;
    let event_type = payload["entry"][0]["changes"][0]["field"]
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    // Meta gives no event id; a redelivery repeats the same bytes.
    let accepted = webhooks::accept(
        &state,
        Inbound {
            provider: Provider::WhatsApp,
            event_id: webhooks::body_digest(&body),
            event_type,
            payload,
        },
    )
    .await?;
    Ok(ack(accepted))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// `EXOTEL_WEBHOOK_TOKEN` (the server puts it into the StatusCallback URL it gives
    /// Exotel; an `X-Exotel-Webhook-Token` header is accepted instead).
    pub token: Option<String>,
}

/// Exotel call status callbacks (`StatusCallback` of Calls/connect), JSON or
/// urlencoded. Exotel does not sign callbacks, so the URL carries
/// `EXOTEL_WEBHOOK_TOKEN`, compared in constant time.
#[utoipa::path(
    post, path = "/api/exotel/status", tag = "webhooks", params(TokenQuery),
    request_body(content = Object, description = "`{CallSid, Status, EventType, RecordingUrl, ConversationDuration, CustomField, ...}` as JSON or application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Stored (or already stored: `duplicate`)", body = Envelope<Ack>),
        (status = 400, description = "No CallSid, or an unreadable body", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 413, description = "Body over WEBHOOK_BODY_LIMIT_BYTES", body = ErrorBody),
        (status = 429, description = "Too many webhook requests from this client address (`RATE_LIMIT_WEBHOOK`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until requests are allowed again"))),
        (status = 503, description = "EXOTEL_WEBHOOK_TOKEN unset (INTEGRATION_DISABLED)", body = ErrorBody)
    )
)]
async fn exotel_status(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiQuery(query): ApiQuery<TokenQuery>,
    headers: HeaderMap,
    WebhookBody(body): WebhookBody,
) -> AppResult<Json<Envelope<Ack>>> {
    rate_limit::enforce(&state, LimitName::Webhook, None, &client).await?;
    let expected = secret(
        &state,
        IntegrationId::ExotelWebhooks,
        state.config.commerce.webhooks.exotel_token.as_ref(),
    )?;
    let presented = query
        .token
        .as_deref()
        .or_else(|| header_str(&headers, "x-exotel-webhook-token"))
        .ok_or_else(|| AppError::unauthorized("missing webhook token"))?;
    if !signature::secrets_equal(presented, expected.expose()) {
        return Err(AppError::unauthorized("wrong webhook token"));
    }
    let is_json =
        header_str(&headers, "content-type").is_some_and(|ct| ct.starts_with("application/json"));
    let payload = if is_json {
        json_body(&body)?
    } else {
        let fields: BTreeMap<String, String> = serde_urlencoded::from_bytes(&body)
            .map_err(|_| AppError::validation("the body is not a urlencoded form"))?;
        serde_json::to_value(fields).map_err(AppError::internal)?
    };
    let text = |k: &str| {
        payload[k]
            .as_str()
            .map(str::to_string)
            .or_else(|| payload[k].as_i64().map(|n| n.to_string()))
    };
    let sid = text("CallSid").ok_or_else(|| AppError::validation("no CallSid"))?;
    let status = text("Status").unwrap_or_default();
    let kind = text("EventType").unwrap_or_else(|| "terminal".into());
    let accepted = webhooks::accept(
        &state,
        Inbound {
            provider: Provider::Exotel,
            // One event per call, callback kind and status: a retried callback is the same.
            event_id: format!("{sid}:{kind}:{status}"),
            event_type: format!("call.{kind}"),
            payload,
        },
    )
    .await?;
    Ok(ack(accepted))
}

/// The documented shape of a Leegality webhook (the handler reads the raw JSON: it stores
/// the event as sent).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
struct LeegalityEvent {
    /// The signed document; its HMAC-SHA1 with LEEGALITY_PRIVATE_SALT is `mac`.
    #[schema(min_length = 1)]
    document_id: String,
    /// Hex HMAC-SHA1 of `documentId` (401 when missing or wrong).
    mac: Option<String>,
    webhook_type: Option<String>,
    document_status: Option<String>,
    #[schema(value_type = Option<Object>)]
    request: Option<serde_json::Value>,
}

/// Leegality signing events. The body's `mac` must be the hex HMAC-SHA1 of its
/// `documentId` with `LEEGALITY_PRIVATE_SALT`
/// (https://knowledge.leegality.com/document-execution/api/webhooks/verify-webhook-request):
/// Leegality signs a field, not the body, so the JSON is parsed first, only to read
/// those two fields.
#[utoipa::path(
    post, path = "/api/webhooks/leegality", tag = "webhooks",
    request_body(content = LeegalityEvent, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (or already stored: `duplicate`)", body = Envelope<Ack>),
        (status = 400, description = "Not a JSON object with a documentId", body = ErrorBody),
        (status = 401, description = "Missing or wrong mac", body = ErrorBody),
        (status = 413, description = "Body over WEBHOOK_BODY_LIMIT_BYTES", body = ErrorBody),
        (status = 429, description = "Too many webhook requests from this client address (`RATE_LIMIT_WEBHOOK`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until requests are allowed again"))),
        (status = 503, description = "LEEGALITY_PRIVATE_SALT unset (INTEGRATION_DISABLED)", body = ErrorBody)
    )
)]
async fn leegality(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    WebhookBody(body): WebhookBody,
) -> AppResult<Json<Envelope<Ack>>> {
    rate_limit::enforce(&state, LimitName::Webhook, None, &client).await?;
    let salt = secret(
        &state,
        IntegrationId::LeegalityWebhooks,
        state
            .config
            .commerce
            .webhooks
            .leegality_private_salt
            .as_ref(),
    )?;
    let payload = json_body(&body)?;
    let document_id = payload["documentId"]
        .as_str()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| AppError::validation("no documentId"))?;
    let mac = payload["mac"]
        .as_str()
        .ok_or_else(|| AppError::unauthorized("missing mac"))?;
    if !signature::hmac_sha1_hex_matches(salt.expose().as_bytes(), document_id.as_bytes(), mac) {
        return Err(AppError::unauthorized("mac does not match the documentId"));
    }
    let event_type = payload["webhookType"]
        .as_str()
        .or(payload["documentStatus"].as_str())
        .unwrap_or("update")
        .to_string();
    let accepted = webhooks::accept(
        &state,
        Inbound {
            provider: Provider::Leegality,
            event_id: webhooks::body_digest(&body),
            event_type,
            payload,
        },
    )
    .await?;
    Ok(ack(accepted))
}
