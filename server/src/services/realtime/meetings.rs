//! Meeting membership: the booking's student, the mentor, or an admin.

use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::Claims;
use crate::error::AppError;

/// What the caller may do in a meeting.
#[derive(Debug, Clone, Copy)]
pub struct MeetingAccess {
    pub meeting_id: Uuid,
    /// The mentor hosts the meeting (controls recording).
    pub is_host: bool,
    /// Cancelled meetings keep their history but cannot be entered.
    pub cancelled: bool,
}

impl MeetingAccess {
    /// Entering the live room additionally needs a meeting that still takes place.
    pub fn enter(self) -> Result<MeetingAccess, AppError> {
        if self.cancelled {
            Err(AppError::conflict("this meeting was cancelled"))
        } else {
            Ok(self)
        }
    }
}

#[derive(sqlx::FromRow)]
struct MeetingParties {
    mentor_id: Uuid,
    student_id: Uuid,
    booking_student_id: Uuid,
    status: String,
}

/// Ok when `user` is a participant (or admin); 404 unknown meeting, 403 otherwise.
pub async fn authorize(
    db: &PgPool,
    meeting_id: Uuid,
    user: &Claims,
) -> Result<MeetingAccess, AppError> {
    let parties = sqlx::query_as::<_, MeetingParties>(
        "select m.mentor_id, m.student_id, b.student_id as booking_student_id, m.status \
         from meetings m join bookings b on b.id = m.booking_id where m.id = $1",
    )
    .bind(meeting_id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| AppError::not_found("meeting not found"))?;

    let is_host = parties.mentor_id == user.sub;
    let is_participant =
        is_host || parties.student_id == user.sub || parties.booking_student_id == user.sub;
    if !(is_participant || user.role.is_admin()) {
        return Err(AppError::forbidden(
            "you are not a participant of this meeting",
        ));
    }
    Ok(MeetingAccess {
        meeting_id,
        is_host,
        cancelled: parties.status == "cancelled",
    })
}
