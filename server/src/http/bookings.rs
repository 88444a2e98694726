//! `/api/bookings`: cancelling a booking frees its slot.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::ApiPath;
use super::response::{Envelope, ok};
use crate::auth::AuthUser;
use crate::error::{AppResult, ErrorBody};
use crate::services::bookings::{self, Booking};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(cancel_booking))
}

/// Cancels a booking (its student, the mentor or an admin); the meeting is
/// cancelled and the slot reopens.
#[utoipa::path(
    post, path = "/api/bookings/{id}/cancel", tag = "bookings", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled", body = Envelope<Booking>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a participant or admin", body = ErrorBody),
        (status = 404, description = "Unknown booking", body = ErrorBody),
        (status = 409, description = "Already cancelled", body = ErrorBody)
    )
)]
async fn cancel_booking(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<Booking>>> {
    let booking = bookings::cancel(&state.db, id, &user).await?;
    crate::services::google::calendar::booking_changed(&state, booking.id).await;
    Ok(ok(booking))
}
