//! Payments for courses and batches through Razorpay.
//!
//! The amount always comes from the catalogue (`price_paise`), never from the client.
//! A payment is one Razorpay order; its state moves only forward along
//! `created → authorized → captured → refunded` (`failed` sits beside `created`: a
//! failed attempt may be followed by a successful one on the same order), whatever
//! order the checkout verification and the webhooks arrive in — see [`transition`].
//! Capture enrolls the student exactly once (unique indexes on `enrollments`) and
//! queues the invoice; a refund revokes the enrollment.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::invoice::{self, InvoiceData};
use super::outbox::{self, EmailMessage};
use super::page::{Page, PageRequest};
use super::razorpay;
use super::storage::Bucket;
use crate::error::{AppError, AppResult};
use crate::queues::{JobError, QueueName};
use crate::state::AppState;

/// databaseQueue job that makes, archives and mails a captured payment's invoice.
pub const INVOICE_JOB: &str = "issueInvoice";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Authorized,
    Captured,
    Failed,
    Refunded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Authorized => "authorized",
            Status::Captured => "captured",
            Status::Failed => "failed",
            Status::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Created,
            Status::Authorized,
            Status::Captured,
            Status::Failed,
            Status::Refunded,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// What a verification or a webhook says happened to the payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Authorized,
    Captured,
    Failed,
    Refunded,
}

/// The next status, or `None` when the event changes nothing. Events never move a
/// payment backwards, so any arrival order ends in the same state: a late
/// `payment.authorized` after `payment.captured` is a no-op, a `refund.processed`
/// that overtook the capture still ends refunded, a `payment.failed` of an earlier
/// attempt cannot undo a later success.
pub fn transition(current: Status, event: Event) -> Option<Status> {
    use Status::*;
    match (event, current) {
        (Event::Failed, Created) => Some(Failed),
        (Event::Authorized, Created | Failed) => Some(Authorized),
        (Event::Captured, Created | Failed | Authorized) => Some(Captured),
        (Event::Refunded, Created | Failed | Authorized | Captured) => Some(Refunded),
        _ => None,
    }
}

/// The item a payment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Course(Uuid),
    Batch(Uuid),
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: Uuid,
    pub user_id: Uuid,
    pub course_id: Option<Uuid>,
    pub batch_id: Option<Uuid>,
    /// The course title or batch name.
    pub item_title: String,
    /// Integer paise (1 INR = 100 paise).
    pub amount_paise: i64,
    /// ISO 4217 code, e.g. `INR`.
    pub currency: String,
    /// `created`, `authorized`, `captured`, `failed` or `refunded`.
    pub status: String,
    pub razorpay_order_id: String,
    pub razorpay_payment_id: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub authorized_at: Option<DateTime<Utc>>,
    pub captured_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub failure_reason: Option<String>,
    pub refunded_paise: i64,
    pub refunded_at: Option<DateTime<Utc>>,
    pub invoice_number: Option<String>,
    /// An invoice PDF is archived and can be downloaded.
    pub has_invoice: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "select p.id, p.user_id, p.course_id, p.batch_id, \
     coalesce(c.title, b.name, '') as item_title, p.amount_paise, p.currency, p.status, \
     p.razorpay_order_id, p.razorpay_payment_id, p.verified_at, p.authorized_at, p.captured_at, \
     p.failed_at, p.failure_reason, p.refunded_paise, p.refunded_at, p.invoice_number, \
     (p.invoice_key is not null) as has_invoice, p.created_at, p.updated_at \
     from payments p left join courses c on c.id = p.course_id left join batches b on b.id = p.batch_id";

/// What the browser needs to open Razorpay Checkout for the order.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Checkout {
    pub payment: Payment,
    /// Razorpay `key_id` for Checkout (public by design).
    pub key_id: String,
    pub razorpay_order_id: String,
    pub amount_paise: i64,
    pub currency: String,
}

struct Priced {
    title: String,
    price_paise: i64,
    currency: String,
}

async fn priced(db: &PgPool, item: Item) -> AppResult<Priced> {
    let row: Option<(String, Option<i64>, String)> =
        match item {
            Item::Course(id) => sqlx::query_as(
                "select title, price_paise, currency from courses where id = $1 and is_published",
            )
            .bind(id)
            .fetch_optional(db)
            .await?,
            Item::Batch(id) => {
                sqlx::query_as("select name, price_paise, currency from batches where id = $1")
                    .bind(id)
                    .fetch_optional(db)
                    .await?
            }
        };
    let (title, price, currency) =
        row.ok_or_else(|| AppError::not_found("no such course or batch for sale"))?;
    let price_paise =
        price.ok_or_else(|| AppError::validation(format!("{title:?} is not for sale")))?;
    Ok(Priced {
        title,
        price_paise,
        currency,
    })
}

async fn enrolled(db: &PgPool, user: Uuid, item: Item) -> AppResult<bool> {
    let (course, batch) = split(item);
    Ok(sqlx::query_scalar(
        "select exists(select 1 from enrollments where user_id = $1 \
         and (course_id = $2 or batch_id = $3))",
    )
    .bind(user)
    .bind(course)
    .bind(batch)
    .fetch_one(db)
    .await?)
}

fn split(item: Item) -> (Option<Uuid>, Option<Uuid>) {
    match item {
        Item::Course(id) => (Some(id), None),
        Item::Batch(id) => (None, Some(id)),
    }
}

/// Creates a Razorpay order for the catalogue price of `item` and records it.
pub async fn create_order(state: &AppState, user: Uuid, item: Item) -> AppResult<Checkout> {
    // Fail closed before anything else when Razorpay is not configured.
    let key_id = razorpay::key_id(state)?.to_string();
    let priced = priced(&state.db, item).await?;
    if enrolled(&state.db, user, item).await? {
        return Err(AppError::conflict("you are already enrolled in this"));
    }
    let id = Uuid::new_v4();
    let order = razorpay::create_order(
        state,
        priced.price_paise,
        &priced.currency,
        &id.simple().to_string(),
        json!({"paymentId": id, "userId": user}),
    )
    .await?;
    let (course, batch) = split(item);
    sqlx::query(
        "insert into payments (id, user_id, course_id, batch_id, amount_paise, currency, razorpay_order_id) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(user)
    .bind(course)
    .bind(batch)
    .bind(priced.price_paise)
    .bind(&priced.currency)
    .bind(&order.id)
    .execute(&state.db)
    .await?;
    tracing::info!(payment = %id, order = %order.id, amount_paise = priced.price_paise, item = %priced.title, "payment order created");
    let payment = get(&state.db, id).await?;
    Ok(Checkout {
        key_id,
        razorpay_order_id: order.id,
        amount_paise: payment.amount_paise,
        currency: payment.currency.clone(),
        payment,
    })
}

pub async fn get(db: &PgPool, id: Uuid) -> AppResult<Payment> {
    sqlx::query_as::<_, Payment>(sqlx::AssertSqlSafe(format!("{SELECT} where p.id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| AppError::not_found(format!("payment {id} not found")))
}

/// The caller's own payment; someone else's is a 404 (its existence is not revealed).
pub async fn get_own(db: &PgPool, user: Uuid, id: Uuid) -> AppResult<Payment> {
    sqlx::query_as::<_, Payment>(sqlx::AssertSqlSafe(format!(
        "{SELECT} where p.id = $1 and p.user_id = $2"
    )))
    .bind(id)
    .bind(user)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| AppError::not_found(format!("payment {id} not found")))
}

pub async fn list_own(db: &PgPool, user: Uuid, page: PageRequest) -> AppResult<Page<Payment>> {
    let total: i64 = sqlx::query_scalar("select count(*) from payments where user_id = $1")
        .bind(user)
        .fetch_one(db)
        .await?;
    let items = sqlx::query_as::<_, Payment>(sqlx::AssertSqlSafe(format!(
        "{SELECT} where p.user_id = $1 order by p.created_at desc, p.id limit $2 offset $3"
    )))
    .bind(user)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(Page::new(items, page, total))
}

pub async fn list_all(
    db: &PgPool,
    status: Option<Status>,
    page: PageRequest,
) -> AppResult<Page<Payment>> {
    let status = status.map(Status::as_str);
    let total: i64 =
        sqlx::query_scalar("select count(*) from payments where ($1::text is null or status = $1)")
            .bind(status)
            .fetch_one(db)
            .await?;
    let items = sqlx::query_as::<_, Payment>(sqlx::AssertSqlSafe(format!(
        "{SELECT} where ($1::text is null or p.status = $1) \
         order by p.created_at desc, p.id limit $2 offset $3"
    )))
    .bind(status)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(Page::new(items, page, total))
}

#[derive(sqlx::FromRow)]
struct Locked {
    id: Uuid,
    user_id: Uuid,
    course_id: Option<Uuid>,
    batch_id: Option<Uuid>,
    amount_paise: i64,
    currency: String,
    status: String,
    razorpay_payment_id: Option<String>,
}

async fn lock_by_order(conn: &mut PgConnection, order_id: &str) -> sqlx::Result<Option<Locked>> {
    sqlx::query_as(
        "select id, user_id, course_id, batch_id, amount_paise, currency, status, razorpay_payment_id \
         from payments where razorpay_order_id = $1 for update",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// Details an event carries besides its kind.
#[derive(Debug, Default)]
struct Facts<'a> {
    payment_id: Option<&'a str>,
    failure: Option<String>,
    refund_id: Option<&'a str>,
    refund_amount: Option<i64>,
}

/// Applies `event` to the locked payment: status, timestamps, enrollment. Returns true
/// when it was captured by this call (the caller queues the invoice after commit).
async fn apply(
    conn: &mut PgConnection,
    p: &Locked,
    event: Event,
    facts: Facts<'_>,
) -> AppResult<bool> {
    let current = Status::parse(&p.status).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "payment {} has status {:?}",
            p.id,
            p.status
        ))
    })?;
    let Some(next) = transition(current, event) else {
        return Ok(false);
    };
    // A later successful attempt replaces an earlier failed one's payment id; once
    // authorized or captured, the payment id is fixed.
    let keep_id = matches!(current, Status::Authorized | Status::Captured);
    sqlx::query(
        "update payments set status = $2, \
           razorpay_payment_id = case when $3 then razorpay_payment_id else coalesce($4, razorpay_payment_id) end, \
           authorized_at = case when $2 in ('authorized', 'captured') then coalesce(authorized_at, now()) else authorized_at end, \
           captured_at = case when $2 = 'captured' then now() else captured_at end, \
           failed_at = case when $2 = 'failed' then now() else failed_at end, \
           failure_reason = case when $2 = 'failed' then $5 else failure_reason end, \
           refunded_at = case when $2 = 'refunded' then now() else refunded_at end, \
           razorpay_refund_id = coalesce($6, razorpay_refund_id), \
           refunded_paise = case when $2 = 'refunded' then coalesce($7, amount_paise) else refunded_paise end \
         where id = $1",
    )
    .bind(p.id)
    .bind(next.as_str())
    .bind(keep_id)
    .bind(facts.payment_id)
    .bind(facts.failure)
    .bind(facts.refund_id)
    .bind(facts.refund_amount)
    .execute(&mut *conn)
    .await?;
    tracing::info!(payment = %p.id, from = current.as_str(), to = next.as_str(), "payment status changed");
    match next {
        Status::Captured => {
            // Exactly once: the unique indexes turn a second insert into a no-op.
            sqlx::query(
                "insert into enrollments (id, user_id, course_id, batch_id, payment_id) \
                 values ($1, $2, $3, $4, $5) on conflict do nothing",
            )
            .bind(Uuid::new_v4())
            .bind(p.user_id)
            .bind(p.course_id)
            .bind(p.batch_id)
            .bind(p.id)
            .execute(&mut *conn)
            .await?;
            Ok(true)
        }
        Status::Refunded => {
            sqlx::query("delete from enrollments where payment_id = $1")
                .bind(p.id)
                .execute(&mut *conn)
                .await?;
            Ok(false)
        }
        _ => Ok(false),
    }
}

async fn queue_invoice(state: &AppState, payment: Uuid) {
    // The job id makes it once per payment; if Redis is down the inbox row (or the
    // verify call) failed anyway, and the webhook relay re-drives it.
    if let Err(err) = state
        .queues
        .add(
            QueueName::Database,
            INVOICE_JOB,
            json!({"paymentId": payment}),
            Some(format!("invoice-{payment}")),
        )
        .await
    {
        tracing::warn!(payment = %payment, error = %err, "could not queue the invoice; it is retried by the invoice sweep");
    }
}

/// `POST /api/payments/verify`: the checkout handler's result. The signature is
/// checked against the order id we stored for the caller's own payment.
pub async fn verify(
    state: &AppState,
    user: Uuid,
    order_id: &str,
    payment_id: &str,
    signature_hex: &str,
) -> AppResult<Payment> {
    let mut tx = state.db.begin().await?;
    let locked = lock_by_order(&mut tx, order_id)
        .await?
        .filter(|p| p.user_id == user)
        .ok_or_else(|| AppError::not_found("no such payment order"))?;
    if !razorpay::checkout_signature_matches(state, order_id, payment_id, signature_hex)? {
        return Err(AppError::validation(
            "razorpay_signature does not match this order and payment",
        ));
    }
    if let Some(known) = &locked.razorpay_payment_id
        && known != payment_id
        && matches!(
            locked.status.as_str(),
            "authorized" | "captured" | "refunded"
        )
    {
        return Err(AppError::conflict(
            "this order was already paid by another payment",
        ));
    }
    sqlx::query("update payments set verified_at = coalesce(verified_at, now()) where id = $1")
        .bind(locked.id)
        .execute(&mut *tx)
        .await?;
    // A verified checkout means at least authorized (auto-capture may already have
    // captured it; the webhook says so).
    let captured = apply(
        &mut tx,
        &locked,
        Event::Authorized,
        Facts {
            payment_id: Some(payment_id),
            ..Facts::default()
        },
    )
    .await?;
    tx.commit().await?;
    if captured {
        queue_invoice(state, locked.id).await;
    }
    get(&state.db, locked.id).await
}

/// Applies a verified Razorpay webhook (from the inbox) inside the inbox row's
/// transaction. Unknown event types are recorded and ignored.
pub async fn apply_webhook(
    conn: &mut PgConnection,
    event_type: &str,
    payload: &Value,
) -> Result<Option<Uuid>, JobError> {
    let payment = &payload["payload"]["payment"]["entity"];
    let (event, order_id) = match event_type {
        "payment.authorized" => (Event::Authorized, payment["order_id"].as_str()),
        "payment.captured" => (Event::Captured, payment["order_id"].as_str()),
        "payment.failed" => (Event::Failed, payment["order_id"].as_str()),
        "order.paid" => (
            Event::Captured,
            payload["payload"]["order"]["entity"]["id"]
                .as_str()
                .or(payment["order_id"].as_str()),
        ),
        "refund.processed" => (Event::Refunded, payment["order_id"].as_str()),
        other => {
            tracing::info!(event = other, "razorpay event ignored");
            return Ok(None);
        }
    };
    let Some(order_id) = order_id else {
        return Err(JobError::permanent(format!(
            "razorpay {event_type} without an order id"
        )));
    };
    let Some(locked) = lock_by_order(conn, order_id).await? else {
        // Not one of our orders (another integration on the same account).
        tracing::info!(
            event = event_type,
            "razorpay event for an unknown order ignored"
        );
        return Ok(None);
    };
    if matches!(event, Event::Captured | Event::Authorized) {
        // The amount Razorpay took must be the catalogue amount we asked for.
        let amount = payment["amount"]
            .as_i64()
            .or_else(|| payload["payload"]["order"]["entity"]["amount_paid"].as_i64());
        let currency = payment["currency"]
            .as_str()
            .or(payload["payload"]["order"]["entity"]["currency"].as_str());
        if amount != Some(locked.amount_paise) || currency != Some(locked.currency.as_str()) {
            return Err(JobError::permanent(format!(
                "razorpay {event_type} for payment {} reports {:?} {:?}, expected {} {}",
                locked.id, amount, currency, locked.amount_paise, locked.currency
            )));
        }
    }
    let refund = &payload["payload"]["refund"]["entity"];
    let failure = payment["error_description"]
        .as_str()
        .or(payment["error_reason"].as_str())
        .map(|s| s.chars().take(500).collect());
    let facts = Facts {
        payment_id: payment["id"].as_str(),
        failure,
        refund_id: refund["id"].as_str(),
        refund_amount: refund["amount"].as_i64(),
    };
    let captured = apply(conn, &locked, event, facts)
        .await
        .map_err(|e| JobError::retry(e.to_string()))?;
    Ok(captured.then_some(locked.id))
}

/// After the inbox transaction committed: follow-up work of a capture.
pub async fn after_capture(state: &AppState, payment: Uuid) {
    queue_invoice(state, payment).await;
}

/// `POST /api/admin/payments/{id}/refund`: a full refund of a captured payment through
/// Razorpay's Refunds API. A refund is requested once: the row is marked before the
/// call, so two admins clicking at once cannot refund twice.
pub async fn refund(state: &AppState, id: Uuid) -> AppResult<Payment> {
    razorpay::key_id(state)?;
    let marked: Option<(String, i64)> = sqlx::query_as(
        "update payments set refund_requested_at = now() \
         where id = $1 and status = 'captured' and refund_requested_at is null \
         returning razorpay_payment_id, amount_paise",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    let Some((payment_id, amount)) = marked else {
        let payment = get(&state.db, id).await?;
        return Err(AppError::conflict(format!(
            "only a captured payment without a pending refund can be refunded (this one is {})",
            payment.status
        )));
    };
    let refunded = razorpay::refund(state, &payment_id, amount, &id.simple().to_string()).await;
    let refund = match refunded {
        Ok(refund) => refund,
        Err(err) => {
            sqlx::query("update payments set refund_requested_at = null where id = $1")
                .bind(id)
                .execute(&state.db)
                .await?;
            return Err(err);
        }
    };
    sqlx::query("update payments set razorpay_refund_id = $2 where id = $1")
        .bind(id)
        .bind(&refund.id)
        .execute(&state.db)
        .await?;
    // Razorpay may already report the refund processed; otherwise `refund.processed`
    // arrives as a webhook and completes it.
    if refund.status == "processed" {
        let mut tx = state.db.begin().await?;
        let order: String =
            sqlx::query_scalar("select razorpay_order_id from payments where id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if let Some(locked) = lock_by_order(&mut tx, &order).await? {
            apply(
                &mut tx,
                &locked,
                Event::Refunded,
                Facts {
                    refund_id: Some(&refund.id),
                    refund_amount: Some(refund.amount),
                    ..Facts::default()
                },
            )
            .await?;
        }
        tx.commit().await?;
    }
    get(&state.db, id).await
}

/// A short-lived signed GET of the invoice of the caller's payment.
pub async fn invoice_url(
    state: &AppState,
    user: Uuid,
    is_admin: bool,
    id: Uuid,
) -> AppResult<super::storage::PresignedUrl> {
    let row: Option<(Uuid, Option<String>)> =
        sqlx::query_as("select user_id, invoice_key from payments where id = $1")
            .bind(id)
            .fetch_optional(&state.db)
            .await?;
    let key = match row {
        Some((owner, key)) if owner == user || is_admin => key,
        _ => return Err(AppError::not_found(format!("payment {id} not found"))),
    };
    let storage = state.storage().await?;
    storage.bucket(Bucket::Invoices)?;
    let key = key.ok_or_else(|| AppError::not_found("this payment has no archived invoice"))?;
    storage
        .presign_get(Bucket::Invoices, &key, state.config.storage.private_get_ttl)
        .await
}

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    status: String,
    invoice_emailed_at: Option<DateTime<Utc>>,
    user_id: Uuid,
    name: String,
    email: String,
    item_title: String,
    is_course: bool,
    amount_paise: i64,
    currency: String,
    razorpay_order_id: String,
    razorpay_payment_id: Option<String>,
    captured_at: Option<DateTime<Utc>>,
}

/// The `issueInvoice` job: numbers the invoice, renders the PDF, archives it in the
/// invoice bucket when that is configured (it is optional) and hands the mail with
/// the PDF attached to the outbox. Safe to run twice: it stops once mailed.
pub async fn issue_invoice(state: &AppState, id: Uuid) -> Result<Value, JobError> {
    let row: Option<InvoiceRow> = sqlx::query_as(
        "select p.status, p.invoice_emailed_at, p.user_id, u.name, u.email, \
                coalesce(c.title, b.name, '') as item_title, p.course_id is not null as is_course, \
                p.amount_paise, p.currency, p.razorpay_order_id, p.razorpay_payment_id, p.captured_at \
         from payments p join users u on u.id = p.user_id \
         left join courses c on c.id = p.course_id left join batches b on b.id = p.batch_id \
         where p.id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    let Some(row) = row else {
        return Err(JobError::permanent(format!("payment {id} does not exist")));
    };
    if row.invoice_emailed_at.is_some() {
        return Ok(json!({"paymentId": id, "skipped": "already issued"}));
    }
    if !matches!(row.status.as_str(), "captured" | "refunded") || row.captured_at.is_none() {
        return Ok(json!({"paymentId": id, "skipped": "not captured"}));
    }
    let number: String = sqlx::query_scalar(
        "update payments set invoice_number = coalesce(invoice_number, \
           'MAS-' || to_char(now(), 'YYYY') || '-' || lpad(nextval('invoice_number_seq')::text, 6, '0')) \
         where id = $1 returning invoice_number",
    )
    .bind(id)
    .fetch_one(&state.db)
    .await?;
    let item = format!(
        "{}: {}",
        if row.is_course { "Course" } else { "Batch" },
        row.item_title
    );
    let data = InvoiceData {
        invoice_number: number.clone(),
        issued_at: row.captured_at.unwrap_or_else(Utc::now),
        customer_name: row.name.clone(),
        customer_email: row.email.clone(),
        item: item.clone(),
        amount_paise: row.amount_paise,
        currency: row.currency.clone(),
        razorpay_order_id: row.razorpay_order_id.clone(),
        razorpay_payment_id: row.razorpay_payment_id.clone().unwrap_or_default(),
    };
    let pdf = invoice::render(&data);

    let storage = state
        .storage()
        .await
        .map_err(|e| JobError::retry(e.to_string()))?;
    let key = format!("invoice/{}/{number}.pdf", row.user_id);
    let archived = if storage.is_configured(Bucket::Invoices) {
        // Same key on a re-run: the PUT overwrites with identical content.
        storage
            .put(Bucket::Invoices, &key, "application/pdf", pdf.clone())
            .await
            .map_err(|e| JobError::retry(e.to_string()))?;
        Some(key)
    } else {
        tracing::info!(payment = %id, "S3_INVOICES_BUCKET unset: invoice emailed, not archived");
        None
    };

    use base64::Engine as _;
    let mut tx = state.db.begin().await?;
    let claimed = sqlx::query(
        "update payments set invoice_key = coalesce($2, invoice_key), invoice_emailed_at = now() \
         where id = $1 and invoice_emailed_at is null",
    )
    .bind(id)
    .bind(&archived)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() == 1 {
        let message = EmailMessage::new(
            &row.email,
            outbox::templates::PAYMENT_INVOICE,
            json!({
                "name": row.name,
                "invoiceNumber": number,
                "item": item,
                "amount": format!("{} {}", row.currency, invoice::format_amount(row.amount_paise)),
                "attachments": [{
                    "filename": format!("{number}.pdf"),
                    "contentType": "application/pdf",
                    "base64": base64::engine::general_purpose::STANDARD.encode(&pdf),
                }],
            }),
        );
        outbox::enqueue_email(&mut tx, &message)
            .await
            .map_err(|e| JobError::retry(e.to_string()))?;
    }
    tx.commit().await?;
    Ok(json!({"paymentId": id, "invoiceNumber": number, "archived": archived.is_some()}))
}

/// Captured payments whose invoice was never handed to the outbox (a lost job):
/// queued again by the webhook relay's sweep.
pub async fn pending_invoices(db: &PgPool) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "select id from payments where status in ('captured', 'refunded') and captured_at is not null \
         and invoice_emailed_at is null and captured_at < now() - interval '5 minutes' \
         order by captured_at limit 50",
    )
    .fetch_all(db)
    .await
}

/// Sets (or clears, with `None`) the catalogue price of a course or batch.
pub async fn set_price(
    db: &PgPool,
    item: Item,
    price_paise: Option<i64>,
    currency: &str,
) -> AppResult<()> {
    if price_paise.is_some_and(|p| p <= 0) {
        return Err(AppError::validation("pricePaise must be greater than 0"));
    }
    if !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(AppError::validation(
            "currency must be a 3-letter ISO 4217 code like INR",
        ));
    }
    let done = match item {
        Item::Course(id) => {
            sqlx::query("update courses set price_paise = $2, currency = $3 where id = $1")
                .bind(id)
                .bind(price_paise)
                .bind(currency)
                .execute(db)
                .await?
        }
        Item::Batch(id) => {
            sqlx::query("update batches set price_paise = $2, currency = $3 where id = $1")
                .bind(id)
                .bind(price_paise)
                .bind(currency)
                .execute(db)
                .await?
        }
    };
    if done.rows_affected() == 0 {
        return Err(AppError::not_found("no such course or batch"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[Event]) -> Status {
        events
            .iter()
            .fold(Status::Created, |s, e| transition(s, *e).unwrap_or(s))
    }

    #[test]
    fn events_in_any_order_end_in_the_same_state() {
        use Event::*;
        // Every permutation of authorized/captured ends captured.
        assert_eq!(run(&[Authorized, Captured]), Status::Captured);
        assert_eq!(run(&[Captured, Authorized]), Status::Captured);
        // A failed earlier attempt, then success, in either order.
        assert_eq!(run(&[Failed, Captured]), Status::Captured);
        assert_eq!(run(&[Captured, Failed]), Status::Captured);
        assert_eq!(run(&[Authorized, Failed]), Status::Authorized);
        // A refund that overtook the capture still ends refunded.
        assert_eq!(run(&[Captured, Refunded]), Status::Refunded);
        assert_eq!(run(&[Refunded, Captured]), Status::Refunded);
        assert_eq!(
            run(&[Refunded, Authorized, Captured, Failed]),
            Status::Refunded
        );
        assert_eq!(run(&[Failed]), Status::Failed);
    }

    #[test]
    fn no_event_moves_backwards_or_repeats() {
        for s in [
            Status::Created,
            Status::Authorized,
            Status::Captured,
            Status::Failed,
            Status::Refunded,
        ] {
            for e in [
                Event::Authorized,
                Event::Captured,
                Event::Failed,
                Event::Refunded,
            ] {
                if let Some(next) = transition(s, e) {
                    assert_ne!(next, s, "{s:?} + {e:?} is not a change");
                    assert!(transition(next, e).is_none(), "{e:?} twice changes twice");
                }
            }
        }
        assert_eq!(transition(Status::Captured, Event::Authorized), None);
        assert_eq!(transition(Status::Refunded, Event::Captured), None);
    }
}
