//! Google Calendar events for meetings and mentors' Drive connection. Google is
//! replaced by local stand-ins for its OAuth 2.0 token endpoint
//! (https://developers.google.com/identity/protocols/oauth2/web-server: form-encoded
//! `authorization_code` / `refresh_token` grants answering `access_token`,
//! `expires_in`, `refresh_token`), the Calendar API v3 events resource
//! (https://developers.google.com/calendar/api/v3/reference/events: insert with a
//! client-chosen id answering 409 for a duplicate, `conferenceData.createRequest`
//! pending then a `hangoutLink`, patch, delete answering 410 when gone) and the Drive
//! API v3 (`about`, `files.list`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mas_server::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::standin::{Recorder, serve};
use crate::support::wait::wait_for;
use crate::support::{TestApp, TestUser, create_user, logs};

const CLIENT_SECRET: &str = "google-client-secret-value";
const CALENDAR_REFRESH: &str = "1//calendar-organizer-refresh-token";
const DRIVE_REFRESH: &str = "1//mentor-drive-refresh-token";
const ACCESS: &str = "ya29.stand-in-access-token";
const ENCRYPTION_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[derive(Clone, Default)]
struct Google {
    events: Arc<Mutex<HashMap<String, Value>>>,
    /// Event inserts answered 500 before one succeeds.
    insert_failures: Arc<AtomicUsize>,
    /// Inserts sleep this long (the booking must not wait for it).
    insert_delay_ms: Arc<AtomicUsize>,
}

fn bearer_ok(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {ACCESS}"))
}

async fn token(body: axum::body::Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") if matches!(form["refresh_token"].as_str(), CALENDAR_REFRESH | DRIVE_REFRESH) => {
            Json(json!({"access_token": ACCESS, "expires_in": 3599, "token_type": "Bearer"})).into_response()
        }
        Some("authorization_code") if form.get("code").map(String::as_str) == Some("drive-code") => Json(json!({
            "access_token": ACCESS, "expires_in": 3599, "token_type": "Bearer",
            "refresh_token": DRIVE_REFRESH, "scope": "openid email https://www.googleapis.com/auth/drive.readonly"
        }))
        .into_response(),
        _ => (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant"}))).into_response(),
    }
}

async fn insert_event(
    State(g): State<Google>,
    headers: HeaderMap,
    Json(mut event): Json<Value>,
) -> Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let delay = g.insert_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    if g.insert_failures.load(Ordering::SeqCst) > 0 {
        g.insert_failures.fetch_sub(1, Ordering::SeqCst);
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"code": 500}})),
        )
            .into_response();
    }
    let id = event["id"].as_str().unwrap().to_string();
    let mut events = g.events.lock().unwrap();
    if events.contains_key(&id) {
        return (StatusCode::CONFLICT, Json(json!({"error": {"code": 409, "message": "The requested identifier already exists."}}))).into_response();
    }
    // Meet creates the conference asynchronously: the first answer has no link yet.
    event["conferenceData"]["createRequest"]["status"] = json!({"statusCode": "pending"});
    event["htmlLink"] = json!(format!("https://www.google.com/calendar/event?eid={id}"));
    event["status"] = json!("confirmed");
    events.insert(id, event.clone());
    Json(event).into_response()
}

async fn event(
    State(g): State<Google>,
    headers: HeaderMap,
    method: axum::http::Method,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut events = g.events.lock().unwrap();
    match method.as_str() {
        "GET" => match events.get_mut(&id) {
            Some(e) => {
                e["hangoutLink"] = json!(format!("https://meet.google.com/{}", &id[3..13]));
                e["conferenceData"]["createRequest"]["status"] = json!({"statusCode": "success"});
                Json(e.clone()).into_response()
            }
            None => StatusCode::NOT_FOUND.into_response(),
        },
        "PATCH" => match events.get_mut(&id) {
            Some(e) => {
                let patch: Value = serde_json::from_slice(&body).unwrap();
                e["start"] = patch["start"].clone();
                e["end"] = patch["end"].clone();
                Json(e.clone()).into_response()
            }
            None => StatusCode::NOT_FOUND.into_response(),
        },
        "DELETE" => match events.remove(&id) {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => StatusCode::GONE.into_response(),
        },
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

async fn drive_about(headers: HeaderMap) -> Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!({"user": {"emailAddress": "mentor.drive@example.com"}})).into_response()
}

async fn drive_files(headers: HeaderMap) -> Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!({"files": [{"id": "f1", "name": "Mentoring session (2026-11-30 at 10:00 GMT)", "createdTime": "2026-11-30T10:45:00Z",
                           "webViewLink": "https://drive.google.com/file/d/f1/view", "size": "104857600"}]}))
    .into_response()
}

async fn google(g: Google) -> (String, Recorder) {
    serve(
        axum::Router::new()
            .route("/token", post(token))
            .route("/calendar/v3/calendars/primary/events", post(insert_event))
            .route(
                "/calendar/v3/calendars/primary/events/{id}",
                get(event).patch(event).delete(event),
            )
            .route("/drive/v3/about", get(drive_about))
            .route("/drive/v3/files", get(drive_files))
            .with_state(g),
    )
    .await
}

fn google_env(base: &str) -> Vec<(String, String)> {
    [
        (
            "GOOGLE_CLIENT_ID",
            "mas-client.apps.googleusercontent.com".to_string(),
        ),
        ("GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_string()),
        (
            "GOOGLE_CALENDAR_REFRESH_TOKEN",
            CALENDAR_REFRESH.to_string(),
        ),
        ("GOOGLE_OAUTH_TOKEN_URL", format!("{base}/token")),
        ("GOOGLE_OAUTH_AUTH_URL", format!("{base}/o/oauth2/v2/auth")),
        ("GOOGLE_CALENDAR_API_URL", format!("{base}/calendar/v3")),
        ("GOOGLE_DRIVE_API_URL", format!("{base}/drive/v3")),
        (
            "GOOGLE_DRIVE_REDIRECT_URI",
            "http://127.0.0.1:9/api/integrations/google-drive/callback".to_string(),
        ),
        ("TOKEN_ENCRYPTION_KEY", ENCRYPTION_KEY.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn book(app: &TestApp, mentor: &TestUser, student: &TestUser, hours_ahead: i64) -> Value {
    let starts = chrono::Utc::now() + chrono::Duration::hours(hours_ahead);
    let (s, slot) = app
        .call(
            Method::POST,
            "/api/slots",
            Some(&mentor.token),
            Some(json!({"startsAt": starts, "endsAt": starts + chrono::Duration::minutes(45)})),
        )
        .await;
    assert_eq!(s, 201, "{slot}");
    let id = slot["data"]["id"].as_str().unwrap();
    let t = Instant::now();
    let (s, booked) = app
        .call(
            Method::POST,
            &format!("/api/slots/{id}/book"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(s, 201, "{booked}");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "the booking never waits on Google: {:?}",
        t.elapsed()
    );
    booked["data"].clone()
}

async fn calendar_state(
    app: &TestApp,
    token: &str,
    meeting: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(
        "the meeting's calendar event",
        Duration::from_secs(25),
        || async {
            let (s, body) = app
                .call(
                    Method::GET,
                    &format!("/api/meetings/{meeting}/calendar"),
                    Some(token),
                    None,
                )
                .await;
            (s == 200 && want(&body["data"])).then_some(body["data"].clone())
        },
    )
    .await
}

#[sqlx::test(migrations = false)]
async fn meetings_get_calendar_events_that_follow_them(db: PgPool) {
    let logs = logs::capture();
    let g = Google::default();
    let (base, rec) = google(g.clone()).await;
    let env = google_env(&base);
    let (app, prefix) = crate::support::queues::spawn(db, move |e| {
        e.extend(env);
        e.insert("QUEUE_JOB_ATTEMPTS".into(), "6".into());
    })
    .await;
    let mentor = create_user(&app.state, Role::Mentor).await;
    let student = create_user(&app.state, Role::Student).await;

    // A slow Calendar API does not slow the booking down.
    g.insert_delay_ms.store(2000, Ordering::SeqCst);
    let booked = book(&app, &mentor, &student, 24).await;
    g.insert_delay_ms.store(0, Ordering::SeqCst);
    let meeting = booked["meeting"]["id"].as_str().unwrap().to_string();
    let event = calendar_state(&app, &student.token, &meeting, |e| {
        e["status"] == "synced" && e["meetLink"].is_string()
    })
    .await;
    let event_id = format!("mas{}", Uuid::parse_str(&meeting).unwrap().simple());
    assert_eq!(event["eventId"], event_id.as_str());
    assert!(
        event["meetLink"]
            .as_str()
            .unwrap()
            .starts_with("https://meet.google.com/"),
        "{event}"
    );

    // What Google got: both attendees, a Meet conference request, invitations sent.
    let insert = rec
        .matching("POST", "/calendar/v3/calendars/primary/events")
        .pop()
        .unwrap();
    assert!(
        insert.query.contains("conferenceDataVersion=1")
            && insert.query.contains("sendUpdates=all"),
        "{}",
        insert.query
    );
    let body = insert.json();
    let attendees: Vec<&str> = body["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    assert_eq!(attendees, [mentor.email.as_str(), student.email.as_str()]);
    assert_eq!(
        body["conferenceData"]["createRequest"]["conferenceSolutionKey"]["type"],
        "hangoutsMeet"
    );
    assert_eq!(
        body["conferenceData"]["createRequest"]["requestId"],
        meeting.as_str()
    );
    // The access token was obtained once and reused.
    assert_eq!(rec.count("POST", "/token"), 1);

    // Moved: the event follows (rescheduling has no route yet; the service hook does it).
    // Whole seconds: PostgreSQL keeps microseconds, the comparison below exact times.
    let new_start =
        chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 48 * 3600, 0).unwrap();
    sqlx::query("update meetings set starts_at = $2, ends_at = $3 where id = $1")
        .bind(Uuid::parse_str(&meeting).unwrap())
        .bind(new_start)
        .bind(new_start + chrono::Duration::minutes(45))
        .execute(&app.state.db)
        .await
        .unwrap();
    mas_server::services::google::calendar::meeting_changed(
        &app.state,
        Uuid::parse_str(&meeting).unwrap(),
    )
    .await;
    wait_for("the event to move", Duration::from_secs(20), || async {
        let events = g.events.lock().unwrap();
        let start = events.get(&event_id)?["start"]["dateTime"]
            .as_str()?
            .to_string();
        (chrono::DateTime::parse_from_rfc3339(&start).ok()? == new_start.fixed_offset()
            || start == new_start.to_rfc3339())
        .then_some(())
    })
    .await;
    assert_eq!(
        rec.count("PATCH", "/calendar/v3/calendars/primary/events/"),
        1
    );

    // Cancelled: the event is deleted.
    let booking = booked["booking"]["id"].as_str().unwrap();
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/bookings/{booking}/cancel"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(s, 200);
    calendar_state(&app, &mentor.token, &meeting, |e| {
        e["status"] == "cancelled"
    })
    .await;
    assert!(g.events.lock().unwrap().is_empty());
    assert_eq!(
        rec.count("DELETE", "/calendar/v3/calendars/primary/events/"),
        1
    );

    // 5xx: retried (the fixed event id makes the insert safe to repeat), first by the
    // client policy, then by the queue; in the end exactly one event.
    g.insert_failures.store(4, Ordering::SeqCst);
    let booked = book(&app, &mentor, &student, 72).await;
    let meeting2 = booked["meeting"]["id"].as_str().unwrap().to_string();
    let event = calendar_state(&app, &student.token, &meeting2, |e| {
        e["status"] == "synced" && e["meetLink"].is_string()
    })
    .await;
    assert!(
        event["attempts"].as_i64().unwrap() >= 1,
        "the first job attempt failed: {event}"
    );
    assert_eq!(g.events.lock().unwrap().len(), 1);
    // One insert for the first meeting, four refused and one accepted for this one.
    assert!(rec.count("POST", "/calendar/v3/calendars/primary/events") >= 6);

    // Another user cannot see the event.
    let stranger = create_user(&app.state, Role::Student).await;
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/meetings/{meeting2}/calendar"),
            Some(&stranger.token),
            None,
        )
        .await;
    assert_eq!(s, 403);

    let text = logs.text();
    for secret in [CLIENT_SECRET, CALENDAR_REFRESH, ACCESS] {
        assert!(!text.contains(secret), "{secret} in the logs");
    }
    crate::support::queues::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn bookings_work_without_a_calendar(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let mentor = create_user(&app.state, Role::Mentor).await;
    let student = create_user(&app.state, Role::Student).await;
    let booked = book(&app, &mentor, &student, 24).await;
    let meeting = booked["meeting"]["id"].as_str().unwrap();
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/meetings/{meeting}/calendar"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(s, 404, "no event without the calendar integration");
}

#[sqlx::test(migrations = false)]
async fn mentors_connect_drive_with_the_refresh_token_encrypted(db: PgPool) {
    let logs = logs::capture();
    let (base, rec) = google(Google::default()).await;
    let env = google_env(&base);
    let app = TestApp::spawn_with(db, move |e| e.extend(env)).await;
    let mentor = create_user(&app.state, Role::Mentor).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap();

    let (s, body) = app
        .call(
            Method::GET,
            "/api/integrations/google-drive",
            Some(&mentor.token),
            None,
        )
        .await;
    assert_eq!((s, body["data"]["connected"].clone()), (200, json!(false)));

    // The consent URL asks for offline access to Drive.
    let res = browser
        .get(app.url("/api/integrations/google-drive/connect"))
        .bearer_auth(&mentor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let consent = url::Url::parse(body["data"]["authorizationUrl"].as_str().unwrap()).unwrap();
    let q: HashMap<String, String> = consent.query_pairs().into_owned().collect();
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert!(q["scope"].contains("drive.readonly"));
    let state = q["state"].clone();

    // Google sends the browser back with a code: wrong state, then a foreign browser, are refused.
    let (s, _) = crate::support::http::read(
        browser
            .get(app.url(&format!(
                "/api/integrations/google-drive/callback?code=drive-code&state=x{state}"
            )))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = crate::support::http::read(
        reqwest::get(app.url(&format!(
            "/api/integrations/google-drive/callback?code=drive-code&state={state}"
        )))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    let (s, body) = crate::support::http::read(
        browser
            .get(app.url(&format!(
                "/api/integrations/google-drive/callback?code=drive-code&state={state}"
            )))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"]["connected"], true);
    assert_eq!(body["data"]["googleEmail"], "mentor.drive@example.com");

    // At rest: ciphertext only.
    let stored: String = sqlx::query_scalar(
        "select refresh_token_enc from google_drive_connections where user_id = $1",
    )
    .bind(mentor.id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert!(
        stored.starts_with("v1:") && !stored.contains("mentor-drive"),
        "{stored}"
    );

    // The recordings come with an access token refreshed from the decrypted token.
    let (s, body) = app
        .call(
            Method::GET,
            "/api/integrations/google-drive/recordings",
            Some(&mentor.token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["data"][0]["webViewLink"],
        "https://drive.google.com/file/d/f1/view"
    );
    let refresh = rec
        .matching("POST", "/token")
        .into_iter()
        .map(|r| r.form())
        .find(|f| f.contains(&("grant_type".into(), "refresh_token".into())))
        .unwrap();
    assert!(refresh.contains(&("refresh_token".into(), DRIVE_REFRESH.into())));
    let files = rec
        .matching("GET", "/drive/v3/files")
        .pop()
        .unwrap()
        .query_pairs();
    assert!(
        files.contains(&(
            "q".into(),
            "mimeType = 'video/mp4' and trashed = false".into()
        )),
        "{files:?}"
    );

    // Copied onto another mentor's row, the ciphertext does not open (bound to its row).
    let other = create_user(&app.state, Role::Mentor).await;
    sqlx::query(
        "insert into google_drive_connections (user_id, refresh_token_enc) values ($1, $2)",
    )
    .bind(other.id)
    .bind(&stored)
    .execute(&app.state.db)
    .await
    .unwrap();
    let (s, _) = app
        .call(
            Method::GET,
            "/api/integrations/google-drive/recordings",
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!(s, 500);

    // Students have no Drive connection; disconnecting forgets the token.
    let student = create_user(&app.state, Role::Student).await;
    let (s, _) = app
        .call(
            Method::GET,
            "/api/integrations/google-drive/connect",
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, body) = app
        .call(
            Method::DELETE,
            "/api/integrations/google-drive",
            Some(&mentor.token),
            None,
        )
        .await;
    assert_eq!((s, body["data"]["connected"].clone()), (200, json!(false)));
    let (s, _) = app
        .call(
            Method::GET,
            "/api/integrations/google-drive/recordings",
            Some(&mentor.token),
            None,
        )
        .await;
    assert_eq!(s, 409);

    let text = logs.text();
    for secret in [CLIENT_SECRET, DRIVE_REFRESH, ENCRYPTION_KEY] {
        assert!(!text.contains(secret), "{secret} in the logs");
    }
}

#[sqlx::test(migrations = false)]
async fn drive_is_disabled_without_its_variables(db: PgPool) {
    let app = TestApp::spawn_with(db, |e| {
        e.insert("GOOGLE_CLIENT_ID".into(), "id".into());
        e.insert("GOOGLE_CLIENT_SECRET".into(), CLIENT_SECRET.into());
    })
    .await;
    let mentor = create_user(&app.state, Role::Mentor).await;
    let (s, body) = app
        .call(
            Method::GET,
            "/api/integrations/google-drive/connect",
            Some(&mentor.token),
            None,
        )
        .await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(
        body["error"]["message"],
        "google-drive is not configured: set GOOGLE_DRIVE_REDIRECT_URI, TOKEN_ENCRYPTION_KEY"
    );
}
