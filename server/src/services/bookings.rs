//! Booking a slot (which confirms it and schedules the meeting) and cancelling.
//!
//! Booking is one transaction: the conditional `update ... where status = 'open'`
//! takes the slot's row lock, so concurrent bookers queue on it and every one after
//! the winner re-reads `booked` and gets a 409. The partial unique index on
//! confirmed bookings is the backstop should that ever change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::db::{Violation, violation};
use super::meetings::Meeting;
use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    pub id: Uuid,
    pub slot_id: Uuid,
    pub student_id: Uuid,
    /// `confirmed` or `cancelled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A confirmed booking and the meeting it scheduled.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Confirmed {
    pub booking: Booking,
    pub meeting: Meeting,
}

#[derive(sqlx::FromRow)]
struct TakenSlot {
    mentor_id: Uuid,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

fn taken() -> AppError {
    AppError::conflict("the slot is no longer available")
}

/// Books `slot_id` for `student_id`: confirms the booking and creates the meeting.
pub async fn book(db: &PgPool, slot_id: Uuid, student_id: Uuid) -> AppResult<Confirmed> {
    let mut tx = db.begin().await?;
    let slot = sqlx::query_as::<_, TakenSlot>(
        "update mentor_slots set status = 'booked' \
         where id = $1 and status = 'open' and starts_at > now() \
         returning mentor_id, starts_at, ends_at",
    )
    .bind(slot_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(slot) = slot else {
        let exists: Option<Uuid> = sqlx::query_scalar("select id from mentor_slots where id = $1")
            .bind(slot_id)
            .fetch_optional(&mut *tx)
            .await?;
        return Err(match exists {
            Some(_) => taken(),
            None => AppError::not_found(format!("slot {slot_id} not found")),
        });
    };

    let booking = sqlx::query_as::<_, Booking>(
        "insert into bookings (id, slot_id, student_id) values ($1, $2, $3) \
         returning id, slot_id, student_id, status, created_at, updated_at",
    )
    .bind(Uuid::new_v4())
    .bind(slot_id)
    .bind(student_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(|err| match violation(&err) {
        Some((Violation::Unique, _)) => taken(),
        Some((Violation::ForeignKey, _)) => AppError::unauthorized("your account no longer exists"),
        _ => err.into(),
    })?;

    let meeting = sqlx::query_as::<_, Meeting>(
        "insert into meetings (id, booking_id, mentor_id, student_id, starts_at, ends_at) \
         values ($1, $2, $3, $4, $5, $6) \
         returning id, booking_id, mentor_id, student_id, starts_at, ends_at, status, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(booking.id)
    .bind(slot.mentor_id)
    .bind(student_id)
    .bind(slot.starts_at)
    .bind(slot.ends_at)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Confirmed { booking, meeting })
}

#[derive(sqlx::FromRow)]
struct BookingParties {
    slot_id: Uuid,
    student_id: Uuid,
    mentor_id: Uuid,
    status: String,
}

/// Cancels a confirmed booking (its student, the slot's mentor or an admin): the
/// meeting is cancelled and the slot reopens (or expires if it has already started).
pub async fn cancel(db: &PgPool, booking_id: Uuid, caller: &AuthUser) -> AppResult<Booking> {
    let mut tx = db.begin().await?;
    // Lock the slot, then the booking: a fixed order so concurrent cancels and
    // bookings of the same slot queue instead of deadlocking.
    let slot_id: Uuid = sqlx::query_scalar("select slot_id from bookings where id = $1")
        .bind(booking_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| AppError::not_found(format!("booking {booking_id} not found")))?;
    sqlx::query("select 1 from mentor_slots where id = $1 for update")
        .bind(slot_id)
        .execute(&mut *tx)
        .await?;
    let parties = sqlx::query_as::<_, BookingParties>(
        "select b.slot_id, b.student_id, s.mentor_id, b.status \
         from bookings b join mentor_slots s on s.id = b.slot_id \
         where b.id = $1 for update of b",
    )
    .bind(booking_id)
    .fetch_one(&mut *tx)
    .await?;
    let user = caller.id();
    if !(user == parties.student_id || user == parties.mentor_id || caller.role().is_admin()) {
        return Err(AppError::forbidden(
            "only the student, the mentor or an admin can cancel this booking",
        ));
    }
    if parties.status != "confirmed" {
        return Err(AppError::conflict("the booking is already cancelled"));
    }
    let booking = sqlx::query_as::<_, Booking>(
        "update bookings set status = 'cancelled' where id = $1 \
         returning id, slot_id, student_id, status, created_at, updated_at",
    )
    .bind(booking_id)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("update meetings set status = 'cancelled' where booking_id = $1")
        .bind(booking_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "update mentor_slots set status = case when starts_at > now() then 'open' else 'expired' end \
         where id = $1 and status = 'booked'",
    )
    .bind(parties.slot_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(booking)
}
