//! /api/admin/users: role guard, pagination and filters, privileged-role rules.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::auth::{login_session, register, spawn};
use crate::support::http::{assert_error, get_auth, post, post_auth, read};
use crate::support::users::unique_email;
use crate::support::{SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, TestApp};

const PASSWORD: &str = "member-password-1";

async fn create(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    read(post_auth(app, "/api/admin/users", token, body).await).await
}

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
    read(
        app.client
            .patch(app.url(&format!("/api/admin/users/{id}")))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn new_user(role: &str) -> Value {
    json!({"name": format!("A {role}"), "email": unique_email(role), "password": PASSWORD, "role": role})
}

#[sqlx::test(migrations = false)]
async fn admins_create_list_filter_and_get_users(db: PgPool) {
    let app = spawn(db).await;
    let admin = app.admin_token().await;

    let mut mentor_ids = Vec::new();
    for _ in 0..3 {
        let (status, body) = create(&app, &admin, new_user("mentor")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["data"]["role"], "mentor");
        assert_eq!(body["data"]["emailVerified"], true);
        mentor_ids.push(body["data"]["id"].as_str().unwrap().to_string());
    }
    let (status, body) = create(&app, &admin, new_user("student")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The created account can log in.
    login_session(&app, body["data"]["email"].as_str().unwrap(), PASSWORD).await;

    // 2 seeded + 4 created.
    let (status, body) =
        read(get_auth(&app, "/api/admin/users?page=1&limit=4", &admin).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["total"], 6);
    assert_eq!(body["data"]["items"].as_array().unwrap().len(), 4);
    let (_, page2) = read(get_auth(&app, "/api/admin/users?page=2&limit=4", &admin).await).await;
    assert_eq!(page2["data"]["items"].as_array().unwrap().len(), 2);
    let ids: Vec<&str> = body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["data"]["items"].as_array().unwrap())
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6, "pages do not overlap");

    let (_, mentors) = read(get_auth(&app, "/api/admin/users?role=mentor", &admin).await).await;
    assert_eq!(mentors["data"]["total"], 3);
    assert!(
        mentors["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["role"] == "mentor")
    );

    let (status, body) =
        read(get_auth(&app, &format!("/api/admin/users/{}", mentor_ids[0]), &admin).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["id"], mentor_ids[0].as_str());

    for bad in ["role=wizard", "limit=0", "limit=101", "page=0", "page=-1"] {
        let (status, body) =
            read(get_auth(&app, &format!("/api/admin/users?{bad}"), &admin).await).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }
    let (status, body) = read(get_auth(&app, "/api/admin/users/not-a-uuid", &admin).await).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn only_superadmins_manage_privileged_roles(db: PgPool) {
    let app = spawn(db).await;
    let admin = app.admin_token().await;
    let root = app.login(SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD).await;

    for role in ["admin", "superadmin"] {
        let (status, body) = create(&app, &admin, new_user(role)).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    let (status, body) = create(&app, &root, new_user("admin")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let other_admin = body["data"]["id"].as_str().unwrap().to_string();

    // An admin cannot touch another admin, nor promote anyone to admin.
    let (status, body) = patch(&app, &admin, &other_admin, json!({"isActive": false})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (_, student) = create(&app, &admin, new_user("student")).await;
    let student_id = student["data"]["id"].as_str().unwrap().to_string();
    let (status, body) = patch(&app, &admin, &student_id, json!({"role": "admin"})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");

    // But may change ordinary roles and names.
    let (status, body) = patch(
        &app,
        &admin,
        &student_id,
        json!({"role": "mentor", "name": "Now Mentor"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["role"], "mentor");
    assert_eq!(body["data"]["name"], "Now Mentor");

    // A superadmin can.
    let (status, body) = patch(&app, &root, &other_admin, json!({"role": "sales"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["role"], "sales");

    // Nobody deactivates or demotes themselves (an admin may not manage admins at all).
    let admin_id = app.state.jwt.verify(&admin).unwrap().sub;
    let (status, body) = read(
        post_auth(
            &app,
            &format!("/api/admin/users/{admin_id}/deactivate"),
            &admin,
            json!({}),
        )
        .await,
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    let root_id = app.state.jwt.verify(&root).unwrap().sub;
    let (status, body) = read(
        post_auth(
            &app,
            &format!("/api/admin/users/{root_id}/deactivate"),
            &root,
            json!({}),
        )
        .await,
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let (status, body) = patch(
        &app,
        &root,
        &root_id.to_string(),
        json!({"role": "student"}),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

    // Unknown fields and bad roles are rejected.
    let (status, body) = patch(&app, &admin, &student_id, json!({"password": "x"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let (status, body) = patch(&app, &admin, &student_id, json!({"role": "wizard"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn role_change_ends_sessions_and_new_tokens_carry_the_new_role(db: PgPool) {
    let app = spawn(db).await;
    let admin = app.admin_token().await;
    let email = unique_email("promote");
    let user = register(&app, "Promoted", &email, PASSWORD).await;
    let session = login_session(&app, &email, PASSWORD).await;
    let id = user["id"].as_str().unwrap();
    let (status, _) = patch(&app, &admin, id, json!({"role": "mentor"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = read(
        post(
            &app,
            "/api/auth/refresh",
            json!({"refreshToken": session["refreshToken"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let fresh = login_session(&app, &email, PASSWORD).await;
    assert_eq!(fresh["user"]["role"], "mentor");
    assert_eq!(
        app.state
            .jwt
            .verify(fresh["accessToken"].as_str().unwrap())
            .unwrap()
            .role,
        mas_server::auth::Role::Mentor
    );
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn duplicate_and_unknown_users(db: PgPool) {
    let app = spawn(db).await;
    let admin = app.admin_token().await;
    let body = new_user("recruiter");
    let (status, _) = create(&app, &admin, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, res) = create(&app, &admin, body).await;
    assert_error(status, &res, StatusCode::CONFLICT, "CONFLICT");

    let ghost = uuid::Uuid::new_v4();
    let (status, res) =
        read(get_auth(&app, &format!("/api/admin/users/{ghost}"), &admin).await).await;
    assert_error(status, &res, StatusCode::NOT_FOUND, "NOT_FOUND");
    let (status, res) = patch(&app, &admin, &ghost.to_string(), json!({"isActive": false})).await;
    assert_error(status, &res, StatusCode::NOT_FOUND, "NOT_FOUND");
    let (status, res) = read(
        post_auth(
            &app,
            &format!("/api/admin/users/{ghost}/deactivate"),
            &admin,
            json!({}),
        )
        .await,
    )
    .await;
    assert_error(status, &res, StatusCode::NOT_FOUND, "NOT_FOUND");
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn demoted_or_deactivated_admins_lose_access_before_their_token_expires(db: PgPool) {
    let app = spawn(db).await;
    let root = app.login(SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD).await;
    let mut body = new_user("admin");
    let email = body["email"].as_str().unwrap().to_string();
    body["password"] = json!(PASSWORD);
    let (status, created) = create(&app, &root, body).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["data"]["id"].as_str().unwrap().to_string();
    let token = app.login(&email, PASSWORD).await;
    let (status, _) = read(get_auth(&app, "/api/admin/users", &token).await).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = patch(&app, &root, &id, json!({"role": "sales"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = read(get_auth(&app, "/api/admin/users", &token).await).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");

    let (status, _) = patch(
        &app,
        &root,
        &id,
        json!({"role": "admin", "isActive": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = create(&app, &token, new_user("student")).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.shutdown().await.unwrap();
}

/// Status of `GET path` with `token`.
async fn get_status(app: &TestApp, path: &str, token: &str) -> StatusCode {
    get_auth(app, path, token).await.status()
}

#[sqlx::test(migrations = false)]
async fn deactivation_ends_access_on_every_authenticated_route_at_once(db: PgPool) {
    let app = spawn(db).await;
    let admin = app.admin_token().await;
    let email = unique_email("leaver");
    let user = register(&app, "Leaver", &email, PASSWORD).await;
    let token = app.login(&email, PASSWORD).await;
    // A plain authenticated route (no role, no account lookup of its own); this
    // also caches the account as active.
    assert_eq!(get_status(&app, "/api/slots", &token).await, StatusCode::OK);
    assert_eq!(get_status(&app, "/api/slots", &token).await, StatusCode::OK);

    let id = user["id"].as_str().unwrap();
    let (status, _) = read(
        post_auth(
            &app,
            &format!("/api/admin/users/{id}/deactivate"),
            &admin,
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = read(get_auth(&app, "/api/slots", &token).await).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // Reactivation restores the same token (it is still within its lifetime).
    let (status, _) = patch(&app, &admin, id, json!({"isActive": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get_status(&app, "/api/slots", &token).await, StatusCode::OK);

    // A validly signed token for an account that does not exist gets nothing.
    let ghost = app
        .state
        .jwt
        .issue(
            uuid::Uuid::new_v4(),
            mas_server::auth::Role::Admin,
            "ghost@test.local",
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    let (status, body) = read(get_auth(&app, "/api/admin/kpis", &ghost).await).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn demoted_admin_is_refused_on_admin_routes_at_once(db: PgPool) {
    let app = spawn(db).await;
    let root = app.login(SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD).await;
    let mut body = new_user("admin");
    let email = body["email"].as_str().unwrap().to_string();
    body["password"] = json!(PASSWORD);
    let (status, created) = create(&app, &root, body).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["data"]["id"].as_str().unwrap().to_string();
    let token = app.login(&email, PASSWORD).await;
    // An admin route guarded only by RequireRole<Admins> (no lookup of its own).
    let college = |n: &str| json!({"name": format!("College {n} {}", uuid::Uuid::new_v4())});
    let (status, body) = read(post_auth(&app, "/api/colleges", &token, college("a")).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, _) = patch(&app, &root, &id, json!({"role": "mentor"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = read(post_auth(&app, "/api/colleges", &token, college("b")).await).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    // The old token now acts with the current role: mentor routes open up.
    assert_eq!(
        get_status(&app, "/api/slots/mine", &token).await,
        StatusCode::OK
    );
    app.shutdown().await.unwrap();
}
