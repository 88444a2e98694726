//! Middleware and lifecycle proofs: CORS per environment, security headers,
//! request ids, readiness with Redis down, graceful shutdown with a request in flight.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::auth::{spawn, spawn_with};
use crate::support::http::{assert_error, post, read};
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

#[sqlx::test(migrations = false)]
async fn development_cors_allows_any_origin(db: PgPool) {
    let app = spawn_with(db, |env| {
        env.insert("APP_ENV".into(), "development".into());
    })
    .await;
    let origin = "https://anything.example.net";
    let res = app
        .client
        .get(app.url("/api/health/live"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], origin);
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");

    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/auth/login"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], origin);
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn production_cors_allows_only_the_configured_origins(db: PgPool) {
    let app = spawn_with(db, |env| {
        env.insert("APP_ENV".into(), "production".into());
        env.insert(
            "CORS_ALLOWED_ORIGINS".into(),
            r#"["https://app.example.com","https://admin.example.com/"]"#.into(),
        );
    })
    .await;
    let get = |origin: Option<&'static str>| {
        let mut req = app.client.get(app.url("/api/health/live"));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };

    for allowed in ["https://app.example.com", "https://admin.example.com"] {
        let res = get(Some(allowed)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{allowed}");
        assert_eq!(res.headers()["access-control-allow-origin"], allowed);
    }

    let res = get(Some("https://evil.example.com")).await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.headers().get("x-request-id").is_some());
    let (status, body) = read(res).await;
    let message = assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert!(message.contains("https://evil.example.com"), "{message}");

    // A disallowed origin cannot use the API either (not just reads).
    let res = app
        .client
        .post(app.url("/api/auth/login"))
        .header("origin", "https://app.example.com.evil.io")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // No Origin (curl, server to server) and the literal "null" origin pass.
    let res = get(None).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = get(Some("null")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Preflight from an allowed origin.
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/auth/login"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn security_headers_and_request_ids(db: PgPool) {
    let app = spawn(db).await;
    for path in ["/api/health/live", "/api/does-not-exist"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        let h = res.headers();
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "SAMEORIGIN"),
            ("referrer-policy", "no-referrer"),
            ("cross-origin-opener-policy", "same-origin"),
            ("x-dns-prefetch-control", "off"),
            ("x-xss-protection", "0"),
        ] {
            assert_eq!(
                h.get(name).map(|v| v.to_str().unwrap()),
                Some(value),
                "{path} {name}"
            );
        }
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .starts_with("max-age=")
        );
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        // A request id is generated when the client sends none.
        let generated = h["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    }

    let res = app
        .client
        .get(app.url("/api/health/live"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-123");
    // Also on errors.
    let res = app
        .client
        .get(app.url("/api/auth/me"))
        .header("x-request-id", "failing-456")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["x-request-id"], "failing-456");
    app.shutdown().await.unwrap();
}

/// A private Redis on a free loopback port, killed on drop.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    async fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/services installs it)");
        let redis = PrivateRedis { child, port };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private redis-server did not start on port {port}");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[sqlx::test(migrations = false)]
async fn health_is_503_when_redis_is_unreachable(db: PgPool) {
    let mut redis = PrivateRedis::start().await;
    let port = redis.port;
    let app = TestApp::spawn_with(db, |env| {
        env.insert("REDIS_URL".into(), format!("redis://127.0.0.1:{port}/0"));
    })
    .await;
    let (status, body) = read(app.client.get(app.url("/api/health")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "up");

    redis.stop();
    let (status, body) = read(app.client.get(app.url("/api/health")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["redis"]["status"], "down");
    assert_eq!(body["checks"]["database"]["status"], "up");

    // Login needs the rate limiter: it fails closed with 503, not open.
    let (status, body) = read(
        post(
            &app,
            "/api/auth/login",
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await,
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    );
    // Liveness does not depend on Redis.
    let live = app
        .client
        .get(app.url("/api/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    app.shutdown().await.unwrap();
}

async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
        .await
        .expect("response within 20s")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[sqlx::test(migrations = false)]
async fn shutdown_finishes_the_request_in_flight_then_returns(db: PgPool) {
    let app = spawn(db).await;
    let addr: SocketAddr = app.addr;
    let body = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).to_string();
    let (head, tail) = body.split_at(12);

    // Headers and part of the body: the login handler is running, waiting for the rest.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{head}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let draining = app.state.shutdown.clone();
    let shutdown = tokio::spawn(app.shutdown());
    tokio::time::timeout(Duration::from_secs(5), draining.cancelled())
        .await
        .expect("shutdown started");
    // No new connections are served meanwhile (the accept loop stops promptly).
    let mut refused = false;
    for _ in 0..50 {
        refused = match tokio::net::TcpStream::connect(addr).await {
            Err(_) => true,
            Ok(mut s) => {
                let _ = s
                    .write_all(b"GET /api/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
                    .await;
                let mut buf = [0u8; 64];
                matches!(
                    tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await,
                    Ok(Ok(0)) | Ok(Err(_))
                )
            }
        };
        if refused {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "new connections were still served during shutdown");
    assert!(
        !shutdown.is_finished(),
        "run returned while a request was in flight"
    );

    stream.write_all(tail.as_bytes()).await.unwrap();
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let json_start = response.find("\r\n\r\n").unwrap() + 4;
    let parsed: Value = serde_json::from_str(&response[json_start..]).unwrap_or_else(|_| {
        // Chunked encoding: take the JSON object between the first { and last }.
        let s = &response[json_start..];
        serde_json::from_str(&s[s.find('{').unwrap()..=s.rfind('}').unwrap()]).unwrap()
    });
    assert!(parsed["data"]["accessToken"].is_string(), "{parsed}");

    let result = tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("run returns after the last request")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}

#[sqlx::test(migrations = false)]
async fn shutdown_does_not_wait_forever_for_a_held_database_connection(db: PgPool) {
    let app = spawn_with(db, |env| {
        env.insert("SHUTDOWN_GRACE_SECONDS".into(), "2".into());
    })
    .await;
    // E.g. a worker's LISTEN connection that is never returned to the pool.
    let held = app.state.db.acquire().await.unwrap();
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(20), app.shutdown())
        .await
        .expect("run returned although a connection was still checked out");
    assert!(result.is_ok(), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    drop(held);
}
