//! Every error class of the HTTP surface, as a client sees it: status, JSON
//! envelope and code.

use mas_server::auth::{Claims, Role};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::support::auth::{login_session, register, spawn, spawn_with};
use crate::support::http::{assert_error, get_auth, post, post_auth, read};
use crate::support::users::unique_email;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};

const JWT_SECRET: &str = "test-secret-test-secret-test-secret!!";

#[sqlx::test(migrations = false)]
async fn invalid_input_is_400(db: PgPool) {
    let app = spawn(db).await;
    let cases = [
        json!({"name": "N", "email": "not-an-email", "password": "long-enough-1"}),
        json!({"name": "N", "email": "a@b", "password": "long-enough-1"}),
        json!({"name": "N", "email": unique_email("short"), "password": "short"}),
        json!({"name": "   ", "email": unique_email("noname"), "password": "long-enough-1"}),
        json!({"email": unique_email("missing"), "password": "long-enough-1"}),
        json!({"name": 5, "email": unique_email("type"), "password": "long-enough-1"}),
    ];
    for case in cases {
        let (status, body) = read(post(&app, "/api/auth/register", case.clone()).await).await;
        let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(!message.is_empty(), "{case}");
    }
    let (status, body) = read(
        post(
            &app,
            "/api/auth/login",
            json!({"email": "nope", "password": "x"}),
        )
        .await,
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

    // Malformed JSON, and JSON without the content type.
    let res = app
        .client
        .post(app.url("/api/auth/register"))
        .header("content-type", "application/json")
        .body(r#"{"name": "N", "email": "#)
        .send()
        .await
        .unwrap();
    let (status, body) = read(res).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let res = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "text/plain")
        .body(r#"{"email":"a@b.co","password":"x"}"#)
        .send()
        .await
        .unwrap();
    let (status, body) = read(res).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    // Nothing was created by any of it.
    let users: i64 = sqlx::query_scalar("select count(*) from users where role = 'student'")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(users, 0);
    app.shutdown().await.unwrap();
}

fn token_with(claims: &Claims, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn bad_credentials_and_tokens_are_401(db: PgPool) {
    let app = spawn(db).await;
    let admin = app.admin_token().await;
    let claims = app.state.jwt.verify(&admin).unwrap();
    let now = chrono::Utc::now().timestamp();

    let expired = token_with(
        &Claims {
            iat: now - 3600,
            exp: now - 600,
            ..claims.clone()
        },
        JWT_SECRET,
    );
    let foreign = token_with(&claims, "some-other-secret-some-other-secret!!");
    // Tampered: swap the payload for one claiming superadmin, keep the signature.
    let forged_payload = token_with(
        &Claims {
            role: Role::Superadmin,
            ..claims.clone()
        },
        "attacker-secret-attacker-secret-attacker",
    );
    let parts: Vec<&str> = admin.split('.').collect();
    let forged_parts: Vec<&str> = forged_payload.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], forged_parts[1], parts[2]);

    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "missing"),
        (Some("Bearer garbage".into()), "garbage"),
        (Some("Bearer ".into()), "empty"),
        (Some(format!("Basic {admin}")), "wrong scheme"),
        (Some(format!("Bearer {expired}")), "expired"),
        (Some(format!("Bearer {foreign}")), "foreign secret"),
        (Some(format!("Bearer {tampered}")), "tampered"),
    ];
    for (header, what) in cases {
        for path in ["/api/auth/me", "/api/admin/users"] {
            let mut req = app.client.get(app.url(path));
            if let Some(h) = &header {
                req = req.header("authorization", h);
            }
            let (status, body) = read(req.send().await.unwrap()).await;
            let message = assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
            assert!(!message.contains(&admin), "{what}: token echoed");
        }
    }
    let (status, body) = read(get_auth(&app, "/api/auth/me", &expired).await).await;
    assert_eq!(
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        "access token expired"
    );

    let (status, body) = read(
        post(
            &app,
            "/api/auth/login",
            json!({"email": ADMIN_EMAIL, "password": "wrong-password"}),
        )
        .await,
    )
    .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let _ = ADMIN_PASSWORD;
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn students_on_admin_routes_are_403(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("nosy");
    let user = register(&app, "Nosy", &email, "student-password").await;
    let token = app.login(&email, "student-password").await;
    let id = user["id"].as_str().unwrap();
    let (status, body) = read(get_auth(&app, "/api/admin/users", &token).await).await;
    let message = assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert!(message.contains("admin"), "{message}");
    let (status, body) =
        read(get_auth(&app, &format!("/api/admin/users/{id}"), &token).await).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (status, body) = read(
        post_auth(
            &app,
            "/api/admin/users",
            &token,
            json!({"name": "X", "email": unique_email("x"), "password": "password-1", "role": "superadmin"}),
        )
        .await,
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (status, body) = read(
        post_auth(
            &app,
            &format!("/api/admin/users/{id}/deactivate"),
            &token,
            json!({}),
        )
        .await,
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn unknown_routes_and_users_are_404(db: PgPool) {
    let app = spawn(db).await;
    let admin = app.admin_token().await;
    for path in ["/api/nope", "/api/auth/unknown", "/totally/elsewhere"] {
        let (status, body) = read(app.client.get(app.url(path)).send().await.unwrap()).await;
        let message = assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert!(message.contains(path), "{message}");
    }
    let ghost = uuid::Uuid::new_v4();
    let (status, body) =
        read(get_auth(&app, &format!("/api/admin/users/{ghost}"), &admin).await).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_taken_email_is_not_revealed(db: PgPool) {
    let app = spawn(db).await;
    // The seeded admin's address is taken too: same 202 as any new address.
    let (status, body) = read(
        post(
            &app,
            "/api/auth/register",
            json!({"name": "Impostor", "email": ADMIN_EMAIL, "password": "password-123"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body["data"]["message"],
        mas_server::services::auth::REGISTER_ACCEPTED
    );
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn bodies_over_the_limit_are_413_for_json_and_forms(db: PgPool) {
    let app = spawn_with(db, |env| {
        env.insert("BODY_LIMIT_BYTES".into(), "1024".into());
    })
    .await;
    let big = "x".repeat(4096);

    let res = app
        .client
        .post(app.url("/api/auth/register"))
        .json(&json!({"name": big, "email": unique_email("big"), "password": "password-123"}))
        .send()
        .await
        .unwrap();
    let (status, body) = read(res).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    );

    let res = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email=a%40b.co&password={big}"))
        .send()
        .await
        .unwrap();
    let (status, body) = read(res).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    );

    // Without Content-Length (chunked) the limit holds as well.
    let payload = format!(r#"{{"email":"a@b.co","password":"{big}"}}"#);
    let raw = raw_http(
        app.addr,
        &format!(
            "POST /api/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{payload}\r\n0\r\n\r\n",
            payload.len()
        ),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("PAYLOAD_TOO_LARGE"), "{raw}");

    // Under the limit, both encodings work.
    login_session(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let res = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email={}&password={ADMIN_PASSWORD}",
            ADMIN_EMAIL.replace('@', "%40")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.shutdown().await.unwrap();
}

async fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // The server may answer before reading everything and then close.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}
