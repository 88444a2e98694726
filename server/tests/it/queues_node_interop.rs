//! Wire compatibility with Node BullMQ (tests/node): a job added by Node is
//! processed by our worker, and a job we add is processed by a Node worker.

use std::process::Stdio;
use std::time::Duration;

use mas_server::queues::QueueName;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::process::Command;
use uuid::Uuid;

use crate::support::queues as qs;
use crate::support::redis::redis_url_with_db;
use crate::support::services::{mail_dir, node_dir, smtp_env};
use crate::support::wait::wait_for;

fn node(script: &str, prefix: &str, queue: &str) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .current_dir(node_dir())
        .env("REDIS_URL", redis_url_with_db(qs::REDIS_DB))
        .env("PREFIX", prefix)
        .env("QUEUE", queue)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[sqlx::test(migrations = false)]
async fn job_added_by_node_is_processed_by_our_email_worker(db: PgPool) {
    let maildir = mail_dir();
    let (app, prefix) = qs::spawn(db, smtp_env).await;
    let to = format!(
        "node-{}@test.local",
        &Uuid::new_v4().simple().to_string()[..10]
    );
    let out = node("bullmq_add.mjs", &prefix, "emailQueue")
        .env("JOB_NAME", "otp_verification")
        .env(
            "JOB_DATA",
            json!({"to": to, "template": "otp_verification", "payload": {"code": "246810"}})
                .to_string(),
        )
        .env(
            "JOB_OPTS",
            json!({"attempts": 2, "backoff": {"type": "exponential", "delay": 100}}).to_string(),
        )
        .output()
        .await
        .expect("node");
    assert!(
        out.status.success(),
        "node add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    let job_id = added["id"].as_str().unwrap().to_string();

    let q = qs::queue(&prefix, "emailQueue").await;
    let job = wait_for(
        "node job completed by our worker",
        Duration::from_secs(20),
        || async {
            let state = q.get_job_state(&job_id).await.ok()?;
            match state.as_str() {
                "completed" | "failed" => q.get_job(&job_id).await.ok()?,
                _ => None,
            }
        },
    )
    .await;
    assert_eq!(
        q.get_job_state(&job_id).await.unwrap().as_str(),
        "completed",
        "{}",
        job.failed_reason()
    );
    let rv: Value = serde_json::from_str(job.returnvalue()).unwrap();
    assert_eq!(rv, json!({"delivered": true, "to": to}));
    let delivered = std::fs::read_dir(maildir.join("new"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .any(|m| m.contains(&format!("To: {to}")) && m.contains("246810"));
    assert!(delivered, "mail for {to} not in the Maildir");

    q.close().await;
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn job_added_by_us_is_processed_by_a_node_worker(db: PgPool) {
    // API role: no Rust workers compete for the job.
    let (app, prefix) = qs::spawn(db, |env| {
        env.insert("PROCESS_ROLE".into(), "api".into());
    })
    .await;
    let worker = node("bullmq_worker.mjs", &prefix, "databaseQueue")
        .env("COUNT", "1")
        .spawn()
        .expect("node worker");
    let data = json!({"importId": Uuid::new_v4(), "note": "from rust"});
    let job_id = app
        .state
        .queues
        .add(
            QueueName::Database,
            "importStudents",
            &data,
            Some("interop-1".into()),
        )
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), worker.wait_with_output())
        .await
        .expect("node worker finished")
        .unwrap();
    assert!(
        out.status.success(),
        "node worker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(seen["id"], job_id.as_str());
    assert_eq!(seen["name"], "importStudents");
    assert_eq!(seen["data"], data);
    assert_eq!(seen["opts"]["attempts"], 3);
    assert_eq!(
        seen["opts"]["backoff"],
        json!({"type": "exponential", "delay": 200})
    );

    let q = qs::queue(&prefix, "databaseQueue").await;
    let job = wait_for(
        "completed state visible to Rust",
        Duration::from_secs(10),
        || async {
            (q.get_job_state(&job_id).await.ok()?.as_str() == "completed").then_some(())?;
            q.get_job(&job_id).await.ok()?
        },
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(job.returnvalue()).unwrap(),
        json!({"processedBy": "node-bullmq"})
    );

    q.close().await;
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
