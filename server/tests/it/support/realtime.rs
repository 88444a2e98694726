//! The realtime area: server instances on their own Redis database with a unique
//! key/channel prefix per test, and a seeded meeting with its parties.

use std::collections::HashMap;

use mas_server::auth::Role;
use sqlx::PgPool;
use uuid::Uuid;

use super::app::TestApp;
use super::redis::redis_url_with_db;
use super::users::{TestUser, create_user};

/// Redis database reserved for the realtime tests (the instance is shared).
pub const REDIS_DB: u32 = 4;

pub fn unique_prefix(test: &str) -> String {
    format!(
        "test-rt-{test}-{}",
        &Uuid::new_v4().simple().to_string()[..8]
    )
}

pub fn realtime_env(prefix: &str, env: &mut HashMap<String, String>) {
    env.insert("REDIS_URL".into(), redis_url_with_db(REDIS_DB));
    env.insert("REALTIME_REDIS_PREFIX".into(), prefix.into());
    env.insert("PRESENCE_TTL_SECONDS".into(), "2".into());
}

/// Two replicas sharing the database, Redis and prefix.
pub async fn two_instances(db: PgPool, test: &str) -> (TestApp, TestApp, String) {
    two_instances_with(db, test, |_| {}).await
}

/// [`two_instances`], with `adjust` applied to both replicas' environment.
pub async fn two_instances_with(
    db: PgPool,
    test: &str,
    adjust: impl Fn(&mut HashMap<String, String>),
) -> (TestApp, TestApp, String) {
    let prefix = unique_prefix(test);
    // Each replica gets its own pool on the same database, as in production:
    // shutting one down closes its pool, which must not break the other.
    let db_b = sqlx::postgres::PgPoolOptions::new()
        .connect_with((*db.connect_options()).clone())
        .await
        .expect("second pool");
    let env = |env: &mut HashMap<String, String>| {
        realtime_env(&prefix, env);
        adjust(env);
    };
    let a = TestApp::spawn_with(db, env).await;
    let b = TestApp::spawn_with(db_b, env).await;
    (a, b, prefix)
}

/// A meeting between `mentor` and `student`, plus an `outsider` student and an admin.
pub struct MeetingFixture {
    pub meeting_id: Uuid,
    pub mentor: TestUser,
    pub student: TestUser,
    pub outsider: TestUser,
    pub admin: TestUser,
}

pub async fn meeting(app: &TestApp) -> MeetingFixture {
    let mentor = create_user(&app.state, Role::Mentor).await;
    let student = create_user(&app.state, Role::Student).await;
    let outsider = create_user(&app.state, Role::Student).await;
    let admin = create_user(&app.state, Role::Admin).await;
    let db = &app.state.db;
    let (slot, booking, meeting_id) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    sqlx::query("insert into mentor_slots (id, mentor_id, starts_at, ends_at, status) values ($1, $2, now(), now() + interval '1 hour', 'booked')")
        .bind(slot)
        .bind(mentor.id)
        .execute(db)
        .await
        .expect("slot");
    sqlx::query("insert into bookings (id, slot_id, student_id) values ($1, $2, $3)")
        .bind(booking)
        .bind(slot)
        .bind(student.id)
        .execute(db)
        .await
        .expect("booking");
    sqlx::query("insert into meetings (id, booking_id, mentor_id, student_id, starts_at, ends_at) values ($1, $2, $3, $4, now(), now() + interval '1 hour')")
        .bind(meeting_id)
        .bind(booking)
        .bind(mentor.id)
        .bind(student.id)
        .execute(db)
        .await
        .expect("meeting");
    MeetingFixture {
        meeting_id,
        mentor,
        student,
        outsider,
        admin,
    }
}
