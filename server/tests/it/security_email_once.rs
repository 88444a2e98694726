//! Exactly-once email across a lost bookkeeping write: SMTP (the real aiosmtpd sink,
//! Maildir at $MAS_MAIL_DIR) accepts the message, then the `sent_at` write fails once
//! (a trigger in the test's real database raises on the first such UPDATE; a sequence
//! counts the attempts, since it is not rolled back with the failed statement). The
//! job is retried and must settle the row without sending again.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::queues as qs;
use crate::support::services::{self, mail_dir};
use crate::support::wait::wait_for;

/// Every delivered message addressed to `to`, as raw text.
fn mails_to(to: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(mail_dir().join("new")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter(|text| {
            text.lines()
                .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(to))
        })
        .collect()
}

/// Who hands an outbox row to the email queue.
#[derive(PartialEq)]
enum Handover {
    /// The outbox relay, on its next pass.
    ToTheRelay,
    /// The test adds the jobs itself: the row is stamped enqueued, so the relay leaves it.
    ByTheTest,
}

/// A pending `verify_email` outbox row to a fresh `{label}-…@test.local`; its id and address.
async fn insert_verify_mail(db: &PgPool, label: &str, handover: Handover) -> (Uuid, String) {
    let to = format!(
        "{label}-{}@test.local",
        &Uuid::new_v4().simple().to_string()[..12]
    );
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into email_outbox (id, to_email, template, payload, enqueued_at) \
         values ($1, $2, $3, $4, case when $5 then now() end)",
    )
    .bind(id)
    .bind(&to)
    .bind("verify_email")
    .bind(json!({"name": label, "otp": "123456"}))
    .bind(handover == Handover::ByTheTest)
    .execute(db)
    .await
    .unwrap();
    (id, to)
}

async fn inject_one_lost_sent_at_write(db: &PgPool) {
    for statement in [
        "create sequence sent_at_writes",
        "create function fail_first_sent_at_write() returns trigger language plpgsql as $$ \
         begin \
           if nextval('sent_at_writes') = 1 then \
             raise exception 'injected fault: the sent_at write is lost'; \
           end if; \
           return new; \
         end $$",
        "create trigger lose_first_sent_at_write before update on email_outbox for each row \
         when (new.sent_at is not null and old.sent_at is null) \
         execute function fail_first_sent_at_write()",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(db)
            .await
            .expect("fault injection DDL");
    }
}

#[sqlx::test(migrations = false)]
async fn a_lost_sent_at_write_does_not_send_the_mail_twice(db: PgPool) {
    mail_dir();
    let (app, prefix) = qs::spawn(db, |env| {
        services::smtp_env(env);
        env.insert("SMTP_FROM".into(), "MAS <no-reply@test.local>".into());
    })
    .await;
    inject_one_lost_sent_at_write(&app.state.db).await;

    let (id, to) = insert_verify_mail(&app.state.db, "once", Handover::ToTheRelay).await;

    let db = app.state.db.clone();
    let (sent_at, attempts): (Option<chrono::DateTime<chrono::Utc>>, i32) =
        wait_for("the outbox row settled", Duration::from_secs(30), || {
            let db = db.clone();
            async move {
                let row: (Option<chrono::DateTime<chrono::Utc>>, i32) =
                    sqlx::query_as("select sent_at, attempts from email_outbox where id = $1")
                        .bind(id)
                        .fetch_one(&db)
                        .await
                        .ok()?;
                row.0.is_some().then_some(row)
            }
        })
        .await;
    assert!(sent_at.is_some());
    let writes: i64 = sqlx::query_scalar("select last_value from sent_at_writes")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        writes, 2,
        "the first sent_at write failed, the retry's succeeded"
    );
    assert_eq!(attempts, 1, "only the settling write counted");

    // Give a second delivery every chance to show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = mails_to(&to);
    assert_eq!(
        mails.len(),
        1,
        "delivered exactly once, got {}",
        mails.len()
    );
    let message_id = mails[0]
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        .map(|l| l["message-id:".len()..].trim().to_string());
    assert_eq!(
        message_id.as_deref(),
        Some(format!("<outbox.{id}@test.local>").as_str()),
        "the idempotency key is the Message-ID"
    );

    let q = qs::queue(&prefix, "emailQueue").await;
    let job = q
        .get_job(&format!("outbox-{id}"))
        .await
        .unwrap()
        .expect("job kept");
    q.close().await;
    assert_eq!(
        job.attempts_made(),
        2,
        "the job ran twice, the mail went out once"
    );
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

/// Copies of one row's job running at once (a stalled job re-run while its first attempt
/// still runs, a row handed over again after a Redis outage while the old job is still
/// being worked): each checks the delivery record before sending, so without the row
/// claim they would all pass the check and all send. With it one sends; the others wait
/// and then find the row settled.
#[sqlx::test(migrations = false)]
async fn concurrent_copies_of_a_job_send_the_mail_once(db: PgPool) {
    mail_dir();
    let (app, prefix) = qs::spawn(db, |env| {
        services::smtp_env(env);
        env.insert("SMTP_FROM".into(), "MAS <no-reply@test.local>".into());
        env.insert("QUEUE_EMAIL_CONCURRENCY".into(), "8".into());
        env.insert("QUEUE_JOB_ATTEMPTS".into(), "6".into());
    })
    .await;
    let (id, to) = insert_verify_mail(&app.state.db, "copies", Handover::ByTheTest).await;
    let data = json!({"outboxId": id, "to": to, "template": "verify_email"});
    let adds = (0..6).map(|copy| {
        app.state.queues.add(
            mas_server::queues::QueueName::Email,
            "verify_email",
            data.clone(),
            Some(format!("copy-{copy}-{id}")),
        )
    });
    for added in futures::future::join_all(adds).await {
        added.expect("job added");
    }

    let db = app.state.db.clone();
    wait_for("the outbox row settled", Duration::from_secs(30), || {
        let db = db.clone();
        async move {
            let sent: Option<chrono::DateTime<chrono::Utc>> =
                sqlx::query_scalar("select sent_at from email_outbox where id = $1")
                    .bind(id)
                    .fetch_one(&db)
                    .await
                    .ok()?;
            sent.map(|_| ())
        }
    })
    .await;
    // The copies that waited settle (or find the row settled) within their retries.
    let q = qs::queue(&prefix, "emailQueue").await;
    for copy in 0..6 {
        let job_id = format!("copy-{copy}-{id}");
        let (q, job_id) = (&q, &job_id);
        wait_for(
            "every copy completed",
            Duration::from_secs(30),
            || async move {
                (q.get_job_state(job_id).await.ok()?.as_str() == "completed").then_some(())
            },
        )
        .await;
    }
    q.close().await;
    let mails = mails_to(&to);
    assert_eq!(mails.len(), 1, "six copies, one mail; got {}", mails.len());
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
