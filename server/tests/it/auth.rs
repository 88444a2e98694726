//! The /api/auth routes over real HTTP against real PostgreSQL and Redis.

use mas_server::auth::Role;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::support::auth::{login_session, outbox_mail, outbox_otp, register, spawn, spawn_with};
use crate::support::http::{assert_error, get_auth, post, post_auth, read};
use crate::support::users::unique_email;
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

const PASSWORD: &str = "student-password-1";

#[sqlx::test(migrations = false)]
async fn register_queues_a_verification_mail_whose_code_verifies_once(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("reg");
    let user = register(&app, "Asha Rao", &email.to_uppercase(), PASSWORD).await;
    assert_eq!(user["email"], email, "emails are stored lower-cased");
    assert_eq!(user["role"], "student");
    assert_eq!(user["emailVerified"], false);
    assert!(user.get("passwordHash").is_none() && user.get("password_hash").is_none());

    let mail = outbox_mail(&app, &email, "verify_email")
        .await
        .expect("verification mail");
    assert_eq!(mail["name"], "Asha Rao");
    let otp = mail["otp"].as_str().expect("otp").to_string();
    assert!(
        otp.len() == 6 && otp.chars().all(|c| c.is_ascii_digit()),
        "{otp}"
    );
    // Only a hash of the code is stored.
    let stored: String = sqlx::query_scalar(
        "select code_hash from email_otps o join users u on u.id = o.user_id where u.email = $1",
    )
    .bind(&email)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert!(!stored.contains(&otp));
    let unsent: bool =
        sqlx::query_scalar("select sent_at is null from email_outbox where to_email = $1")
            .bind(&email)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert!(unsent, "the worker, not the request, delivers the mail");

    let (status, body) = read(
        post(
            &app,
            "/api/auth/verify-email",
            json!({"email": email, "otp": otp}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["emailVerified"], true);

    // Single use.
    let (status, body) = read(
        post(
            &app,
            "/api/auth/verify-email",
            json!({"email": email, "otp": otp}),
        )
        .await,
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

    let session = login_session(&app, &email, PASSWORD).await;
    assert_eq!(session["emailVerified"], true);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn verify_email_limits_attempts_and_rejects_expired_codes(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("otp");
    register(&app, "Otp User", &email, PASSWORD).await;
    let otp = outbox_otp(&app, &email, "verify_email").await;
    let wrong = if otp == "000000" { "111111" } else { "000000" };

    for _ in 0..5 {
        let (status, body) = read(
            post(
                &app,
                "/api/auth/verify-email",
                json!({"email": email, "otp": wrong}),
            )
            .await,
        )
        .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }
    // The right code no longer helps once the attempts are used up.
    let (status, body) = read(
        post(
            &app,
            "/api/auth/verify-email",
            json!({"email": email, "otp": otp}),
        )
        .await,
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_REQUESTS",
    );

    // A new code (resend) works, but not after it expired.
    let (status, _) = read(
        post(
            &app,
            "/api/auth/resend-verification",
            json!({"email": email}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let fresh = outbox_otp(&app, &email, "verify_email").await;
    sqlx::query(
        "update email_otps set expires_at = now() - interval '1 second' where consumed_at is null",
    )
    .execute(&app.state.db)
    .await
    .unwrap();
    let (status, body) = read(
        post(
            &app,
            "/api/auth/verify-email",
            json!({"email": email, "otp": fresh}),
        )
        .await,
    )
    .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(message.contains("expired"), "{message}");

    // Unknown emails get the same answer as wrong codes.
    let (status, body) = read(
        post(
            &app,
            "/api/auth/verify-email",
            json!({"email": unique_email("nobody"), "otp": "123456"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
        "invalid or expired code"
    );
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn register_does_not_reveal_a_taken_email_in_any_case(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("dup");
    let first = read(
        post(
            &app,
            "/api/auth/register",
            json!({"name": "First", "email": email, "password": PASSWORD}),
        )
        .await,
    )
    .await;
    let second = read(
        post(
            &app,
            "/api/auth/register",
            json!({"name": "Second", "email": email.to_uppercase(), "password": "another-password-2"}),
        )
        .await,
    )
    .await;
    assert_eq!(first.0, StatusCode::ACCEPTED, "{}", first.1);
    assert_eq!(first, second, "a taken address gets the very same answer");
    let (count, name): (i64, String) =
        sqlx::query_as("select count(*) over (), name from users where lower(email) = $1")
            .bind(&email)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(
        (count, name.as_str()),
        (1, "First"),
        "the account is unchanged"
    );
    // The owner is told instead; the password stays the owner's.
    let notice = outbox_mail(&app, &email, "registration_attempt")
        .await
        .expect("notice to the owner");
    assert_eq!(notice["name"], "First");
    assert!(notice.get("otp").is_none(), "{notice}");
    login_session(&app, &email, PASSWORD).await;
    let (status, _) = read(
        post(
            &app,
            "/api/auth/login",
            json!({"email": email, "password": "another-password-2"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn unverified_login_is_allowed_and_tokens_carry_the_role(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("login");
    register(&app, "Login User", &email, PASSWORD).await;

    let session = login_session(&app, &email, PASSWORD).await;
    assert_eq!(session["emailVerified"], false);
    assert_eq!(session["tokenType"], "Bearer");
    assert_eq!(session["expiresIn"], 900);
    assert_eq!(session["user"]["email"], email);
    let access = session["accessToken"].as_str().unwrap();
    let refresh = session["refreshToken"].as_str().unwrap();
    assert_eq!(refresh.len(), 64);
    let claims = app.state.jwt.verify(access).unwrap();
    assert_eq!(claims.role, Role::Student);
    assert_eq!(claims.email, email);

    // The refresh token is stored hashed.
    let stored: i64 =
        sqlx::query_scalar("select count(*) from refresh_tokens where token_hash = $1")
            .bind(refresh)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(stored, 0);

    let (status, body) = read(get_auth(&app, "/api/auth/me", access).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["email"], email);
    assert_eq!(body["data"]["role"], "student");

    let admin = app.admin_token().await;
    assert_eq!(app.state.jwt.verify(&admin).unwrap().role, Role::Admin);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn wrong_password_and_unknown_email_get_the_same_401(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("wrong");
    register(&app, "Wrong Pw", &email, PASSWORD).await;
    let (status, wrong_pw) = read(
        post(
            &app,
            "/api/auth/login",
            json!({"email": email, "password": "not-the-password"}),
        )
        .await,
    )
    .await;
    let m1 = assert_error(status, &wrong_pw, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let (status, unknown) = read(
        post(
            &app,
            "/api/auth/login",
            json!({"email": unique_email("ghost"), "password": PASSWORD}),
        )
        .await,
    )
    .await;
    let m2 = assert_error(status, &unknown, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(m1, m2);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn login_failures_are_rate_limited_per_email_and_address(db: PgPool) {
    let app = spawn_with(db, |env| {
        env.insert("LOGIN_MAX_ATTEMPTS".into(), "3".into());
        env.insert("LOGIN_WINDOW_SECONDS".into(), "60".into());
    })
    .await;
    let email = unique_email("limited");
    register(&app, "Limited", &email, PASSWORD).await;
    for _ in 0..3 {
        let res = post(
            &app,
            "/api/auth/login",
            json!({"email": email, "password": "bad-password"}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused inside the window.
    let res = post(
        &app,
        "/api/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    let retry_after: u64 = res
        .headers()
        .get("retry-after")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let (status, body) = read(res).await;
    assert_error(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_REQUESTS",
    );

    // Another client address is not affected (loopback is all of 127/8).
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let res = other
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Nor is another account from the same address.
    let second = unique_email("unlimited");
    register(&app, "Other", &second, PASSWORD).await;
    login_session(&app, &second, PASSWORD).await;
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn successful_login_resets_the_failure_count(db: PgPool) {
    let app = spawn_with(db, |env| {
        env.insert("LOGIN_MAX_ATTEMPTS".into(), "2".into());
    })
    .await;
    let email = unique_email("reset-count");
    register(&app, "Counter", &email, PASSWORD).await;
    for _ in 0..3 {
        let res = post(
            &app,
            "/api/auth/login",
            json!({"email": email, "password": "bad-password"}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        login_session(&app, &email, PASSWORD).await;
    }
    app.shutdown().await.unwrap();
}

async fn refresh(app: &TestApp, token: &str) -> (StatusCode, serde_json::Value) {
    read(post(app, "/api/auth/refresh", json!({"refreshToken": token})).await).await
}

#[sqlx::test(migrations = false)]
async fn refresh_rotates_and_reuse_revokes_the_whole_family(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("rotate");
    register(&app, "Rotator", &email, PASSWORD).await;
    let first = login_session(&app, &email, PASSWORD).await;
    let r1 = first["refreshToken"].as_str().unwrap().to_string();
    // A parallel session of the same user must survive the other's revocation.
    let other = login_session(&app, &email, PASSWORD).await;

    let (status, body) = refresh(&app, &r1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r2 = body["data"]["refreshToken"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    let access = body["data"]["accessToken"].as_str().unwrap();
    assert_eq!(
        read(get_auth(&app, "/api/auth/me", access).await).await.0,
        StatusCode::OK
    );

    // r1 again: reuse. The family (including r2) is revoked.
    let (status, body) = refresh(&app, &r1).await;
    let message = assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert!(message.contains("already used"), "{message}");
    let (status, body) = refresh(&app, &r2).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    let (status, body) = refresh(&app, other["refreshToken"].as_str().unwrap()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "other sessions are untouched: {body}"
    );

    let (status, body) = refresh(&app, "not-a-token").await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn expired_refresh_tokens_are_refused(db: PgPool) {
    let app = spawn_with(db, |env| {
        env.insert("JWT_REFRESH_TTL_SECONDS".into(), "1".into());
    })
    .await;
    let email = unique_email("expire");
    register(&app, "Expiring", &email, PASSWORD).await;
    let session = login_session(&app, &email, PASSWORD).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = refresh(&app, session["refreshToken"].as_str().unwrap()).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn logout_revokes_the_refresh_token(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("logout");
    register(&app, "Leaver", &email, PASSWORD).await;
    let session = login_session(&app, &email, PASSWORD).await;
    let token = session["refreshToken"].as_str().unwrap();
    for _ in 0..2 {
        // Idempotent.
        let (status, body) =
            read(post(&app, "/api/auth/logout", json!({"refreshToken": token})).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = refresh(&app, token).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn forgot_password_never_reveals_accounts_and_reset_ends_sessions(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("forgot");
    register(&app, "Forgetful", &email, PASSWORD).await;
    let session = login_session(&app, &email, PASSWORD).await;

    let ghost = unique_email("ghost");
    let (status_ghost, body_ghost) =
        read(post(&app, "/api/auth/forgot-password", json!({"email": ghost})).await).await;
    let (status_real, body_real) =
        read(post(&app, "/api/auth/forgot-password", json!({"email": email})).await).await;
    assert_eq!(status_ghost, StatusCode::OK);
    assert_eq!(status_real, StatusCode::OK);
    assert_eq!(body_ghost, body_real, "identical answers");
    assert!(outbox_mail(&app, &ghost, "password_reset").await.is_none());
    let mail = outbox_mail(&app, &email, "password_reset")
        .await
        .expect("reset mail");
    assert_eq!(mail["name"], "Forgetful");
    let otp = mail["otp"].as_str().unwrap().to_string();

    let new_password = "brand-new-password";
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    let (status, body) = read(
        post(
            &app,
            "/api/auth/reset-password",
            json!({"email": email, "otp": wrong, "newPassword": new_password}),
        )
        .await,
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let (status, body) = read(
        post(
            &app,
            "/api/auth/reset-password",
            json!({"email": email, "otp": otp, "newPassword": "short"}),
        )
        .await,
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

    let (status, body) = read(
        post(
            &app,
            "/api/auth/reset-password",
            json!({"email": email, "otp": otp, "newPassword": new_password}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Old sessions and the old password are gone; the code was single use.
    let (status, _) = refresh(&app, session["refreshToken"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let res = post(
        &app,
        "/api/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let fresh = login_session(&app, &email, new_password).await;
    assert_eq!(
        fresh["emailVerified"], true,
        "the reset code proved the address"
    );
    let (status, _) = read(
        post(
            &app,
            "/api/auth/reset-password",
            json!({"email": email, "otp": otp, "newPassword": "third-password"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn deactivated_users_cannot_log_in_refresh_or_read_me(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("deact");
    let user = register(&app, "Soon Gone", &email, PASSWORD).await;
    let session = login_session(&app, &email, PASSWORD).await;
    let admin = app.admin_token().await;

    let id = user["id"].as_str().unwrap();
    let (status, body) = read(
        post_auth(
            &app,
            &format!("/api/admin/users/{id}/deactivate"),
            &admin,
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["isActive"], false);

    let (status, body) = read(
        post(
            &app,
            "/api/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (status, body) = refresh(&app, session["refreshToken"].as_str().unwrap()).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let (status, body) = read(
        get_auth(
            &app,
            "/api/auth/me",
            session["accessToken"].as_str().unwrap(),
        )
        .await,
    )
    .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // No reset mail for a deactivated account either.
    let (status, _) =
        read(post(&app, "/api/auth/forgot-password", json!({"email": email})).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(outbox_mail(&app, &email, "password_reset").await.is_none());

    // Reactivation restores login.
    let (status, body) = read(
        app.client
            .patch(app.url(&format!("/api/admin/users/{id}")))
            .bearer_auth(&admin)
            .json(&json!({"isActive": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    login_session(&app, &email, PASSWORD).await;
    let _ = ADMIN_EMAIL;
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn auth_forms_accept_urlencoded_bodies(db: PgPool) {
    let app = spawn(db).await;
    let res = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email={}&password={}",
            ADMIN_EMAIL.replace('@', "%40"),
            ADMIN_PASSWORD
        ))
        .send()
        .await
        .unwrap();
    let (status, body) = read(res).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["data"]["accessToken"].is_string());
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn concurrent_refreshes_of_one_token_let_at_most_one_through(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("race");
    register(&app, "Racer", &email, PASSWORD).await;
    let session = login_session(&app, &email, PASSWORD).await;
    let token = session["refreshToken"].as_str().unwrap();
    let (a, b) = tokio::join!(refresh(&app, token), refresh(&app, token));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::UNAUTHORIZED],
        "{a:?} {b:?}"
    );
    // The loser's attempt counts as reuse: the winner's new token is revoked too.
    let winner = if a.0 == StatusCode::OK { a.1 } else { b.1 };
    let (status, _) = refresh(&app, winner["data"]["refreshToken"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn concurrent_registrations_of_one_email_create_one_account(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("twin");
    let body = json!({"name": "Twin", "email": email, "password": PASSWORD});
    let (a, b) = tokio::join!(
        post(&app, "/api/auth/register", body.clone()),
        post(&app, "/api/auth/register", body.clone())
    );
    assert_eq!(
        [a.status(), b.status()],
        [StatusCode::ACCEPTED, StatusCode::ACCEPTED]
    );
    let accounts: i64 = sqlx::query_scalar("select count(*) from users where lower(email) = $1")
        .bind(&email)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(accounts, 1);
    let mut mails: Vec<String> =
        sqlx::query_scalar("select template from email_outbox where to_email = $1")
            .bind(&email)
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    mails.sort();
    assert_eq!(
        mails,
        ["registration_attempt", "verify_email"],
        "the winner got its code, the loser's attempt a notice"
    );
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn enqueued_mail_notifies_listeners_on_commit(db: PgPool) {
    let app = spawn(db).await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&app.state.db)
        .await
        .unwrap();
    listener
        .listen(mas_server::services::outbox::NOTIFY_CHANNEL)
        .await
        .unwrap();
    let email = unique_email("notify");
    register(&app, "Notified", &email, PASSWORD).await;
    let note = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .expect("notification within 5s")
        .unwrap();
    let id: uuid::Uuid = note.payload().parse().unwrap();
    let to: String = sqlx::query_scalar("select to_email from email_outbox where id = $1")
        .bind(id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(to, email);

    // The API other modules use directly.
    let mut conn = app.state.db.acquire().await.unwrap();
    let message = mas_server::services::outbox::EmailMessage::new(
        "someone@example.com",
        "booking_confirmed",
        json!({"slot": "2026-12-01T10:00:00Z"}),
    );
    let id = mas_server::services::outbox::enqueue_email(&mut conn, &message)
        .await
        .unwrap();
    let (template, payload): (String, serde_json::Value) =
        sqlx::query_as("select template, payload from email_outbox where id = $1")
            .bind(id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(template, "booking_confirmed");
    assert_eq!(payload["slot"], "2026-12-01T10:00:00Z");
    let bad = mas_server::services::outbox::EmailMessage::new("not-an-address", "x", json!({}));
    assert!(
        mas_server::services::outbox::enqueue_email(&mut conn, &bad)
            .await
            .is_err()
    );
    drop(conn);
    drop(listener);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn auth_and_admin_routes_are_in_the_openapi_document(db: PgPool) {
    let app = spawn(db).await;
    let (status, doc) = read(
        app.client
            .get(app.url("/api/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (path, method) in [
        ("/api/auth/register", "post"),
        ("/api/auth/verify-email", "post"),
        ("/api/auth/resend-verification", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/refresh", "post"),
        ("/api/auth/logout", "post"),
        ("/api/auth/me", "get"),
        ("/api/auth/forgot-password", "post"),
        ("/api/auth/reset-password", "post"),
        ("/api/admin/users", "get"),
        ("/api/admin/users", "post"),
        ("/api/admin/users/{id}", "get"),
        ("/api/admin/users/{id}", "patch"),
        ("/api/admin/users/{id}/deactivate", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["schemas"]["Session"].is_object());
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn reset_and_verification_mails_are_capped_per_account(db: PgPool) {
    let app = spawn(db).await;
    let email = unique_email("flood");
    register(&app, "Flooded", &email, PASSWORD).await;
    let cap = mas_server::services::auth::MAIL_MAX_PER_WINDOW as i64;
    for path in ["/api/auth/forgot-password", "/api/auth/resend-verification"] {
        for _ in 0..cap + 2 {
            let (status, _) = read(post(&app, path, json!({"email": email})).await).await;
            assert_eq!(status, StatusCode::OK, "the answer never changes");
        }
    }
    let count = |template: &'static str| {
        let db = app.state.db.clone();
        let email = email.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from email_outbox where to_email = $1 and template = $2",
            )
            .bind(email)
            .bind(template)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    assert_eq!(count("password_reset").await, cap);
    // One from registration plus the capped resends.
    assert_eq!(count("verify_email").await, 1 + cap);
    app.shutdown().await.unwrap();
}

async fn login_from(app: &TestApp, forwarded_for: &str, email: &str, password: &str) -> StatusCode {
    app.client
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[sqlx::test(migrations = false)]
async fn behind_a_trusted_proxy_login_limits_follow_the_forwarded_client(db: PgPool) {
    let app = spawn_with(db, |env| {
        env.insert("LOGIN_MAX_ATTEMPTS".into(), "2".into());
        env.insert("LOGIN_WINDOW_SECONDS".into(), "60".into());
        env.insert("TRUSTED_PROXY_HOPS".into(), "1".into());
    })
    .await;
    let email = unique_email("proxied");
    register(&app, "Proxied", &email, PASSWORD).await;
    // Every request comes from the same peer (the "ingress"); the ingress appends
    // the real client, anything left of it is whatever the client sent.
    for _ in 0..2 {
        let status = login_from(&app, "198.51.100.1, 203.0.113.10", &email, "bad-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let status = login_from(&app, "198.51.100.1, 203.0.113.10", &email, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Changing the untrusted left part does not escape the limit.
    let status = login_from(&app, "192.0.2.99, 203.0.113.10", &email, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same ingress has its own counter.
    let status = login_from(&app, "203.0.113.20", &email, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    // Without the header the peer address is used, also independent.
    let res = post(
        &app,
        "/api/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn without_trusted_proxies_x_forwarded_for_is_ignored(db: PgPool) {
    let app = spawn_with(db, |env| {
        env.insert("LOGIN_MAX_ATTEMPTS".into(), "2".into());
        env.insert("LOGIN_WINDOW_SECONDS".into(), "60".into());
        env.insert("TRUSTED_PROXY_HOPS".into(), "0".into());
    })
    .await;
    let email = unique_email("spoofer");
    register(&app, "Spoofer", &email, PASSWORD).await;
    for i in 0..2 {
        let status = login_from(&app, &format!("203.0.113.{i}"), &email, "bad-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // A fresh spoofed address does not reset the limit of the real peer.
    let status = login_from(&app, "203.0.113.77", &email, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    app.shutdown().await.unwrap();
}
