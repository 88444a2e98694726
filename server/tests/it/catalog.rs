//! Colleges, courses and batches over real HTTP: admin writes, public reads.

use mas_server::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::users::seeded_admin;
use crate::support::{TestApp, create_user};

const MISSING: &str = "00000000-0000-0000-0000-000000000001";

#[sqlx::test(migrations = false)]
async fn college_crud_with_validation_roles_and_conflicts(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = seeded_admin(&app.state).await;
    let student = create_user(&app.state, Role::Student).await;
    let a = Some(admin.token.as_str());

    let (s, body) = app
        .call(
            Method::POST,
            "/api/colleges",
            a,
            Some(json!({"name": "  NIT Trichy ", "city": "Tiruchirappalli"})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["name"], "NIT Trichy");
    let id = body["data"]["id"].as_str().unwrap().to_string();

    // Public reads, no token.
    let (s, body) = app
        .call(Method::GET, &format!("/api/colleges/{id}"), None, None)
        .await;
    assert_eq!(
        (s, body["data"]["city"].clone()),
        (200, json!("Tiruchirappalli"))
    );
    let (s, body) = app
        .call(Method::GET, "/api/colleges?perPage=100", None, None)
        .await;
    assert_eq!(s, 200);
    let names: Vec<&str> = body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"NIT Trichy"));
    // Seeded colleges are listed too.
    assert_eq!(
        body["data"]["total"].as_i64().unwrap() as usize,
        names.len()
    );
    assert!(names.len() > 1);

    // Pagination bounds and paging.
    let (s, body) = app
        .call(Method::GET, "/api/colleges?page=1&perPage=2", None, None)
        .await;
    assert_eq!(
        (s, body["data"]["items"].as_array().unwrap().len()),
        (200, 2)
    );
    let (s, body) = app
        .call(Method::GET, "/api/colleges?perPage=0", None, None)
        .await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (400, json!("VALIDATION_ERROR"))
    );
    let (s, _) = app
        .call(Method::GET, "/api/colleges?page=abc", None, None)
        .await;
    assert_eq!(s, 400);

    // Duplicate names (case-insensitive) conflict.
    let (s, body) = app
        .call(
            Method::POST,
            "/api/colleges",
            a,
            Some(json!({"name": "nit trichy"})),
        )
        .await;
    assert_eq!((s, body["error"]["code"].clone()), (409, json!("CONFLICT")));

    // Validation.
    for bad in [
        json!({"name": "   "}),
        json!({"name": "x".repeat(201)}),
        json!({"city": "x"}),
        json!({"name": "A", "extra": 1}),
    ] {
        let (s, body) = app
            .call(Method::POST, "/api/colleges", a, Some(bad.clone()))
            .await;
        assert_eq!(s, 400, "{bad} → {body}");
        assert_eq!(body["success"], false);
    }

    // Roles: anonymous 401, student 403.
    let (s, _) = app
        .call(
            Method::POST,
            "/api/colleges",
            None,
            Some(json!({"name": "Anon"})),
        )
        .await;
    assert_eq!(s, 401);
    let (s, body) = app
        .call(
            Method::POST,
            "/api/colleges",
            Some(&student.token),
            Some(json!({"name": "Sneaky"})),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (403, json!("FORBIDDEN"))
    );
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/colleges/{id}"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(s, 403);

    // Update, including a rename onto an existing name.
    let (s, body) = app
        .call(
            Method::PUT,
            &format!("/api/colleges/{id}"),
            a,
            Some(json!({"name": "NIT Tiruchirappalli"})),
        )
        .await;
    assert_eq!(
        (
            s,
            body["data"]["name"].clone(),
            body["data"]["city"].clone()
        ),
        (200, json!("NIT Tiruchirappalli"), Value::Null)
    );
    let (s, _) = app
        .call(
            Method::PUT,
            &format!("/api/colleges/{id}"),
            a,
            Some(json!({"name": "BITS Pilani"})),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = app
        .call(
            Method::PUT,
            &format!("/api/colleges/{MISSING}"),
            a,
            Some(json!({"name": "Nobody"})),
        )
        .await;
    assert_eq!(s, 404);

    // Delete, then 404s.
    let (s, body) = app
        .call(Method::DELETE, &format!("/api/colleges/{id}"), a, None)
        .await;
    assert_eq!((s, body), (204, Value::Null));
    let (s, body) = app
        .call(Method::GET, &format!("/api/colleges/{id}"), None, None)
        .await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (404, json!("NOT_FOUND"))
    );
    let (s, _) = app
        .call(Method::DELETE, &format!("/api/colleges/{id}"), a, None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .call(Method::GET, "/api/colleges/not-a-uuid", None, None)
        .await;
    assert_eq!(s, 400);
}

#[sqlx::test(migrations = false)]
async fn course_crud_with_slug_rules(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = seeded_admin(&app.state).await;
    let student = create_user(&app.state, Role::Student).await;
    let mentor = create_user(&app.state, Role::Mentor).await;
    let a = Some(admin.token.as_str());

    let (s, body) = app
        .call(
            Method::POST,
            "/api/courses",
            a,
            Some(json!({"slug": "sql-101", "title": "SQL 101"})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(
        (
            body["data"]["isPublished"].clone(),
            body["data"]["description"].clone()
        ),
        (json!(true), json!(""))
    );
    let id = body["data"]["id"].as_str().unwrap().to_string();

    let (s, _) = app
        .call(
            Method::POST,
            "/api/courses",
            a,
            Some(json!({"slug": "sql-101", "title": "Again"})),
        )
        .await;
    assert_eq!(s, 409);
    for bad in [
        json!({"slug": "SQL", "title": "t"}),
        json!({"slug": "-x-", "title": "t"}),
        json!({"slug": "ok-slug", "title": ""}),
        json!({"slug": "ok-slug"}),
        json!({"slug": "ok-slug", "title": "t", "description": "d".repeat(5001)}),
    ] {
        let (s, body) = app
            .call(Method::POST, "/api/courses", a, Some(bad.clone()))
            .await;
        assert_eq!(s, 400, "{bad} → {body}");
    }
    for who in [&student, &mentor] {
        let (s, _) = app
            .call(
                Method::POST,
                "/api/courses",
                Some(&who.token),
                Some(json!({"slug": "nope", "title": "Nope"})),
            )
            .await;
        assert_eq!(s, 403);
    }

    let (s, body) = app.call(Method::GET, "/api/courses", None, None).await;
    assert_eq!((s, body["data"]["total"].clone()), (200, json!(1)));
    let (s, body) = app
        .call(Method::PUT, &format!("/api/courses/{id}"), a, Some(json!({"slug": "sql-102", "title": "SQL 102", "description": "joins", "isPublished": false})))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (
            body["data"]["slug"].clone(),
            body["data"]["isPublished"].clone()
        ),
        (json!("sql-102"), json!(false))
    );
    let (s, body) = app
        .call(Method::GET, &format!("/api/courses/{id}"), None, None)
        .await;
    assert_eq!(
        (s, body["data"]["description"].clone()),
        (200, json!("joins"))
    );

    let (s, _) = app
        .call(Method::DELETE, &format!("/api/courses/{id}"), a, None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .call(Method::GET, &format!("/api/courses/{id}"), None, None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .call(
            Method::PUT,
            &format!("/api/courses/{MISSING}"),
            a,
            Some(json!({"slug": "zz", "title": "Z"})),
        )
        .await;
    assert_eq!(s, 404);
}

#[sqlx::test(migrations = false)]
async fn batch_crud_checks_references_and_dates(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = seeded_admin(&app.state).await;
    let student = create_user(&app.state, Role::Student).await;
    let a = Some(admin.token.as_str());

    let (_, course) = app
        .call(
            Method::POST,
            "/api/courses",
            a,
            Some(json!({"slug": "ds", "title": "Data Science"})),
        )
        .await;
    let course_id = course["data"]["id"].as_str().unwrap().to_string();
    let (_, college) = app
        .call(
            Method::POST,
            "/api/colleges",
            a,
            Some(json!({"name": "Test College"})),
        )
        .await;
    let college_id = college["data"]["id"].as_str().unwrap().to_string();

    let (s, body) = app
        .call(
            Method::POST,
            "/api/batches",
            a,
            Some(json!({"name": "DS-2027-MAR", "courseId": course_id, "collegeId": college_id, "startsOn": "2027-03-01", "endsOn": "2027-08-31"})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["data"]["courseId"], json!(course_id));
    assert_eq!(body["data"]["startsOn"], "2027-03-01");
    let id = body["data"]["id"].as_str().unwrap().to_string();

    let (s, _) = app
        .call(
            Method::POST,
            "/api/batches",
            a,
            Some(json!({"name": "ds-2027-mar"})),
        )
        .await;
    assert_eq!(s, 409);
    for bad in [
        json!({"name": "B", "startsOn": "2027-03-01", "endsOn": "2027-02-01"}),
        json!({"name": "B", "courseId": MISSING}),
        json!({"name": "B", "collegeId": MISSING}),
        json!({"name": "B", "startsOn": "not-a-date"}),
        json!({"name": ""}),
    ] {
        let (s, body) = app
            .call(Method::POST, "/api/batches", a, Some(bad.clone()))
            .await;
        assert_eq!(s, 400, "{bad} → {body}");
    }
    let (s, _) = app
        .call(
            Method::POST,
            "/api/batches",
            Some(&student.token),
            Some(json!({"name": "S"})),
        )
        .await;
    assert_eq!(s, 403);

    let (s, body) = app
        .call(
            Method::PUT,
            &format!("/api/batches/{id}"),
            a,
            Some(json!({"name": "DS-2027-APR"})),
        )
        .await;
    assert_eq!((s, body["data"]["courseId"].clone()), (200, Value::Null));
    let (s, body) = app.call(Method::GET, "/api/batches", None, None).await;
    assert_eq!(
        (s, body["data"]["items"][0]["name"].clone()),
        (200, json!("DS-2027-APR"))
    );
    let (s, _) = app
        .call(Method::DELETE, &format!("/api/batches/{id}"), a, None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .call(Method::GET, &format!("/api/batches/{id}"), None, None)
        .await;
    assert_eq!(s, 404);
}
