//! Recruiter read access: only consenting students, for recruiters/admins signed in
//! here and for mr-hire-backend with its service token (current or previous while
//! rotating); the routes answer only to those.

use mas_server::auth::Role;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::support::{TestApp, create_user};

const TOKEN: &str = "mr-hire-service-token-0123456789abcdef";
const PREVIOUS: &str = "mr-hire-service-token-previous-0123456789";

#[sqlx::test(migrations = false)]
async fn recruiters_and_mr_hire_read_consenting_students_only(db: PgPool) {
    let app = TestApp::spawn_with(db, |env| {
        env.insert("MR_HIRE_SERVICE_TOKEN".into(), TOKEN.into());
        env.insert("MR_HIRE_SERVICE_TOKEN_PREVIOUS".into(), PREVIOUS.into());
    })
    .await;
    let consenting = create_user(&app.state, Role::Student).await;
    let private = create_user(&app.state, Role::Student).await;
    let recruiter = create_user(&app.state, Role::Recruiter).await.token;
    let mentor = create_user(&app.state, Role::Mentor).await.token;

    // Consent is the student's to give.
    let (status, res) = app
        .call(
            Method::PUT,
            "/api/profile/recruiter-consent",
            Some(&consenting.token),
            Some(json!({"consent": true})),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["data"]["recruiterConsent"], true);
    let (status, _) = app
        .call(
            Method::PUT,
            "/api/profile/recruiter-consent",
            Some(&mentor),
            Some(json!({"consent": true})),
        )
        .await;
    assert_eq!(status, 403);

    for token in [recruiter.as_str(), TOKEN, PREVIOUS] {
        let (status, list) = app
            .call(Method::GET, "/api/recruiter/students", Some(token), None)
            .await;
        assert_eq!(status, 200, "{list}");
        let ids: Vec<&str> = list["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [consenting.id.to_string()], "{list}");
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/api/recruiter/students/{}", consenting.id),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200);
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/api/recruiter/students/{}", private.id),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 404);
    }
    // Anyone else: 401 (no or a wrong token) or 403 (another role).
    let (status, _) = app
        .call(Method::GET, "/api/recruiter/students", None, None)
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .call(
            Method::GET,
            "/api/recruiter/students",
            Some("mr-hire-service-token-0123456789abcdeX"),
            None,
        )
        .await;
    assert_eq!(status, 401);
    for token in [&mentor, &private.token] {
        let (status, _) = app
            .call(Method::GET, "/api/recruiter/students", Some(token), None)
            .await;
        assert_eq!(status, 403);
    }
    // Withdrawn consent hides the student again.
    app.call(
        Method::PUT,
        "/api/profile/recruiter-consent",
        Some(&consenting.token),
        Some(json!({"consent": false})),
    )
    .await;
    let (_, list) = app
        .call(Method::GET, "/api/recruiter/students", Some(TOKEN), None)
        .await;
    assert_eq!(list["data"]["items"], json!([]));
}
