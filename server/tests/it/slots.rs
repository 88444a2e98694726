//! Mentor slots, bookings and meetings over real HTTP, including the booking race.

use chrono::{Duration, Utc};
use mas_server::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::support::users::seeded_admin;
use crate::support::{TestApp, TestUser, create_user};

const MISSING: &str = "00000000-0000-0000-0000-000000000001";

/// A slot body starting `start_min` minutes from now and lasting `len_min` minutes.
fn slot_body(start_min: i64, len_min: i64) -> Value {
    let start = Utc::now() + Duration::minutes(start_min);
    json!({"startsAt": start, "endsAt": start + Duration::minutes(len_min)})
}

async fn create_slot(app: &TestApp, mentor: &TestUser, start_min: i64, len_min: i64) -> String {
    let (s, body) = app
        .call(
            Method::POST,
            "/api/slots",
            Some(&mentor.token),
            Some(slot_body(start_min, len_min)),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    body["data"]["id"].as_str().unwrap().to_string()
}

#[sqlx::test(migrations = false)]
async fn mentors_create_valid_non_overlapping_slots(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let mentor = create_user(&app.state, Role::Mentor).await;
    let other = create_user(&app.state, Role::Mentor).await;
    let student = create_user(&app.state, Role::Student).await;
    let m = Some(mentor.token.as_str());

    let (s, body) = app
        .call(Method::POST, "/api/slots", m, Some(slot_body(120, 60)))
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["data"]["status"], "open");
    assert_eq!(body["data"]["mentorId"], json!(mentor.id));

    for (bad, why) in [
        (slot_body(-30, 60), "in the past"),
        (slot_body(600, 0), "zero length"),
        (slot_body(600, -30), "end before start"),
        (slot_body(600, 5), "too short"),
        (slot_body(600, 241), "too long"),
        (json!({"startsAt": "tomorrow"}), "malformed"),
    ] {
        let (s, body) = app.call(Method::POST, "/api/slots", m, Some(bad)).await;
        assert_eq!(s, 400, "{why}: {body}");
    }

    // Overlaps with the mentor's own slot conflict; touching ranges and other mentors don't.
    for (start, len) in [(150, 60), (90, 60), (100, 120), (130, 15)] {
        let (s, body) = app
            .call(Method::POST, "/api/slots", m, Some(slot_body(start, len)))
            .await;
        assert_eq!(
            (s, body["error"]["code"].clone()),
            (409, json!("CONFLICT")),
            "{start}+{len}"
        );
    }
    create_slot(&app, &other, 120, 60).await;
    let (_, first) = app.call(Method::GET, "/api/slots/mine", m, None).await;
    let end = first["data"]["items"][0]["endsAt"].clone();
    let (s, body) = app
        .call(
            Method::POST,
            "/api/slots",
            m,
            Some(json!({"startsAt": end, "endsAt": Utc::now() + Duration::minutes(240)})),
        )
        .await;
    assert_eq!(s, 201, "back-to-back slot: {body}");

    // Roles.
    let (s, _) = app
        .call(
            Method::POST,
            "/api/slots",
            Some(&student.token),
            Some(slot_body(900, 30)),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .call(Method::POST, "/api/slots", None, Some(slot_body(900, 30)))
        .await;
    assert_eq!(s, 401);
    let (s, _) = app
        .call(Method::GET, "/api/slots/mine", Some(&student.token), None)
        .await;
    assert_eq!(s, 403);

    let (s, body) = app.call(Method::GET, "/api/slots/mine", m, None).await;
    assert_eq!((s, body["data"]["total"].clone()), (200, json!(2)));
    let items = body["data"]["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["mentorId"] == json!(mentor.id)));
}

#[sqlx::test(migrations = false)]
async fn students_filter_open_slots(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let a = create_user(&app.state, Role::Mentor).await;
    let b = create_user(&app.state, Role::Mentor).await;
    let student = create_user(&app.state, Role::Student).await;
    let soon = create_slot(&app, &a, 60, 30).await;
    let later = create_slot(&app, &a, 60 * 48, 30).await;
    let other = create_slot(&app, &b, 90, 30).await;
    let t = Some(student.token.as_str());

    let ids = |body: &Value| -> Vec<String> {
        body["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, body) = app.call(Method::GET, "/api/slots", t, None).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&body), vec![soon.clone(), other.clone(), later.clone()]);

    let (_, body) = app
        .call(
            Method::GET,
            &format!("/api/slots?mentorId={}", a.id),
            t,
            None,
        )
        .await;
    assert_eq!(ids(&body), vec![soon.clone(), later.clone()]);

    let to = (Utc::now() + Duration::hours(24)).to_rfc3339();
    let url =
        reqwest::Url::parse_with_params(&app.url("/api/slots"), &[("to", to.as_str())]).unwrap();
    let (_, body) = app
        .call(Method::GET, &url.as_str()[app.base.len()..], t, None)
        .await;
    assert_eq!(ids(&body), vec![soon.clone(), other.clone()]);

    let from = (Utc::now() + Duration::hours(24)).to_rfc3339();
    let url = reqwest::Url::parse_with_params(
        &app.url("/api/slots"),
        &[("from", from.as_str()), ("mentorId", &a.id.to_string())],
    )
    .unwrap();
    let (_, body) = app
        .call(Method::GET, &url.as_str()[app.base.len()..], t, None)
        .await;
    assert_eq!(ids(&body), vec![later.clone()]);

    let url = reqwest::Url::parse_with_params(
        &app.url("/api/slots"),
        &[("from", from.as_str()), ("to", to.as_str())],
    )
    .unwrap();
    let (s, _) = app
        .call(Method::GET, &url.as_str()[app.base.len()..], t, None)
        .await;
    assert_eq!(s, 400, "to must be after from");
    let (s, _) = app
        .call(Method::GET, "/api/slots?mentorId=nope", t, None)
        .await;
    assert_eq!(s, 400);
    let (s, _) = app.call(Method::GET, "/api/slots", None, None).await;
    assert_eq!(s, 401);

    // A booked slot is no longer listed.
    let (s, _) = app
        .call(Method::POST, &format!("/api/slots/{soon}/book"), t, None)
        .await;
    assert_eq!(s, 201);
    let (_, body) = app.call(Method::GET, "/api/slots", t, None).await;
    assert_eq!(ids(&body), vec![other, later]);
}

#[sqlx::test(migrations = false)]
async fn booking_schedules_a_meeting_and_cancelling_frees_the_slot(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let mentor = create_user(&app.state, Role::Mentor).await;
    let student = create_user(&app.state, Role::Student).await;
    let rival = create_user(&app.state, Role::Student).await;
    let outsider = create_user(&app.state, Role::Student).await;
    let admin = seeded_admin(&app.state).await;
    let slot = create_slot(&app, &mentor, 60, 45).await;
    let t = Some(student.token.as_str());

    // Roles and unknown slots.
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/slots/{slot}/book"),
            Some(&mentor.token),
            None,
        )
        .await;
    assert_eq!(s, 403, "mentors cannot book");
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/slots/{slot}/book"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, 403, "admins cannot book");
    let (s, _) = app
        .call(Method::POST, &format!("/api/slots/{MISSING}/book"), t, None)
        .await;
    assert_eq!(s, 404);

    let (s, body) = app
        .call(Method::POST, &format!("/api/slots/{slot}/book"), t, None)
        .await;
    assert_eq!(s, 201, "{body}");
    let booking_id = body["data"]["booking"]["id"].as_str().unwrap().to_string();
    let meeting_id = body["data"]["meeting"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["data"]["booking"]["status"], "confirmed");
    assert_eq!(body["data"]["meeting"]["mentorId"], json!(mentor.id));
    assert_eq!(body["data"]["meeting"]["studentId"], json!(student.id));
    assert_eq!(body["data"]["meeting"]["status"], "scheduled");

    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/slots/{slot}/book"),
            Some(&rival.token),
            None,
        )
        .await;
    assert_eq!(s, 409, "already booked");
    let (s, _) = app
        .call(Method::POST, &format!("/api/slots/{slot}/book"), t, None)
        .await;
    assert_eq!(s, 409, "booking twice is a conflict too");

    // The meeting: participants and admins only.
    for who in [&student, &mentor, &admin] {
        let (s, body) = app
            .call(
                Method::GET,
                &format!("/api/meetings/{meeting_id}"),
                Some(&who.token),
                None,
            )
            .await;
        assert_eq!(
            (s, body["data"]["bookingId"].clone()),
            (200, json!(booking_id))
        );
    }
    let (s, body) = app
        .call(
            Method::GET,
            &format!("/api/meetings/{meeting_id}"),
            Some(&outsider.token),
            None,
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (403, json!("FORBIDDEN"))
    );
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/meetings/{meeting_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = app
        .call(Method::GET, &format!("/api/meetings/{MISSING}"), t, None)
        .await;
    assert_eq!(s, 404);

    // "My meetings" for each side.
    for who in [&student, &mentor] {
        let (s, body) = app
            .call(Method::GET, "/api/meetings", Some(&who.token), None)
            .await;
        assert_eq!((s, body["data"]["total"].clone()), (200, json!(1)));
        assert_eq!(body["data"]["items"][0]["id"], json!(meeting_id));
    }
    let (_, body) = app
        .call(Method::GET, "/api/meetings", Some(&outsider.token), None)
        .await;
    assert_eq!(body["data"]["total"], 0);

    // Cancelling: outsiders can't, the student can, only once.
    let cancel = format!("/api/bookings/{booking_id}/cancel");
    let (s, _) = app
        .call(Method::POST, &cancel, Some(&outsider.token), None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/bookings/{MISSING}/cancel"),
            t,
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, body) = app.call(Method::POST, &cancel, t, None).await;
    assert_eq!(
        (s, body["data"]["status"].clone()),
        (200, json!("cancelled"))
    );
    let (s, _) = app.call(Method::POST, &cancel, t, None).await;
    assert_eq!(s, 409);
    let (_, body) = app
        .call(Method::GET, &format!("/api/meetings/{meeting_id}"), t, None)
        .await;
    assert_eq!(body["data"]["status"], "cancelled");

    // The slot is open again and another student can take it; the mentor may cancel that.
    let (_, body) = app
        .call(Method::GET, "/api/slots", Some(&rival.token), None)
        .await;
    assert_eq!(body["data"]["items"][0]["id"], json!(slot));
    let (s, body) = app
        .call(
            Method::POST,
            &format!("/api/slots/{slot}/book"),
            Some(&rival.token),
            None,
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let second = body["data"]["booking"]["id"].as_str().unwrap().to_string();
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/bookings/{second}/cancel"),
            Some(&mentor.token),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let status: String = sqlx::query_scalar("select status from mentor_slots where id = $1")
        .bind(Uuid::parse_str(&slot).unwrap())
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(status, "open");
}

#[sqlx::test(migrations = false)]
async fn twenty_students_race_for_one_slot(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let mentor = create_user(&app.state, Role::Mentor).await;
    let slot = create_slot(&app, &mentor, 60, 30).await;
    let mut students = Vec::new();
    for _ in 0..20 {
        students.push(create_user(&app.state, Role::Student).await);
    }

    // Every request is built first and released together so they truly overlap.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(students.len()));
    let mut race = JoinSet::new();
    for student in students {
        let client = app.client.clone();
        let url = app.url(&format!("/api/slots/{slot}/book"));
        let start = start.clone();
        race.spawn(async move {
            start.wait().await;
            let res = client
                .post(url)
                .bearer_auth(&student.token)
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = race.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses.sort_unstable();
    let created = statuses.iter().filter(|s| **s == 201).count();
    let conflicts = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((created, conflicts), (1, 19), "statuses: {statuses:?}");

    let slot_id = Uuid::parse_str(&slot).unwrap();
    let bookings: i64 = sqlx::query_scalar("select count(*) from bookings where slot_id = $1")
        .bind(slot_id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    let meetings: i64 = sqlx::query_scalar(
        "select count(*) from meetings m join bookings b on b.id = m.booking_id where b.slot_id = $1",
    )
    .bind(slot_id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!((bookings, meetings), (1, 1));
}

#[sqlx::test(migrations = false)]
async fn the_database_refuses_a_second_confirmed_booking(db: PgPool) {
    // The backstop behind the transactional check: even a writer that skips the
    // service cannot confirm two bookings for one slot.
    let app = TestApp::spawn(db).await;
    let mentor = create_user(&app.state, Role::Mentor).await;
    let a = create_user(&app.state, Role::Student).await;
    let b = create_user(&app.state, Role::Student).await;
    let slot = Uuid::parse_str(&create_slot(&app, &mentor, 60, 30).await).unwrap();
    let insert = "insert into bookings (id, slot_id, student_id) values ($1, $2, $3)";
    sqlx::query(insert)
        .bind(Uuid::new_v4())
        .bind(slot)
        .bind(a.id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let second = sqlx::query(insert)
        .bind(Uuid::new_v4())
        .bind(slot)
        .bind(b.id)
        .execute(&app.state.db)
        .await;
    assert!(second.is_err(), "a second confirmed booking was accepted");
}

#[sqlx::test(migrations = false)]
async fn expire_past_slots_marks_only_open_past_slots(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let mentor = create_user(&app.state, Role::Mentor).await;
    let student = create_user(&app.state, Role::Student).await;
    let future = create_slot(&app, &mentor, 60, 30).await;
    let booked = create_slot(&app, &mentor, 120, 30).await;
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/slots/{booked}/book"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(s, 201);
    // Past slots can't be created through the API; write them directly.
    let insert = "insert into mentor_slots (id, mentor_id, starts_at, ends_at, status) \
                  values ($1, $2, now() - $3::interval, now() - $3::interval + interval '30 minutes', $4)";
    let mut past_open = Vec::new();
    for (ago, status) in [
        ("2 hours", "open"),
        ("1 day", "open"),
        ("5 hours", "cancelled"),
        ("10 minutes", "open"),
    ] {
        let id = Uuid::new_v4();
        sqlx::query(insert)
            .bind(id)
            .bind(mentor.id)
            .bind(ago)
            .bind(status)
            .execute(&app.state.db)
            .await
            .unwrap();
        if status == "open" {
            past_open.push(id);
        }
    }

    let expired = mas_server::services::slots::expire_past_slots(&app.state.db)
        .await
        .unwrap();
    assert_eq!(expired, 3);
    let rows: Vec<(Uuid, String)> = sqlx::query_as("select id, status from mentor_slots")
        .fetch_all(&app.state.db)
        .await
        .unwrap();
    for (id, status) in rows {
        let expected = if past_open.contains(&id) {
            "expired"
        } else if id.to_string() == future {
            "open"
        } else if id.to_string() == booked {
            "booked"
        } else {
            "cancelled"
        };
        assert_eq!(status, expected, "slot {id}");
    }
    assert_eq!(
        mas_server::services::slots::expire_past_slots(&app.state.db)
            .await
            .unwrap(),
        0
    );
    // An expired slot cannot be booked.
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/slots/{}/book", past_open[0]),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(s, 409);
}
