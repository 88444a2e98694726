//! `/api/crm/leads`: the sales team's leads, notes, calls and SMS. Sales users see the
//! leads assigned to them, admins every lead; another user's lead is a 404.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::response::{Envelope, created, ok};
use crate::auth::{RequireRole, roles};
use crate::error::{AppResult, ErrorBody};
use crate::services::crm::{self, CallStarted, Lead, LeadDetail, LeadNote, NewLead, SmsLog};
use crate::services::page::{Page, PageRequest};
use crate::state::AppState;

type Sales = RequireRole<roles::SalesTeam>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_leads, create_lead))
        .routes(routes!(get_lead))
        .routes(routes!(assign_lead))
        .routes(routes!(set_status))
        .routes(routes!(add_note))
        .routes(routes!(call_lead))
        .routes(routes!(sms_lead))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct LeadQuery {
    /// 1-based page number, 1..=1000000 (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
    /// `new`, `contacted`, `qualified`, `converted` or `lost`.
    #[param(pattern = "^(new|contacted|qualified|converted|lost)$")]
    pub status: Option<String>,
}

/// The caller's leads (admins: all), newest first.
#[utoipa::path(
    get, path = "/api/crm/leads", tag = "crm", params(LeadQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of leads", body = Envelope<Page<Lead>>),
        (status = 400, description = "Bad pagination or status", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not sales or admin", body = ErrorBody)
    )
)]
async fn list_leads(
    State(state): State<AppState>,
    caller: Sales,
    ApiQuery(query): ApiQuery<LeadQuery>,
) -> AppResult<Json<Envelope<Page<Lead>>>> {
    let page = PageRequest::new(query.page, query.per_page)?;
    let u = caller.user();
    Ok(ok(crm::list(
        &state.db,
        u.id(),
        u.role(),
        query.status.as_deref(),
        page,
    )
    .await?))
}

/// Creates a lead, assigned to the caller (admins may assign it to any sales user).
#[utoipa::path(
    post, path = "/api/crm/leads", tag = "crm", request_body = NewLead, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Envelope<Lead>),
        (status = 400, description = "Invalid name, phone, email or assignee", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not sales or admin, or a sales user assigning to someone else", body = ErrorBody)
    )
)]
async fn create_lead(
    State(state): State<AppState>,
    caller: Sales,
    ApiJson(input): ApiJson<NewLead>,
) -> AppResult<(StatusCode, Json<Envelope<Lead>>)> {
    let u = caller.user();
    Ok(created(
        crm::create(&state.db, u.id(), u.role(), input).await?,
    ))
}

/// A lead with its notes and call log.
#[utoipa::path(
    get, path = "/api/crm/leads/{id}", tag = "crm", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses(
        (status = 200, description = "The lead", body = Envelope<LeadDetail>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not sales or admin", body = ErrorBody),
        (status = 404, description = "No such lead of the caller's", body = ErrorBody)
    )
)]
async fn get_lead(
    State(state): State<AppState>,
    caller: Sales,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<LeadDetail>>> {
    let u = caller.user();
    Ok(ok(crm::detail(&state.db, u.id(), u.role(), id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assignment {
    /// A sales (or admin) user.
    pub assigned_to: Uuid,
}

/// Hands a lead to another sales user (sales: their own leads; admins: any).
#[utoipa::path(
    put, path = "/api/crm/leads/{id}/assignee", tag = "crm", params(("id" = Uuid, Path)),
    request_body = Assignment, security(("bearer" = [])),
    responses(
        (status = 200, description = "Reassigned", body = Envelope<Lead>),
        (status = 400, description = "The assignee is not an active sales user", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not sales or admin", body = ErrorBody),
        (status = 404, description = "No such lead of the caller's", body = ErrorBody)
    )
)]
async fn assign_lead(
    State(state): State<AppState>,
    caller: Sales,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Assignment>,
) -> AppResult<Json<Envelope<Lead>>> {
    let u = caller.user();
    Ok(ok(crm::assign(
        &state.db,
        u.id(),
        u.role(),
        id,
        body.assigned_to,
    )
    .await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    #[schema(pattern = "^(new|contacted|qualified|converted|lost)$")]
    pub status: String,
}

/// Moves a lead to another status.
#[utoipa::path(
    put, path = "/api/crm/leads/{id}/status", tag = "crm", params(("id" = Uuid, Path)),
    request_body = StatusInput, security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = Envelope<Lead>),
        (status = 400, description = "Unknown status", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not sales or admin", body = ErrorBody),
        (status = 404, description = "No such lead of the caller's", body = ErrorBody)
    )
)]
async fn set_status(
    State(state): State<AppState>,
    caller: Sales,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<StatusInput>,
) -> AppResult<Json<Envelope<Lead>>> {
    let u = caller.user();
    Ok(ok(crm::set_status(
        &state.db,
        u.id(),
        u.role(),
        id,
        &body.status,
    )
    .await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    #[schema(min_length = 1, max_length = 4000)]
    pub body: String,
}

/// Adds a note to a lead.
#[utoipa::path(
    post, path = "/api/crm/leads/{id}/notes", tag = "crm", params(("id" = Uuid, Path)),
    request_body = NoteInput, security(("bearer" = [])),
    responses(
        (status = 201, description = "Added", body = Envelope<LeadNote>),
        (status = 400, description = "Empty or too long", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not sales or admin", body = ErrorBody),
        (status = 404, description = "No such lead of the caller's", body = ErrorBody)
    )
)]
async fn add_note(
    State(state): State<AppState>,
    caller: Sales,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NoteInput>,
) -> AppResult<(StatusCode, Json<Envelope<LeadNote>>)> {
    let u = caller.user();
    Ok(created(
        crm::add_note(&state.db, u.id(), u.role(), id, &body.body).await?,
    ))
}

/// Click-to-call: Exotel rings the caller's phone (`PUT /api/profile/phone`), then
/// bridges the lead; Exotel's status callbacks update the call log. Without Exotel
/// the answer is a `tel:` link for the agent's own phone (`mode: "tel"`).
#[utoipa::path(
    post, path = "/api/crm/leads/{id}/call", tag = "crm", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Call placed (exotel) or tel: link issued (tel)", body = Envelope<CallStarted>),
        (status = 400, description = "The caller has no phone number set (Exotel mode)", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not sales or admin", body = ErrorBody),
        (status = 404, description = "No such lead of the caller's", body = ErrorBody),
        (status = 502, description = "Exotel answered badly", body = ErrorBody),
        (status = 503, description = "Exotel's circuit is open", body = ErrorBody),
        (status = 504, description = "Exotel did not answer in time", body = ErrorBody)
    )
)]
async fn call_lead(
    State(state): State<AppState>,
    caller: Sales,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<(StatusCode, Json<Envelope<CallStarted>>)> {
    let u = caller.user();
    Ok(created(crm::call(&state, u.id(), u.role(), id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsInput {
    #[schema(min_length = 1, max_length = 1000)]
    pub body: String,
}

/// Sends an SMS to the lead through Exotel, from the ExoPhone.
#[utoipa::path(
    post, path = "/api/crm/leads/{id}/sms", tag = "crm", params(("id" = Uuid, Path)),
    request_body = SmsInput, security(("bearer" = [])),
    responses(
        (status = 201, description = "Handed to Exotel", body = Envelope<SmsLog>),
        (status = 400, description = "Empty or too long", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not sales or admin", body = ErrorBody),
        (status = 404, description = "No such lead of the caller's", body = ErrorBody),
        (status = 502, description = "Exotel answered badly", body = ErrorBody),
        (status = 503, description = "Exotel is not configured (INTEGRATION_DISABLED)", body = ErrorBody),
        (status = 504, description = "Exotel did not answer in time", body = ErrorBody)
    )
)]
async fn sms_lead(
    State(state): State<AppState>,
    caller: Sales,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SmsInput>,
) -> AppResult<(StatusCode, Json<Envelope<SmsLog>>)> {
    let u = caller.user();
    Ok(created(
        crm::send_sms(&state, u.id(), u.role(), id, &body.body).await?,
    ))
}
