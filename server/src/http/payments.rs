//! `/api/payments`: students buy courses and batches through Razorpay; admins list and
//! refund. Amounts are integer paise from the catalogue — a request carrying its own
//! amount is refused (unknown field).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::response::{Envelope, created, ok};
use crate::auth::{AuthUser, RequireRole, roles};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::services::page::{Page, PageRequest};
use crate::services::payments::{self, Checkout, Item, Payment, Status};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_order))
        .routes(routes!(verify))
        .routes(routes!(list_own))
        .routes(routes!(get_own))
        .routes(routes!(invoice))
        .routes(routes!(admin_list))
        .routes(routes!(refund))
        .routes(routes!(set_price))
}

/// Exactly one of `courseId` and `batchId`. No amount: it comes from the catalogue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewOrder {
    pub course_id: Option<Uuid>,
    pub batch_id: Option<Uuid>,
}

fn item(course: Option<Uuid>, batch: Option<Uuid>) -> AppResult<Item> {
    match (course, batch) {
        (Some(c), None) => Ok(Item::Course(c)),
        (None, Some(b)) => Ok(Item::Batch(b)),
        _ => Err(AppError::validation(
            "give exactly one of courseId and batchId",
        )),
    }
}

/// Creates a Razorpay order for a course or batch at its catalogue price.
#[utoipa::path(
    post, path = "/api/payments/orders", tag = "payments", request_body = NewOrder,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Order created; open Razorpay Checkout with it", body = Envelope<Checkout>),
        (status = 400, description = "Not exactly one item, an unknown field (such as an amount), or the item is not for sale", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a student", body = ErrorBody),
        (status = 404, description = "No such (published) course or batch", body = ErrorBody),
        (status = 409, description = "Already enrolled", body = ErrorBody),
        (status = 502, description = "Razorpay answered badly", body = ErrorBody),
        (status = 503, description = "RAZORPAY_KEY_ID / RAZORPAY_KEY_SECRET unset (INTEGRATION_DISABLED), or Razorpay's circuit is open", body = ErrorBody),
        (status = 504, description = "Razorpay did not answer in time", body = ErrorBody)
    )
)]
async fn create_order(
    State(state): State<AppState>,
    student: RequireRole<roles::Students>,
    ApiJson(body): ApiJson<NewOrder>,
) -> AppResult<(StatusCode, Json<Envelope<Checkout>>)> {
    let item = item(body.course_id, body.batch_id)?;
    Ok(created(
        payments::create_order(&state, student.user().id(), item).await?,
    ))
}

/// The Checkout handler's result (`razorpay_order_id`, `razorpay_payment_id`,
/// `razorpay_signature`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    #[schema(min_length = 1, max_length = 100)]
    pub razorpay_order_id: String,
    #[schema(min_length = 1, max_length = 100)]
    pub razorpay_payment_id: String,
    /// Hex HMAC-SHA256 of `order_id|payment_id` with the key secret.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub razorpay_signature: String,
}

/// Verifies the Checkout signature of the caller's own order; the payment becomes at
/// least `authorized` (a webhook may already have captured it).
#[utoipa::path(
    post, path = "/api/payments/verify", tag = "payments", request_body = Verification,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Verified", body = Envelope<Payment>),
        (status = 400, description = "The signature does not match", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such order of the caller's", body = ErrorBody),
        (status = 409, description = "The order was paid by another payment", body = ErrorBody),
        (status = 503, description = "Razorpay is not configured (INTEGRATION_DISABLED)", body = ErrorBody)
    )
)]
async fn verify(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<Verification>,
) -> AppResult<Json<Envelope<Payment>>> {
    crate::services::razorpay::key_id(&state)?;
    for (field, value) in [
        ("razorpay_order_id", &body.razorpay_order_id),
        ("razorpay_payment_id", &body.razorpay_payment_id),
    ] {
        if value.is_empty() || value.len() > 100 {
            return Err(AppError::validation(format!(
                "{field} must be 1 to 100 characters"
            )));
        }
    }
    Ok(ok(payments::verify(
        &state,
        user.id(),
        &body.razorpay_order_id,
        &body.razorpay_payment_id,
        &body.razorpay_signature,
    )
    .await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PaymentQuery {
    /// 1-based page number, 1..=1000000 (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
    /// Only payments in this status (admin listing).
    pub status: Option<Status>,
}

/// The caller's payments, newest first.
#[utoipa::path(
    get, path = "/api/payments", tag = "payments", params(PaymentQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's payments", body = Envelope<Page<Payment>>),
        (status = 400, description = "Bad pagination", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody)
    )
)]
async fn list_own(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<PaymentQuery>,
) -> AppResult<Json<Envelope<Page<Payment>>>> {
    let page = PageRequest::new(query.page, query.per_page)?;
    Ok(ok(payments::list_own(&state.db, user.id(), page).await?))
}

/// One of the caller's payments (another user's is a 404).
#[utoipa::path(
    get, path = "/api/payments/{id}", tag = "payments", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The payment", body = Envelope<Payment>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such payment of the caller's", body = ErrorBody)
    )
)]
async fn get_own(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<Payment>>> {
    Ok(ok(payments::get_own(&state.db, user.id(), id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceLink {
    /// A signed GET, valid S3_PRIVATE_GET_TTL_SECONDS (default 300 s).
    pub download_url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A short-lived signed download URL of the payment's invoice PDF (own payments;
/// admins: any).
#[utoipa::path(
    get, path = "/api/payments/{id}/invoice", tag = "payments", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Signed download URL", body = Envelope<InvoiceLink>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such payment of the caller's, or no archived invoice", body = ErrorBody),
        (status = 503, description = "S3_INVOICES_BUCKET unset (INTEGRATION_DISABLED)", body = ErrorBody)
    )
)]
async fn invoice(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<InvoiceLink>>> {
    let url = payments::invoice_url(&state, user.id(), user.role().is_admin(), id).await?;
    Ok(ok(InvoiceLink {
        download_url: url.url,
        expires_at: url.expires_at,
    }))
}

/// Every payment, newest first, optionally by status (admins).
#[utoipa::path(
    get, path = "/api/admin/payments", tag = "payments", params(PaymentQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of payments", body = Envelope<Page<Payment>>),
        (status = 400, description = "Bad pagination or status", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody)
    )
)]
async fn admin_list(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiQuery(query): ApiQuery<PaymentQuery>,
) -> AppResult<Json<Envelope<Page<Payment>>>> {
    let page = PageRequest::new(query.page, query.per_page)?;
    Ok(ok(payments::list_all(&state.db, query.status, page).await?))
}

/// Refunds a captured payment in full through Razorpay's Refunds API (admins). The
/// payment becomes `refunded` when Razorpay reports the refund processed (at once, or
/// by the `refund.processed` webhook); the enrollment is revoked then.
#[utoipa::path(
    post, path = "/api/admin/payments/{id}/refund", tag = "payments", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Refund requested (or already processed)", body = Envelope<Payment>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such payment", body = ErrorBody),
        (status = 409, description = "Not captured, or a refund is already pending", body = ErrorBody),
        (status = 502, description = "Razorpay refused or answered badly", body = ErrorBody),
        (status = 503, description = "Razorpay is not configured (INTEGRATION_DISABLED)", body = ErrorBody),
        (status = 504, description = "Razorpay did not answer in time", body = ErrorBody)
    )
)]
async fn refund(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<Payment>>> {
    Ok(ok(payments::refund(&state, id).await?))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CatalogueKind {
    Course,
    Batch,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceInput {
    /// Integer paise (> 0); `null` takes the item off sale.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "crate::validation::optional_whole_number")]
    pub price_paise: Option<i64>,
    /// ISO 4217 code (default `INR`).
    #[serde(default = "inr")]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

fn inr() -> String {
    "INR".into()
}

/// Sets the catalogue price of a course or batch (admins).
#[utoipa::path(
    put, path = "/api/admin/catalogue/{kind}/{id}/price", tag = "payments",
    params(("kind" = CatalogueKind, Path), ("id" = Uuid, Path)), request_body = PriceInput,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Price set"),
        (status = 400, description = "Bad price or currency", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such course or batch", body = ErrorBody)
    )
)]
async fn set_price(
    State(state): State<AppState>,
    _admin: RequireRole<roles::Admins>,
    ApiPath((kind, id)): ApiPath<(CatalogueKind, Uuid)>,
    ApiJson(body): ApiJson<PriceInput>,
) -> AppResult<StatusCode> {
    let item = match kind {
        CatalogueKind::Course => Item::Course(id),
        CatalogueKind::Batch => Item::Batch(id),
    };
    payments::set_price(&state.db, item, body.price_paise, &body.currency).await?;
    Ok(StatusCode::NO_CONTENT)
}
