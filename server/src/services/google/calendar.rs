//! Google Calendar events (with a Meet link) for meetings, kept in step with the
//! meeting by a databaseQueue job: created when a booking schedules the meeting, moved
//! when its times change, deleted when it is cancelled. The booking never waits on
//! Google; a failed call is retried by the queue (attempts + exponential backoff).
//!
//! Followed: Calendar API v3 reference, https://developers.google.com/calendar/api/v3/reference/events
//! (`events.insert` with a client-chosen `id` of base32hex characters, 5–1024 long, so a
//! repeated insert answers 409 instead of creating a duplicate; `conferenceDataVersion=1`
//! with `conferenceData.createRequest` `{requestId, conferenceSolutionKey.type:
//! "hangoutsMeet"}`; the link in `hangoutLink` / `conferenceData.entryPoints[]`; creation
//! may be `pending`, read back later with `events.get`; `events.patch` for new times;
//! `events.delete` answering 410 when already deleted; `sendUpdates=all` mails both
//! attendees), and Google's OAuth 2.0 web-server guide,
//! https://developers.google.com/identity/protocols/oauth2/web-server#offline (a refresh
//! token exchanged at the token endpoint for short-lived access tokens).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::config::{GoogleCalendarConfig, Secret};
use crate::error::{AppError, AppResult};
use crate::queues::{JobError, QueueName};
use crate::services::integrations::{HttpClient, IntegrationId, OutboundError};
use crate::state::AppState;

pub const JOB_NAME: &str = "syncMeetingCalendar";

/// A cached access token, renewed a minute before Google's `expires_in`.
#[derive(Default)]
pub struct AccessTokenCache {
    token: Mutex<Option<(Instant, Secret)>>,
}

impl AccessTokenCache {
    pub async fn get(
        &self,
        http: &HttpClient,
        token_url: &str,
        form: &[(&str, &str)],
    ) -> Result<Secret, OutboundError> {
        let mut cached = self.token.lock().await;
        if let Some((until, token)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let token = refresh_access_token(http, token_url, form).await?;
        *cached = Some((Instant::now() + token.1, token.0.clone()));
        Ok(token.0)
    }

    pub async fn clear(&self) {
        *self.token.lock().await = None;
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

/// Exchanges a refresh token (the `form`) for an access token. Repeating a refresh is
/// harmless, so it is retried like an idempotent call.
pub async fn refresh_access_token(
    http: &HttpClient,
    token_url: &str,
    form: &[(&str, &str)],
) -> Result<(Secret, Duration), OutboundError> {
    let res = http
        .send_idempotent(|c| c.post(token_url).form(form))
        .await?;
    let answer: TokenAnswer = http.json(res).await?;
    let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600).saturating_sub(60).max(1));
    Ok((Secret::new(answer.access_token), lifetime))
}

/// The calendar event of a meeting, as participants see it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct CalendarEvent {
    pub meeting_id: Uuid,
    /// `pending` (not created yet), `synced`, `cancelled` or `failed`.
    pub status: String,
    pub event_id: String,
    /// Google Meet link once the conference exists.
    pub meet_link: Option<String>,
    pub html_link: Option<String>,
    pub attempts: i32,
    /// Why the last attempt failed (no secrets: provider name and status only).
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Calendar API event ids are base32hex (`0-9a-v`): a UUID's hex digits qualify.
pub fn event_id(meeting_id: Uuid) -> String {
    format!("mas{}", meeting_id.simple())
}

/// Called after a meeting was created, moved or cancelled: records that its event must
/// follow and enqueues the sync. Never fails the caller (the booking is done): problems
/// are logged, and an unconfigured calendar is simply skipped.
pub async fn meeting_changed(state: &AppState, meeting_id: Uuid) {
    if !state
        .integrations
        .is_configured(IntegrationId::GoogleCalendar)
    {
        return;
    }
    let recorded = sqlx::query(
        "insert into meeting_calendar_events (meeting_id, event_id) values ($1, $2) \
         on conflict (meeting_id) do nothing",
    )
    .bind(meeting_id)
    .bind(event_id(meeting_id))
    .execute(&state.db)
    .await;
    if let Err(err) = recorded {
        tracing::warn!(%meeting_id, error = %err, "calendar sync not recorded");
        return;
    }
    let added = state
        .queues
        .add(
            QueueName::Database,
            JOB_NAME,
            json!({"meetingId": meeting_id}),
            None,
        )
        .await;
    if let Err(err) = added {
        tracing::warn!(%meeting_id, error = %err, "calendar sync not enqueued");
    }
}

/// [`meeting_changed`] for the meeting a booking scheduled (after a cancellation).
pub async fn booking_changed(state: &AppState, booking_id: Uuid) {
    if !state
        .integrations
        .is_configured(IntegrationId::GoogleCalendar)
    {
        return;
    }
    let meeting: Result<Option<Uuid>, _> =
        sqlx::query_scalar("select id from meetings where booking_id = $1")
            .bind(booking_id)
            .fetch_optional(&state.db)
            .await;
    match meeting {
        Ok(Some(meeting_id)) => meeting_changed(state, meeting_id).await,
        Ok(None) => {}
        Err(err) => tracing::warn!(%booking_id, error = %err, "calendar sync not recorded"),
    }
}

/// The event of a meeting the caller may see (participants and admins).
pub async fn get(
    state: &AppState,
    meeting_id: Uuid,
    caller: &AuthUser,
) -> AppResult<CalendarEvent> {
    crate::services::meetings::get(&state.db, meeting_id, caller).await?;
    sqlx::query_as::<_, CalendarEvent>(
        "select meeting_id, status, event_id, meet_link, html_link, attempts, last_error, updated_at \
         from meeting_calendar_events where meeting_id = $1",
    )
    .bind(meeting_id)
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| AppError::not_found("this meeting has no calendar event"))
}

#[derive(sqlx::FromRow)]
struct MeetingRow {
    status: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    mentor_email: String,
    mentor_name: String,
    student_email: String,
    student_name: String,
}

#[derive(sqlx::FromRow)]
struct SyncRow {
    status: String,
    event_id: String,
    synced_starts_at: Option<DateTime<Utc>>,
    synced_ends_at: Option<DateTime<Utc>>,
}

fn transient(err: OutboundError) -> JobError {
    if err.is_transient() {
        JobError::retry(err.to_string())
    } else {
        JobError::permanent(err.to_string())
    }
}

/// Brings the meeting's event in line with the meeting (the job's work). Idempotent:
/// any number of runs, in any order, converge on the meeting's current state.
pub async fn sync(state: &AppState, meeting_id: Uuid) -> Result<Value, JobError> {
    let http = state
        .integrations
        .http(IntegrationId::GoogleCalendar)
        .map_err(|e| JobError::permanent(e.to_string()))?;
    let cfg = state
        .config
        .external
        .google_calendar
        .as_ref()
        .ok_or_else(|| JobError::permanent("google_calendar has no settings"))?;

    let mut tx = state.db.begin().await?;
    // One sync per meeting at a time: the row lock orders concurrent jobs.
    let Some(row) = sqlx::query_as::<_, SyncRow>(
        "select status, event_id, synced_starts_at, synced_ends_at \
         from meeting_calendar_events where meeting_id = $1 for update",
    )
    .bind(meeting_id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(JobError::permanent(format!(
            "meeting {meeting_id} has no calendar sync row"
        )));
    };
    let Some(meeting) = sqlx::query_as::<_, MeetingRow>(
        "select m.status, m.starts_at, m.ends_at, mu.email as mentor_email, mu.name as mentor_name, \
                su.email as student_email, su.name as student_name \
         from meetings m join users mu on mu.id = m.mentor_id join users su on su.id = m.student_id \
         where m.id = $1",
    )
    .bind(meeting_id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(JobError::permanent(format!("meeting {meeting_id} no longer exists")));
    };

    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", cfg.refresh_token.expose()),
        ("client_id", cfg.client_id.as_str()),
        ("client_secret", cfg.client_secret.expose()),
    ];
    let token = state
        .external
        .calendar_token
        .get(http, &cfg.oauth.token_url, &form)
        .await
        .map_err(transient)?;
    let api = Api {
        http,
        cfg,
        token: &token,
        event_id: &row.event_id,
    };

    // `link`: whether the event must carry a Meet link by now.
    let (outcome, link) = match (meeting.status.as_str(), row.status.as_str()) {
        ("cancelled", "pending") => {
            // Cancelled before the event was ever created: nothing to remove.
            mark(&mut tx, meeting_id, "cancelled", None, None, None).await?;
            ("nothing to cancel", None)
        }
        ("cancelled", "cancelled") => ("already cancelled", None),
        ("cancelled", _) => {
            api.delete().await?;
            mark(&mut tx, meeting_id, "cancelled", None, None, None).await?;
            ("cancelled", None)
        }
        (_, "pending") | (_, "failed") if row.synced_starts_at.is_none() => {
            let event = api.insert(&meeting, meeting_id).await?;
            record_event(&mut tx, meeting_id, &event, &meeting).await?;
            ("created", Some(event))
        }
        _ if row.synced_starts_at != Some(meeting.starts_at)
            || row.synced_ends_at != Some(meeting.ends_at) =>
        {
            let event = api.patch_times(&meeting).await?;
            record_event(&mut tx, meeting_id, &event, &meeting).await?;
            ("moved", None)
        }
        _ => {
            // Created earlier while Meet was still setting the conference up.
            let event = api.get().await?;
            record_event(&mut tx, meeting_id, &event, &meeting).await?;
            ("up to date", Some(event))
        }
    };
    // What was done is kept even when the link is still to come.
    tx.commit().await?;
    if let Some(event) = &link {
        require_link(event)?;
    }
    tracing::info!(%meeting_id, outcome, "meeting calendar synced");
    Ok(json!({"meetingId": meeting_id, "outcome": outcome}))
}

/// Records the final failure (after the last attempt) so participants can see it.
pub async fn record_failure(
    state: &AppState,
    meeting_id: Uuid,
    reason: &str,
    last: bool,
) -> Result<(), JobError> {
    sqlx::query(
        "update meeting_calendar_events set attempts = attempts + 1, last_error = $2, \
         status = case when $3 and status = 'pending' then 'failed' else status end \
         where meeting_id = $1",
    )
    .bind(meeting_id)
    .bind(reason)
    .bind(last)
    .execute(&state.db)
    .await?;
    Ok(())
}

async fn mark(
    tx: &mut sqlx::PgConnection,
    meeting_id: Uuid,
    status: &str,
    meet_link: Option<&str>,
    html_link: Option<&str>,
    times: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<(), JobError> {
    sqlx::query(
        "update meeting_calendar_events set status = $2, \
           meet_link = coalesce($3, meet_link), html_link = coalesce($4, html_link), \
           synced_starts_at = coalesce($5, synced_starts_at), synced_ends_at = coalesce($6, synced_ends_at), \
           last_error = null \
         where meeting_id = $1",
    )
    .bind(meeting_id)
    .bind(status)
    .bind(meet_link)
    .bind(html_link)
    .bind(times.map(|t| t.0))
    .bind(times.map(|t| t.1))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn record_event(
    tx: &mut sqlx::PgConnection,
    meeting_id: Uuid,
    event: &Value,
    meeting: &MeetingRow,
) -> Result<(), JobError> {
    mark(
        tx,
        meeting_id,
        "synced",
        meet_link(event).as_deref(),
        event["htmlLink"].as_str(),
        Some((meeting.starts_at, meeting.ends_at)),
    )
    .await
}

/// The Meet link: `hangoutLink`, else the conference's video entry point.
fn meet_link(event: &Value) -> Option<String> {
    event["hangoutLink"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            event["conferenceData"]["entryPoints"]
                .as_array()?
                .iter()
                .find(|e| e["entryPointType"] == "video")?["uri"]
                .as_str()
                .map(str::to_string)
        })
}

/// Meet may still be creating the conference: try again later to read the link.
fn require_link(event: &Value) -> Result<(), JobError> {
    if meet_link(event).is_some() {
        Ok(())
    } else {
        Err(JobError::retry(
            "google_calendar: the Meet conference is still being created",
        ))
    }
}

struct Api<'a> {
    http: &'a HttpClient,
    cfg: &'a GoogleCalendarConfig,
    token: &'a Secret,
    event_id: &'a str,
}

impl Api<'_> {
    fn events_url(&self) -> String {
        format!(
            "{}/calendars/{}/events",
            self.cfg.api_url,
            urlencode(&self.cfg.calendar_id)
        )
    }

    fn event_url(&self) -> String {
        format!("{}/{}", self.events_url(), self.event_id)
    }

    async fn insert(&self, m: &MeetingRow, meeting_id: Uuid) -> Result<Value, JobError> {
        let body = json!({
            "id": self.event_id,
            "summary": format!("Mentoring session: {} with {}", m.mentor_name, m.student_name),
            "description": "Scheduled on MAS. Join with the Google Meet link.",
            "start": {"dateTime": m.starts_at.to_rfc3339()},
            "end": {"dateTime": m.ends_at.to_rfc3339()},
            "attendees": [
                {"email": m.mentor_email, "displayName": m.mentor_name},
                {"email": m.student_email, "displayName": m.student_name},
            ],
            "conferenceData": {"createRequest": {
                "requestId": meeting_id.to_string(),
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }},
            "extendedProperties": {"private": {"masMeetingId": meeting_id.to_string()}},
        });
        let url = self.events_url();
        // Safe to repeat: the fixed event id makes a second insert a 409, not a copy.
        let sent = self
            .http
            .send_idempotent(|c| {
                c.post(&url)
                    .bearer_auth(self.token.expose())
                    .query(&[("conferenceDataVersion", "1"), ("sendUpdates", "all")])
                    .json(&body)
            })
            .await;
        match sent {
            Ok(res) => self.http.json(res).await.map_err(transient),
            // Created by an earlier attempt whose answer was lost: read it back.
            Err(OutboundError::Status { status, .. }) if status.as_u16() == 409 => self.get().await,
            Err(err) => Err(transient(err)),
        }
    }

    async fn get(&self) -> Result<Value, JobError> {
        let url = self.event_url();
        let res = self
            .http
            .send(|c| c.get(&url).bearer_auth(self.token.expose()))
            .await
            .map_err(transient)?;
        self.http.json(res).await.map_err(transient)
    }

    async fn patch_times(&self, m: &MeetingRow) -> Result<Value, JobError> {
        let url = self.event_url();
        let body = json!({
            "start": {"dateTime": m.starts_at.to_rfc3339()},
            "end": {"dateTime": m.ends_at.to_rfc3339()},
        });
        // Setting the same times twice is harmless.
        let res = self
            .http
            .send_idempotent(|c| {
                c.patch(&url)
                    .bearer_auth(self.token.expose())
                    .query(&[("conferenceDataVersion", "1"), ("sendUpdates", "all")])
                    .json(&body)
            })
            .await
            .map_err(transient)?;
        self.http.json(res).await.map_err(transient)
    }

    async fn delete(&self) -> Result<(), JobError> {
        let url = self.event_url();
        match self
            .http
            .send(|c| {
                c.delete(&url)
                    .bearer_auth(self.token.expose())
                    .query(&[("sendUpdates", "all")])
            })
            .await
        {
            Ok(_) => Ok(()),
            // Already gone: what we wanted.
            Err(OutboundError::Status { status, .. }) if matches!(status.as_u16(), 404 | 410) => {
                Ok(())
            }
            Err(err) => Err(transient(err)),
        }
    }
}

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_base32hex() {
        let id = event_id(Uuid::new_v4());
        assert!((5..=1024).contains(&id.len()));
        assert!(
            id.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='v').contains(&c))
        );
    }

    #[test]
    fn meet_link_from_either_field() {
        assert_eq!(
            meet_link(&json!({"hangoutLink": "https://meet.google.com/a"})).as_deref(),
            Some("https://meet.google.com/a")
        );
        let v = json!({"conferenceData": {"entryPoints": [
            {"entryPointType": "phone", "uri": "tel:+1"},
            {"entryPointType": "video", "uri": "https://meet.google.com/b"}]}});
        assert_eq!(meet_link(&v).as_deref(), Some("https://meet.google.com/b"));
        assert!(meet_link(&json!({})).is_none());
        assert_eq!(
            urlencode("team@group.calendar.google.com"),
            "team%40group.calendar.google.com"
        );
    }
}
