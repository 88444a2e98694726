//! Moves `email_outbox` rows into emailQueue. Rows are claimed with
//! `for update skip locked` and stamped `enqueued_at`, so several replicas never
//! enqueue the same row; the job id is the row id, so a crash between the stamp
//! and the add cannot produce two mails either (the row is simply re-added).
//!
//! The job carries only the row id, recipient and template: the payload (which
//! may hold a one-time code) stays in PostgreSQL, where the worker reads it and
//! scrubs its secrets once the row is settled, so Redis never holds the code.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{QueueName, Queues};

const BATCH: i64 = 100;

pub async fn run(
    db: PgPool,
    queues: Queues,
    every: Duration,
    redrive_after: Duration,
    stop: CancellationToken,
) {
    loop {
        match relay_once(&db, &queues, redrive_after).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "outbox rows enqueued"),
            Err(err) => tracing::warn!(error = %err, "email outbox relay failed; will retry"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: Uuid,
    to_email: String,
    template: String,
}

/// Enqueues one batch of pending rows; returns how many were enqueued.
pub async fn relay_once(
    db: &PgPool,
    queues: &Queues,
    redrive_after: Duration,
) -> anyhow::Result<usize> {
    // Rows handed over a while ago but never settled (their job was lost from Redis, e.g.
    // by a restart without persistence or a flush) are handed over again; the job id keeps
    // a live job unique, and the worker skips a row that is already sent.
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "update email_outbox set enqueued_at = now() where id in ( \
             select id from email_outbox \
             where sent_at is null and failed_at is null \
               and (enqueued_at is null or enqueued_at < now() - make_interval(secs => $2)) \
             order by created_at limit $1 for update skip locked) \
         returning id, to_email, template",
    )
    .bind(BATCH)
    .bind(redrive_after.as_secs_f64())
    .fetch_all(db)
    .await?;
    let mut enqueued = 0;
    for row in rows {
        let data = json!({
            "outboxId": row.id,
            "to": row.to_email,
            "template": row.template,
        });
        let added = queues
            .add(
                QueueName::Email,
                &row.template,
                data,
                Some(format!("outbox-{}", row.id)),
            )
            .await;
        if let Err(err) = added {
            // Hand the row back so the next pass tries again.
            sqlx::query("update email_outbox set enqueued_at = null where id = $1")
                .bind(row.id)
                .execute(db)
                .await?;
            return Err(err.into());
        }
        enqueued += 1;
    }
    Ok(enqueued)
}
