//! /admin/queues: JSON API (counts, failed jobs with reasons, retry, clean) and the
//! server-rendered page with its cookie login.

use std::time::Duration;

use mas_server::auth::Role;
use mas_server::queues::QueueName;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::app::free_port;
use crate::support::queues as qs;
use crate::support::users::seeded_admin;
use crate::support::wait::wait_for;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, create_user};

/// application/x-www-form-urlencoded, as a browser sends the login form.
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                b => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An app whose email jobs fail at once (SMTP on a closed port, one attempt).
async fn app_with_a_failed_job(db: PgPool) -> (TestApp, String, String) {
    let port = free_port();
    let (app, prefix) = qs::spawn(db, |env| {
        env.insert("SMTP_HOST".into(), "127.0.0.1".into());
        env.insert("SMTP_PORT".into(), port.to_string());
        env.insert("SMTP_TLS".into(), "none".into());
        env.insert("QUEUE_JOB_ATTEMPTS".into(), "1".into());
        // Sign-in budget per email: small, and short-lived so reruns start fresh.
        env.insert("LOGIN_MAX_ATTEMPTS".into(), "3".into());
        env.insert("LOGIN_WINDOW_SECONDS".into(), "5".into());
    })
    .await;
    let job_id = app
        .state
        .queues
        .add(QueueName::Email, "otp_verification", json!({"to": "d@test.local", "template": "otp_verification", "payload": {"code": "123123"}}), None)
        .await
        .unwrap();
    let q = qs::queue(&prefix, "emailQueue").await;
    wait_for("job failed", Duration::from_secs(20), || async {
        (q.get_failed_count().await.ok()? == 1).then_some(())
    })
    .await;
    q.close().await;
    (app, prefix, job_id)
}

#[sqlx::test(migrations = false)]
async fn json_api_lists_retries_and_cleans(db: PgPool) {
    let (app, prefix, job_id) = app_with_a_failed_job(db).await;
    let admin = seeded_admin(&app.state).await.token;
    let student = create_user(&app.state, Role::Student).await.token;

    let res = app
        .client
        .get(app.url("/api/admin/queues"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "emailQueue",
            "databaseQueue",
            "cleanupQueue",
            "kpiQueue",
            "resumeAnalysisQueue"
        ]
    );
    assert_eq!(body["data"][0]["counts"]["failed"], 1);

    let failed: Value = app
        .client
        .get(app.url("/api/admin/queues/emailQueue/jobs?state=failed"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = &failed["data"][0];
    assert_eq!(job["id"], job_id.as_str());
    assert!(
        job["failedReason"]
            .as_str()
            .unwrap()
            .starts_with("SMTP delivery failed"),
        "{job}"
    );
    let first_processed = job["processedOn"].as_u64().unwrap();

    // Retry one job: it runs again (and fails again, the SMTP port is still closed).
    let res = app
        .client
        .post(app.url(&format!("/api/admin/queues/emailQueue/jobs/{job_id}/retry")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let q = qs::queue(&prefix, "emailQueue").await;
    wait_for(
        "retried job processed again",
        Duration::from_secs(20),
        || async {
            let j = q.get_job(&job_id).await.ok()??;
            let state = q.get_job_state(&job_id).await.ok()?;
            (j.processed_on()? > first_processed && state.as_str() == "failed").then_some(())
        },
    )
    .await;
    // Unknown jobs and queues are 404.
    let res = app
        .client
        .post(app.url("/api/admin/queues/emailQueue/jobs/does-not-exist/retry"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .client
        .get(app.url("/api/admin/queues/nope/jobs"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Retry-all then clean.
    let res = app
        .client
        .post(app.url("/api/admin/queues/emailQueue/retry"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    wait_for(
        "failed again after retry-all",
        Duration::from_secs(20),
        || async {
            let c = q.get_job_counts().await.ok()?;
            (c.failed >= 1 && c.waiting + c.active == 0).then_some(())
        },
    )
    .await;
    let res = app
        .client
        .post(app.url("/api/admin/queues/emailQueue/clean?state=failed"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert!(body["data"]["removed"].as_u64().unwrap() >= 1, "{body}");
    assert_eq!(q.get_failed_count().await.unwrap(), 0);
    let res = app
        .client
        .post(app.url("/api/admin/queues/emailQueue/clean?state=active"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Admins only.
    let res = app
        .client
        .get(app.url("/api/admin/queues"))
        .bearer_auth(&student)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .client
        .get(app.url("/api/admin/queues"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    q.close().await;
    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}

#[sqlx::test(migrations = false)]
async fn page_login_sets_an_httponly_cookie_and_renders_failed_jobs(db: PgPool) {
    let (app, prefix, job_id) = app_with_a_failed_job(db).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let res = client.get(app.url("/admin/queues")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"login-form\""));

    let res = client
        .post(app.url("/admin/queues/login"))
        .header("origin", &app.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("email", ADMIN_EMAIL),
            ("password", "wrong-password"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("wrong email or password")
    );

    let res = client
        .post(app.url("/admin/queues/login"))
        .header("origin", &app.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.starts_with("mas_admin_token=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();

    let res = client
        .get(app.url("/admin/queues"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("resumeAnalysisQueue") && html.contains("class=\"count-failed\">1<"),
        "{html}"
    );
    assert!(html.contains(&format!("data-job=\"{job_id}\"")));
    assert!(html.contains("SMTP delivery failed"));

    // The cookie also authorises the JSON API, from the page's own origin only.
    let res = client
        .post(app.url("/api/admin/queues/emailQueue/clean?state=failed"))
        .header("cookie", &pair)
        .header("origin", &app.base)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = client
        .post(app.url("/api/admin/queues/emailQueue/clean?state=failed"))
        .header("cookie", &pair)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Sign-in attempts are rate limited per email.
    let stranger = format!("{}@test.local", uuid::Uuid::new_v4().simple());
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = client
            .post(app.url("/admin/queues/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("email", stranger.as_str()),
                ("password", "guess-guess"),
            ]))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429]);

    // A bearer token of a non-admin gets 403 on the page.
    let student = create_user(&app.state, Role::Student).await.token;
    let res = client
        .get(app.url("/admin/queues"))
        .bearer_auth(&student)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
