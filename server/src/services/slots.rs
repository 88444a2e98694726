//! Mentor availability slots: mentors publish future time ranges, students book them.
//!
//! Invariants held by the database, not just this code: a mentor's live slots never
//! overlap (exclusion constraint, migration 0010) and a slot has at most one confirmed
//! booking (partial unique index, migration 0001).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::db::{Violation, violation};
use super::page::{Counted, Page, PageRequest};
use crate::error::{AppError, AppResult};

/// Longest slot a mentor may publish.
pub const MAX_SLOT_MINUTES: i64 = 240;
/// Shortest slot a mentor may publish.
pub const MIN_SLOT_MINUTES: i64 = 15;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    pub id: Uuid,
    pub mentor_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `open`, `booked`, `expired` or `cancelled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSlot {
    /// Must be in the future.
    pub starts_at: DateTime<Utc>,
    /// After `startsAt`, 15 to 240 minutes later.
    pub ends_at: DateTime<Utc>,
}

/// Filters for the open-slot search (`?mentorId=&from=&to=&page=&perPage=`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct OpenSlotQuery {
    /// Only this mentor's slots.
    pub mentor_id: Option<Uuid>,
    /// Slots starting at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Slots starting before this instant.
    pub to: Option<DateTime<Utc>>,
    /// 1-based page number, 1..=1000000 (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
}

pub fn validate_new(input: &NewSlot, now: DateTime<Utc>) -> AppResult<()> {
    if input.starts_at <= now {
        return Err(AppError::validation("startsAt must be in the future"));
    }
    if input.ends_at <= input.starts_at {
        return Err(AppError::validation("endsAt must be after startsAt"));
    }
    let length = input.ends_at - input.starts_at;
    if length < Duration::minutes(MIN_SLOT_MINUTES) {
        return Err(AppError::validation(format!(
            "a slot must last at least {MIN_SLOT_MINUTES} minutes"
        )));
    }
    if length > Duration::minutes(MAX_SLOT_MINUTES) {
        return Err(AppError::validation(format!(
            "a slot must last at most {MAX_SLOT_MINUTES} minutes"
        )));
    }
    Ok(())
}

pub async fn create(db: &PgPool, mentor_id: Uuid, input: NewSlot) -> AppResult<Slot> {
    validate_new(&input, Utc::now())?;
    sqlx::query_as::<_, Slot>(
        "insert into mentor_slots (id, mentor_id, starts_at, ends_at) values ($1, $2, $3, $4) \
         returning id, mentor_id, starts_at, ends_at, status, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(mentor_id)
    .bind(input.starts_at)
    .bind(input.ends_at)
    .fetch_one(db)
    .await
    .map_err(|err| match violation(&err) {
        Some((Violation::Exclusion | Violation::Unique, _)) => {
            AppError::conflict("the slot overlaps another of your slots")
        }
        Some((Violation::ForeignKey, _)) => AppError::unauthorized("your account no longer exists"),
        _ => err.into(),
    })
}

/// The mentor's own slots, every status, soonest first.
pub async fn list_for_mentor(
    db: &PgPool,
    mentor_id: Uuid,
    page: PageRequest,
) -> AppResult<Page<Slot>> {
    let rows = sqlx::query_as::<_, Counted<Slot>>(
        "select id, mentor_id, starts_at, ends_at, status, created_at, \
         count(*) over () as total_count from mentor_slots \
         where mentor_id = $1 order by starts_at, id limit $2 offset $3",
    )
    .bind(mentor_id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Page::from_counted(rows, page, async {
        let total = sqlx::query_scalar("select count(*) from mentor_slots where mentor_id = $1")
            .bind(mentor_id)
            .fetch_one(db)
            .await?;
        Ok(total)
    })
    .await
}

/// Shared WHERE clause of the open-slot search; a macro so the SQL stays `&'static str`.
macro_rules! open_slot_filter {
    () => {
        "status = 'open' and starts_at > now() \
         and ($1::uuid is null or mentor_id = $1) \
         and ($2::timestamptz is null or starts_at >= $2) \
         and ($3::timestamptz is null or starts_at < $3)"
    };
}

/// Bookable slots: open and not yet started.
pub async fn list_open(db: &PgPool, query: &OpenSlotQuery) -> AppResult<Page<Slot>> {
    let page = PageRequest::new(query.page, query.per_page)?;
    if let (Some(from), Some(to)) = (query.from, query.to)
        && to <= from
    {
        return Err(AppError::validation("to must be after from"));
    }
    let rows = sqlx::query_as::<_, Counted<Slot>>(concat!(
        "select id, mentor_id, starts_at, ends_at, status, created_at, \
         count(*) over () as total_count from mentor_slots where ",
        open_slot_filter!(),
        " order by starts_at, id limit $4 offset $5"
    ))
    .bind(query.mentor_id)
    .bind(query.from)
    .bind(query.to)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Page::from_counted(rows, page, async {
        let total = sqlx::query_scalar(concat!(
            "select count(*) from mentor_slots where ",
            open_slot_filter!()
        ))
        .bind(query.mentor_id)
        .bind(query.from)
        .bind(query.to)
        .fetch_one(db)
        .await?;
        Ok(total)
    })
    .await
}

/// Marks open slots whose start has passed as expired; returns how many changed.
/// Called periodically by the cleanup worker.
pub async fn expire_past_slots(db: &PgPool) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "update mentor_slots set status = 'expired' where status = 'open' and starts_at <= now()",
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_rules() {
        let now = Utc::now();
        let slot = |start_min: i64, len_min: i64| NewSlot {
            starts_at: now + Duration::minutes(start_min),
            ends_at: now + Duration::minutes(start_min + len_min),
        };
        assert!(validate_new(&slot(60, 30), now).is_ok());
        assert!(validate_new(&slot(-5, 30), now).is_err());
        assert!(validate_new(&slot(60, 0), now).is_err());
        assert!(validate_new(&slot(60, -10), now).is_err());
        assert!(validate_new(&slot(60, 5), now).is_err());
        assert!(validate_new(&slot(60, MAX_SLOT_MINUTES + 1), now).is_err());
        assert!(validate_new(&slot(60, MAX_SLOT_MINUTES), now).is_ok());
    }
}
