//! Worker layer end to end against real Redis (DB 3, unique prefix) and Postgres:
//! KPI and cleanup jobs, idempotent schedules, retries with exponential backoff.

use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use mas_server::auth::Role;
use mas_server::queues::QueueName;
use mas_server::queues::schedules::{CLEANUP_SCHEDULER, KPI_SCHEDULER};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::app::free_port;
use crate::support::queues as qs;
use crate::support::users::seeded_admin;
use crate::support::wait::wait_for;
use crate::support::{TestApp, create_user};

#[sqlx::test(migrations = false)]
async fn kpi_job_stores_snapshot_served_to_admins_only(db: PgPool) {
    let (app, prefix) = qs::spawn(db, |_| {}).await;
    let state = app.state.clone();
    let student_token = create_user(&state, Role::Student).await.token;
    create_user(&state, Role::Student).await;
    create_user(&state, Role::Mentor).await;

    // Before any snapshot the endpoint says so. (The scheduler's first run may race us,
    // so clear snapshots it could have written.)
    sqlx::query("delete from kpi_snapshots")
        .execute(&state.db)
        .await
        .unwrap();
    let admin = seeded_admin(&state).await.token;

    state
        .queues
        .add(QueueName::Kpi, "compute-kpis", json!({}), None)
        .await
        .unwrap();
    let db = state.db.clone();
    wait_for("a KPI snapshot with 2 students", Duration::from_secs(20), || {
        let db = db.clone();
        async move {
            let n: Option<(i64,)> = sqlx::query_as(
                "select count(*) from kpi_snapshots where (data->'usersByRole'->>'student')::int = 2",
            )
            .fetch_optional(&db)
            .await
            .ok()?;
            n.filter(|(n,)| *n > 0)
        }
    })
    .await;

    let res = app
        .client
        .get(app.url("/api/admin/kpis"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let kpis = &body["data"]["kpis"];
    assert_eq!(kpis["usersByRole"]["student"], 2, "{body}");
    assert_eq!(kpis["usersByRole"]["mentor"], 1);
    assert_eq!(kpis["usersByRole"]["admin"], 1);
    assert_eq!(kpis["usersByRole"]["superadmin"], 1);
    assert_eq!(kpis["totalUsers"], 5);
    assert_eq!(kpis["bookingsTotal"], 0);

    let res = app
        .client
        .get(app.url("/api/admin/kpis"))
        .bearer_auth(&student_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .client
        .get(app.url("/api/admin/kpis"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn cleanup_job_expires_slots_and_deletes_dead_credentials(db: PgPool) {
    let (app, prefix) = qs::spawn(db, |_| {}).await;
    let state = app.state.clone();
    // The scheduler's first iteration runs at boot; let it pass before adding data.
    let q = qs::queue(&prefix, "cleanupQueue").await;
    wait_for("boot cleanup iteration", Duration::from_secs(20), || {
        let q = &q;
        async move { (q.get_completed_count().await.ok()? >= 1).then_some(()) }
    })
    .await;
    let mentor = create_user(&state, Role::Mentor).await.id;
    let student = create_user(&state, Role::Student).await.id;
    let now = Utc::now();
    let slot = |starts: chrono::DateTime<Utc>, status: &'static str| {
        let db = state.db.clone();
        async move {
            let id = Uuid::new_v4();
            sqlx::query("insert into mentor_slots (id, mentor_id, starts_at, ends_at, status) values ($1, $2, $3, $4, $5)")
                .bind(id).bind(mentor).bind(starts).bind(starts + ChronoDuration::minutes(30)).bind(status)
                .execute(&db).await.unwrap();
            id
        }
    };
    let past_open = slot(now - ChronoDuration::hours(2), "open").await;
    let past_booked = slot(now - ChronoDuration::hours(3), "booked").await;
    let future_open = slot(now + ChronoDuration::hours(2), "open").await;

    for expires in [
        now - ChronoDuration::minutes(1),
        now + ChronoDuration::minutes(10),
    ] {
        sqlx::query("insert into email_otps (id, user_id, purpose, code_hash, expires_at) values ($1, $2, 'verify_email', 'h', $3)")
            .bind(Uuid::new_v4()).bind(student).bind(expires).execute(&state.db).await.unwrap();
    }
    for (expires, revoked) in [
        (now + ChronoDuration::days(1), Some(now)),
        (now - ChronoDuration::days(1), None),
        (now + ChronoDuration::days(1), None),
    ] {
        let id = Uuid::new_v4();
        sqlx::query("insert into refresh_tokens (id, user_id, token_hash, expires_at, revoked_at, family_id) values ($1, $2, $3, $4, $5, $1)")
            .bind(id).bind(student).bind(Uuid::new_v4().to_string()).bind(expires).bind(revoked)
            .execute(&state.db).await.unwrap();
    }

    for age_days in [100, 1] {
        sqlx::query("insert into kpi_snapshots (id, computed_at, data) values ($1, now() - make_interval(days => $2), '{}')")
            .bind(Uuid::new_v4())
            .bind(age_days)
            .execute(&state.db)
            .await
            .unwrap();
    }
    let job_id = state
        .queues
        .add(QueueName::Cleanup, "cleanup", json!({}), None)
        .await
        .unwrap();
    let job = wait_for("cleanup job completed", Duration::from_secs(20), || {
        let q = &q;
        let job_id = job_id.clone();
        async move {
            let job = q.get_job(&job_id).await.ok()??;
            (job.finished_on().is_some() && job.failed_reason().is_empty()).then_some(job)
        }
    })
    .await;
    let report: Value = serde_json::from_str(job.returnvalue()).unwrap();
    assert_eq!(
        report,
        json!({"expiredSlots": 1, "deletedOtps": 1, "deletedRefreshTokens": 1, "deletedKpiSnapshots": 1,
               "expiredUploads": 0})
    );

    let status = |id: Uuid| {
        let db = state.db.clone();
        async move {
            let (s,): (String,) = sqlx::query_as("select status from mentor_slots where id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap();
            s
        }
    };
    assert_eq!(status(past_open).await, "expired");
    assert_eq!(status(past_booked).await, "booked");
    assert_eq!(status(future_open).await, "open");
    let (otps,): (i64,) = sqlx::query_as("select count(*) from email_otps")
        .fetch_one(&state.db)
        .await
        .unwrap();
    let (tokens,): (i64,) = sqlx::query_as("select count(*) from refresh_tokens")
        .fetch_one(&state.db)
        .await
        .unwrap();
    // The revoked-but-unexpired token is kept for reuse detection; the expired one goes.
    assert_eq!((otps, tokens), (1, 2));

    app.shutdown().await.unwrap();
    q.close().await;
    qs::purge(&prefix).await;
}

/// Two processes (two worker sets) booting on the same Redis create each schedule once.
#[sqlx::test(migrations = false)]
async fn schedules_are_created_once_across_two_worker_sets(db: PgPool) {
    let prefix = qs::unique_prefix();
    let p = prefix.clone();
    let first = TestApp::spawn_with(db.clone(), |env| qs::queue_env(env, &p)).await;
    let p = prefix.clone();
    let second = TestApp::spawn_with(db, |env| qs::queue_env(env, &p)).await;

    for (queue, id, every) in [
        ("cleanupQueue", CLEANUP_SCHEDULER, 86_400_000u64),
        ("kpiQueue", KPI_SCHEDULER, 900_000),
    ] {
        let q = qs::queue(&prefix, queue).await;
        let schedulers = q.get_job_schedulers(0, -1, true).await.unwrap();
        assert_eq!(schedulers.len(), 1, "{queue}: {schedulers:?}");
        assert_eq!(schedulers[0].key, id);
        assert_eq!(schedulers[0].every, Some(every));
        // Once the boot run is done: exactly one run happened and one iteration is
        // pending — not one per replica.
        let counts = wait_for("boot run finished", Duration::from_secs(20), || {
            let q = &q;
            async move {
                let c = q.get_job_counts().await.ok()?;
                (c.active + c.waiting == 0 && c.completed >= 1).then_some(c)
            }
        })
        .await;
        assert_eq!(
            (counts.completed, counts.delayed, counts.failed),
            (1, 1, 0),
            "{queue}: {counts:?}"
        );
        q.close().await;
    }

    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

/// A job that keeps failing is retried with exponential backoff (200 ms, 400 ms)
/// and then kept in `failed` with the reason.
#[sqlx::test(migrations = false)]
async fn failing_jobs_retry_with_exponential_backoff_then_fail_with_reason(db: PgPool) {
    let port = free_port();
    let (app, prefix) = qs::spawn(db, |env| {
        env.insert("SMTP_HOST".into(), "127.0.0.1".into());
        env.insert("SMTP_PORT".into(), port.to_string());
        env.insert("SMTP_TLS".into(), "none".into());
    })
    .await;
    let job_id = app
        .state
        .queues
        .add(
            QueueName::Email,
            "otp_verification",
            json!({"to": "nobody@test.local", "template": "otp_verification", "payload": {"code": "111222"}}),
            None,
        )
        .await
        .unwrap();
    let q = qs::queue(&prefix, "emailQueue").await;
    let job = wait_for("email job failed for good", Duration::from_secs(30), || {
        let q = &q;
        let job_id = job_id.clone();
        async move {
            // State first: a job read before the final failure would show fewer attempts.
            (q.get_job_state(&job_id).await.ok()?.as_str() == "failed").then_some(())?;
            q.get_job(&job_id).await.ok()?
        }
    })
    .await;
    assert_eq!(job.attempts_made(), 3);
    assert!(
        job.failed_reason().contains("SMTP delivery failed"),
        "{}",
        job.failed_reason()
    );
    let elapsed = job.finished_on().unwrap() - job.timestamp();
    assert!(
        elapsed >= 600,
        "backoff 200 + 400 ms expected, took {elapsed} ms"
    );
    let failed = q.get_failed(0, -1).await.unwrap();
    assert_eq!(failed.len(), 1);

    app.shutdown().await.unwrap();
    q.close().await;
    qs::purge(&prefix).await;
}

/// PROCESS_ROLE=api enqueues but processes nothing; PROCESS_ROLE=workers processes
/// but serves only the health probes.
#[sqlx::test(migrations = false)]
async fn process_role_decides_what_runs(db: PgPool) {
    let prefix = qs::unique_prefix();
    let p = prefix.clone();
    let api = TestApp::spawn_with(db.clone(), |env| {
        qs::queue_env(env, &p);
        env.insert("PROCESS_ROLE".into(), "api".into());
    })
    .await;
    let job_id = api
        .state
        .queues
        .add(QueueName::Kpi, "compute-kpis", json!({}), None)
        .await
        .unwrap();
    let q = qs::queue(&prefix, "kpiQueue").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(q.get_job_state(&job_id).await.unwrap().as_str(), "wait");
    assert_eq!(
        q.get_job_schedulers_count().await.unwrap(),
        0,
        "api role creates no schedules"
    );
    let admin = seeded_admin(&api.state).await.token;
    let res = api
        .client
        .get(api.url("/api/admin/kpis"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "no snapshot yet");

    let p = prefix.clone();
    let workers = TestApp::spawn_with(db, |env| {
        qs::queue_env(env, &p);
        env.insert("PROCESS_ROLE".into(), "workers".into());
    })
    .await;
    wait_for(
        "the workers process to run the job",
        Duration::from_secs(20),
        || async { (q.get_job_state(&job_id).await.ok()?.as_str() == "completed").then_some(()) },
    )
    .await;
    assert_eq!(
        workers
            .client
            .get(workers.url("/api/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = workers
        .client
        .get(workers.url("/api/admin/kpis"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "workers role serves no API routes");
    // The API process serves the snapshot the workers process computed.
    let res = api
        .client
        .get(api.url("/api/admin/kpis"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // The OpenAPI document describes the queue routes.
    let doc: Value = api
        .client
        .get(api.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/admin/kpis",
        "/api/resumes/analysis",
        "/api/resumes/analysis/{id}",
        "/api/admin/batches/{id}/import",
        "/api/admin/batches/{id}/import/{import_id}",
        "/api/admin/queues",
        "/api/admin/queues/{queue}/jobs",
        "/api/admin/queues/{queue}/retry",
        "/api/admin/queues/{queue}/jobs/{job_id}/retry",
        "/api/admin/queues/{queue}/clean",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }

    q.close().await;
    api.shutdown().await.unwrap();
    workers.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
