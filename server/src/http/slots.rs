//! `/api/slots`: mentors publish availability, students search and book it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::response::{Envelope, created, ok};
use crate::auth::{AuthUser, RequireRole, roles};
use crate::error::{AppResult, ErrorBody};
use crate::services::bookings::{self, Confirmed};
use crate::services::page::{Page, PageQuery};
use crate::services::slots::{self, NewSlot, OpenSlotQuery, Slot};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_open_slots, create_slot))
        .routes(routes!(list_my_slots))
        .routes(routes!(book_slot))
}

/// Publishes an availability slot (mentors).
#[utoipa::path(
    post, path = "/api/slots", tag = "slots", request_body = NewSlot,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Envelope<Slot>),
        (status = 400, description = "Not in the future, end before start, too short or too long", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a mentor", body = ErrorBody),
        (status = 409, description = "Overlaps another of the mentor's slots", body = ErrorBody)
    )
)]
async fn create_slot(
    State(state): State<AppState>,
    mentor: RequireRole<roles::Mentors>,
    ApiJson(input): ApiJson<NewSlot>,
) -> AppResult<(StatusCode, Json<Envelope<Slot>>)> {
    Ok(created(
        slots::create(&state.db, mentor.user().id(), input).await?,
    ))
}

/// The calling mentor's own slots, every status.
#[utoipa::path(
    get, path = "/api/slots/mine", tag = "slots", params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the mentor's slots", body = Envelope<Page<Slot>>),
        (status = 403, description = "Not a mentor", body = ErrorBody)
    )
)]
async fn list_my_slots(
    State(state): State<AppState>,
    mentor: RequireRole<roles::Mentors>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> AppResult<Json<Envelope<Page<Slot>>>> {
    Ok(ok(slots::list_for_mentor(
        &state.db,
        mentor.user().id(),
        query.resolve()?,
    )
    .await?))
}

/// Open, future slots, optionally of one mentor and within a time range.
#[utoipa::path(
    get, path = "/api/slots", tag = "slots", params(OpenSlotQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of bookable slots", body = Envelope<Page<Slot>>),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody)
    )
)]
async fn list_open_slots(
    State(state): State<AppState>,
    _user: AuthUser,
    ApiQuery(query): ApiQuery<OpenSlotQuery>,
) -> AppResult<Json<Envelope<Page<Slot>>>> {
    Ok(ok(slots::list_open(&state.db, &query).await?))
}

/// Books a slot (students): confirms the booking and schedules the meeting.
#[utoipa::path(
    post, path = "/api/slots/{id}/book", tag = "slots", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Booked; the meeting is scheduled", body = Envelope<Confirmed>),
        (status = 403, description = "Not a student", body = ErrorBody),
        (status = 404, description = "Unknown slot", body = ErrorBody),
        (status = 409, description = "Already booked, expired or started", body = ErrorBody)
    )
)]
async fn book_slot(
    State(state): State<AppState>,
    student: RequireRole<roles::Students>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<(StatusCode, Json<Envelope<Confirmed>>)> {
    let confirmed = bookings::book(&state.db, id, student.user().id()).await?;
    // Best effort: a booking never fails because its WhatsApp confirmation could not
    // be queued (and nothing is queued while WhatsApp is off or the student has no phone).
    let starts = confirmed
        .meeting
        .starts_at
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    if let Err(err) = crate::services::whatsapp::queue_template(
        &state,
        confirmed.meeting.student_id,
        crate::services::whatsapp::TemplateKind::BookingConfirmation,
        vec![starts],
    )
    .await
    {
        tracing::warn!(meeting = %confirmed.meeting.id, error = %err, "booking confirmation not queued");
    }
    // The calendar event follows through the queue; the booking never waits on Google.
    crate::services::google::calendar::meeting_changed(&state, confirmed.meeting.id).await;
    Ok(created(confirmed))
}
