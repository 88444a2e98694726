//! Meetings: created when a booking is confirmed; visible to their two participants
//! and to admins.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::page::{Counted, Page, PageRequest};
use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Meeting {
    pub id: Uuid,
    pub booking_id: Uuid,
    pub mentor_id: Uuid,
    pub student_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `scheduled`, `cancelled` or `completed`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl Meeting {
    pub fn is_participant(&self, user_id: Uuid) -> bool {
        self.mentor_id == user_id || self.student_id == user_id
    }
}

pub async fn get(db: &PgPool, id: Uuid, caller: &AuthUser) -> AppResult<Meeting> {
    let meeting = sqlx::query_as::<_, Meeting>(
        "select id, booking_id, mentor_id, student_id, starts_at, ends_at, status, created_at \
         from meetings where id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| AppError::not_found(format!("meeting {id} not found")))?;
    if meeting.is_participant(caller.id()) || caller.role().is_admin() {
        Ok(meeting)
    } else {
        Err(AppError::forbidden(
            "only the meeting's participants can see it",
        ))
    }
}

/// Meetings the caller takes part in (as mentor or student), soonest first.
pub async fn list_for_user(
    db: &PgPool,
    user_id: Uuid,
    page: PageRequest,
) -> AppResult<Page<Meeting>> {
    let rows = sqlx::query_as::<_, Counted<Meeting>>(
        "select id, booking_id, mentor_id, student_id, starts_at, ends_at, status, created_at, \
         count(*) over () as total_count \
         from meetings where mentor_id = $1 or student_id = $1 \
         order by starts_at, id limit $2 offset $3",
    )
    .bind(user_id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Page::from_counted(rows, page, async {
        let total = sqlx::query_scalar(
            "select count(*) from meetings where mentor_id = $1 or student_id = $1",
        )
        .bind(user_id)
        .fetch_one(db)
        .await?;
        Ok(total)
    })
    .await
}
