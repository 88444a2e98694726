//! Email worker end to end: outbox rows → relay → emailQueue → SMTP (the real
//! aiosmtpd sink, Maildir at $MAS_MAIL_DIR), and the failure paths.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::app::free_port;
use crate::support::queues as qs;
use crate::support::redis::redis_url_with_db;
use crate::support::services::{self, mail_dir};
use crate::support::wait::wait_for;

fn smtp_env(env: &mut std::collections::HashMap<String, String>) {
    services::smtp_env(env);
    env.insert("SMTP_FROM".into(), "MAS <no-reply@test.local>".into());
}

/// The delivered message addressed to `to`, as raw text.
fn find_mail(to: &str) -> Option<String> {
    let dir = mail_dir().join("new");
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let text = std::fs::read_to_string(entry.path()).ok()?;
        text.lines()
            .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(to))
            .then_some(text)
    })
}

fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    mail.lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim())
}

async fn insert_outbox(db: &PgPool, to: &str, template: &str, payload: serde_json::Value) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into email_outbox (id, to_email, template, payload) values ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(to)
    .bind(template)
    .bind(payload)
    .execute(db)
    .await
    .unwrap();
    id
}

type OutboxState = (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<String>,
    i32,
);

async fn outbox(db: &PgPool, id: Uuid) -> OutboxState {
    sqlx::query_as(
        "select sent_at, failed_at, last_error, attempts from email_outbox where id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await
    .unwrap()
}

async fn stored_payload(db: &PgPool, id: Uuid) -> serde_json::Value {
    sqlx::query_scalar("select payload from email_outbox where id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

/// Every field of the job's Redis hash (data, return value, reasons) is free of `code`.
async fn assert_no_code_in_job(prefix: &str, job_id: &str, code: &str) {
    let client = redis::Client::open(redis_url_with_db(qs::REDIS_DB)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let hash: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{prefix}:emailQueue:{job_id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(hash.contains_key("data"), "job hash exists: {hash:?}");
    for (field, value) in &hash {
        assert!(!value.contains(code), "code in job field {field}: {value}");
    }
}

#[sqlx::test(migrations = false)]
async fn otp_from_registration_is_scrubbed_after_delivery(db: PgPool) {
    mail_dir();
    let (app, prefix) = qs::spawn(db, smtp_env).await;
    let to = format!(
        "reg-{}@test.local",
        &Uuid::new_v4().simple().to_string()[..10]
    );
    let res = app
        .client
        .post(app.url("/api/auth/register"))
        .json(&json!({"name": "Ravi", "email": to, "password": "correct-horse-9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id: Uuid = sqlx::query_scalar("select id from email_outbox where to_email = $1")
        .bind(&to)
        .fetch_one(&app.state.db)
        .await
        .unwrap();

    let mail = wait_for("mail in the Maildir", Duration::from_secs(20), || {
        let to = to.clone();
        async move { find_mail(&to) }
    })
    .await;
    let marker = "Your verification code is: ";
    let at = mail.find(marker).expect("text part with the code") + marker.len();
    let code = mail[at..at + 6].to_string();
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{code}");

    let db = app.state.db.clone();
    let row = wait_for("outbox row sent", Duration::from_secs(10), || {
        let db = db.clone();
        async move { Some(outbox(&db, id).await).filter(|r| r.0.is_some()) }
    })
    .await;
    assert_eq!(row.3, 1);
    let payload = stored_payload(&app.state.db, id).await;
    assert!(payload.get("otp").is_none(), "{payload}");
    assert!(!payload.to_string().contains(&code), "{payload}");
    assert_eq!(payload["name"], "Ravi", "non-secret fields are kept");
    assert_no_code_in_job(&prefix, &format!("outbox-{id}"), &code).await;

    // The code still works: it is verified against its hash, not the outbox.
    let res = app
        .client
        .post(app.url("/api/auth/verify-email"))
        .json(&json!({"email": to, "otp": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

/// Jobs added with their payload (as the Node producers do) lose the code once delivered.
#[sqlx::test(migrations = false)]
async fn direct_email_job_keeps_no_code_after_delivery(db: PgPool) {
    mail_dir();
    let (app, prefix) = qs::spawn(db, smtp_env).await;
    let to = format!(
        "direct-{}@test.local",
        &Uuid::new_v4().simple().to_string()[..10]
    );
    let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
    let q = qs::queue(&prefix, "emailQueue").await;
    let job_id = format!("direct-{}", Uuid::new_v4().simple());
    app.state
        .queues
        .add(
            mas_server::queues::QueueName::Email,
            "otp_verification",
            json!({"to": to, "template": "otp_verification", "payload": {"code": code, "name": "Noor"}}),
            Some(job_id.clone()),
        )
        .await
        .unwrap();
    let mail = wait_for("mail in the Maildir", Duration::from_secs(20), || {
        let to = to.clone();
        async move { find_mail(&to) }
    })
    .await;
    assert!(mail.contains(&code));
    wait_for("job completed", Duration::from_secs(10), || {
        let (q, job_id) = (&q, job_id.clone());
        async move {
            let state = q.get_job_state(&job_id).await.ok()?;
            (state.as_str() == "completed").then_some(())
        }
    })
    .await;
    assert_no_code_in_job(&prefix, &job_id, &code).await;
    let data = q.get_job(&job_id).await.unwrap().unwrap().data().clone();
    assert_eq!(data["payload"], json!({"name": "Noor"}), "{data}");
    assert_eq!(data["to"], to.as_str());

    app.shutdown().await.unwrap();
    q.close().await;
    qs::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn outbox_otp_row_is_delivered_to_the_smtp_sink(db: PgPool) {
    mail_dir();
    let (app, prefix) = qs::spawn(db, smtp_env).await;
    let state = app.state.clone();
    let to = format!(
        "otp-{}@test.local",
        &Uuid::new_v4().simple().to_string()[..10]
    );
    let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
    let id = insert_outbox(
        &state.db,
        &to,
        "verify_email",
        json!({"code": code, "name": "Asha"}),
    )
    .await;

    let db = state.db.clone();
    let row = wait_for("outbox row sent", Duration::from_secs(20), || {
        let db = db.clone();
        async move { Some(outbox(&db, id).await).filter(|r| r.0.is_some() || r.1.is_some()) }
    })
    .await;
    assert!(row.0.is_some(), "not sent: {row:?}");
    assert_eq!((row.2, row.3), (None, 1));

    let mail = wait_for("mail in the Maildir", Duration::from_secs(10), || {
        let to = to.clone();
        async move { find_mail(&to) }
    })
    .await;
    assert_eq!(header(&mail, "Subject"), Some("Your MAS verification code"));
    assert!(header(&mail, "To").unwrap().contains(&to));
    assert!(
        header(&mail, "From")
            .unwrap()
            .contains("no-reply@test.local")
    );
    // The OTP is readable in the text part (and present in the HTML part).
    let marker = "Your verification code is: ";
    let at = mail.find(marker).expect("text part with the code") + marker.len();
    assert_eq!(&mail[at..at + 6], code);
    assert!(
        mail.contains("text/html"),
        "multipart alternative with HTML"
    );
    assert_eq!(
        mail.matches(code.as_str()).count(),
        2,
        "code in text and HTML parts"
    );

    let q = qs::queue(&prefix, "emailQueue").await;
    let job_id = format!("outbox-{id}");
    assert_eq!(
        q.get_job_state(&job_id).await.unwrap().as_str(),
        "completed"
    );
    // The code is gone from the sent row (the rest is kept) and never was in Redis.
    let payload = stored_payload(&state.db, id).await;
    assert_eq!(payload, json!({"name": "Asha"}));
    assert_no_code_in_job(&prefix, &job_id, &code).await;

    app.shutdown().await.unwrap();
    q.close().await;
    qs::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn unset_smtp_fails_the_job_with_a_clear_reason(db: PgPool) {
    let (app, prefix) = qs::spawn(db, |_| {}).await;
    let id = insert_outbox(
        &app.state.db,
        "x@test.local",
        "password_reset",
        json!({"code": "424242"}),
    )
    .await;
    let db = app.state.db.clone();
    let row = wait_for("outbox row failed", Duration::from_secs(20), || {
        let db = db.clone();
        async move { Some(outbox(&db, id).await).filter(|r| r.1.is_some()) }
    })
    .await;
    assert!(row.0.is_none());
    assert!(
        row.2
            .as_deref()
            .unwrap()
            .contains("SMTP is not configured: set SMTP_HOST"),
        "{row:?}"
    );
    assert_eq!(row.3, 1, "missing configuration is not retried");
    assert_eq!(
        stored_payload(&app.state.db, id).await,
        json!({}),
        "the code is scrubbed from a row that failed for good"
    );

    let q = qs::queue(&prefix, "emailQueue").await;
    let job = q.get_job(&format!("outbox-{id}")).await.unwrap().unwrap();
    assert!(
        job.failed_reason().contains("SMTP is not configured"),
        "{}",
        job.failed_reason()
    );
    assert_eq!(q.get_failed_count().await.unwrap(), 1);

    app.shutdown().await.unwrap();
    q.close().await;
    qs::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn unreachable_smtp_is_retried_then_recorded_as_failed(db: PgPool) {
    let port = free_port();
    let (app, prefix) = qs::spawn(db, |env| {
        env.insert("SMTP_HOST".into(), "127.0.0.1".into());
        env.insert("SMTP_PORT".into(), port.to_string());
        env.insert("SMTP_TLS".into(), "none".into());
    })
    .await;
    let id = insert_outbox(
        &app.state.db,
        "y@test.local",
        "meeting_notification",
        json!({"startsAt": "2026-12-01 10:00 UTC", "withName": "M"}),
    )
    .await;
    let db = app.state.db.clone();
    let row = wait_for(
        "outbox row failed after retries",
        Duration::from_secs(30),
        || {
            let db = db.clone();
            async move { Some(outbox(&db, id).await).filter(|r| r.1.is_some()) }
        },
    )
    .await;
    assert_eq!(row.3, 3, "three attempts: {row:?}");
    assert!(
        row.2
            .as_deref()
            .unwrap()
            .starts_with("SMTP delivery failed"),
        "{row:?}"
    );

    // The server is still healthy after the failures.
    let res = app.client.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);

    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

/// Credentials the sink cannot accept: the job fails with the server's reason and is retried.
#[sqlx::test(migrations = false)]
async fn rejected_smtp_credentials_fail_visibly(db: PgPool) {
    let (app, prefix) = qs::spawn(db, |env| {
        smtp_env(env);
        env.insert("SMTP_USER".into(), "mailer".into());
        env.insert("SMTP_PASSWORD".into(), "wrong-password-123".into());
        env.insert("QUEUE_JOB_ATTEMPTS".into(), "2".into());
    })
    .await;
    let id = insert_outbox(
        &app.state.db,
        "z@test.local",
        "verify_email",
        json!({"code": "999000"}),
    )
    .await;
    let db = app.state.db.clone();
    let row = wait_for("outbox row failed", Duration::from_secs(30), || {
        let db = db.clone();
        async move { Some(outbox(&db, id).await).filter(|r| r.1.is_some()) }
    })
    .await;
    let reason = row.2.unwrap();
    assert!(reason.starts_with("SMTP delivery failed"), "{reason}");
    assert!(
        !reason.contains("wrong-password-123"),
        "secret leaked: {reason}"
    );
    assert_eq!(row.3, 2);

    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
