//! Bulk student import: CSV → databaseQueue job → per-row report.

use std::time::Duration;

use mas_server::auth::Role;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::create_user;
use crate::support::queues as qs;
use crate::support::users::seeded_admin;
use crate::support::wait::wait_for;

async fn create_batch(db: &PgPool) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query("insert into batches (id, name) values ($1, $2)")
        .bind(id)
        .bind(format!("B-{}", &id.simple().to_string()[..8]))
        .execute(db)
        .await
        .unwrap();
    id
}

#[sqlx::test(migrations = false)]
async fn csv_import_creates_students_and_reports_bad_rows(db: PgPool) {
    let (app, prefix) = qs::spawn(db, |_| {}).await;
    let state = app.state.clone();
    let admin = seeded_admin(&state).await.token;
    let existing = create_user(&state, Role::Student).await;
    let (existing_email, student_token) = (existing.email, existing.token);
    let batch = create_batch(&state.db).await;

    let csv = format!(
        "Name,Email,Phone\r\n\
         Asha Rao,asha@import.test,999\r\n\
         \"Khan, Imran\",IMRAN@import.test,\r\n\
         No Email,,\r\n\
         Bad Email,not-an-email,\r\n\
         ,noname@import.test,\r\n\
         Dup,{existing_email},\r\n\
         Asha Again,asha@import.test,\r\n"
    );
    let url = app.url(&format!("/api/admin/batches/{batch}/import"));
    let res = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["status"], "queued");
    let import_id = body["data"]["id"].as_str().unwrap().to_string();

    let report_url = app.url(&format!("/api/admin/batches/{batch}/import/{import_id}"));
    let report = wait_for("import to finish", Duration::from_secs(20), || async {
        let res = app
            .client
            .get(&report_url)
            .bearer_auth(&admin)
            .send()
            .await
            .ok()?;
        let body: Value = res.json().await.ok()?;
        (body["data"]["status"] == "completed" || body["data"]["status"] == "failed")
            .then(|| body["data"].clone())
    })
    .await;
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(
        (
            report["totalRows"].as_i64(),
            report["importedRows"].as_i64(),
            report["failedRows"].as_i64()
        ),
        (Some(7), Some(2), Some(5))
    );
    let errors: Vec<(i64, String)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_i64().unwrap(),
                e["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (4, "email is required".to_string()),
            (5, "email is not a valid address".to_string()),
            (6, "name is required".to_string()),
            (7, "a user with this email already exists".to_string()),
            (8, "a user with this email already exists".to_string()),
        ]
    );

    let students: Vec<(String, String, Option<Uuid>, String)> = sqlx::query_as(
        "select email, name, batch_id, role from users where email like '%@import.test' order by email",
    )
    .fetch_all(&state.db)
    .await
    .unwrap();
    assert_eq!(
        students,
        vec![
            (
                "asha@import.test".into(),
                "Asha Rao".into(),
                Some(batch),
                "student".into()
            ),
            (
                "imran@import.test".into(),
                "Khan, Imran".into(),
                Some(batch),
                "student".into()
            ),
        ]
    );

    // JSON body works too; non-admins and bad input are refused.
    let res = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"csv": "name,email\nZed,zed@import.test\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let res = app
        .client
        .post(&url)
        .bearer_auth(&student_token)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .body("foo,bar\n1,2\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let missing = app.url(&format!("/api/admin/batches/{}/import", Uuid::new_v4()));
    let res = app
        .client
        .post(&missing)
        .bearer_auth(&admin)
        .body("name,email\nA,a@b.co\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    app.shutdown().await.unwrap();
    qs::purge(&prefix).await;
}
