//! `GET /metrics` on the internal listener: requests counted by route template (never the
//! raw path), scrape-time gauges, and nothing of it on the public listener.

use mas_server::auth::Role;
use reqwest::Method;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::app::with_internal_listener;
use crate::support::create_user;

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[sqlx::test(migrations = false)]
async fn requests_are_counted_by_route_template_on_the_internal_listener_only(db: PgPool) {
    let (app, internal) = with_internal_listener(db, |_| {}).await;
    let student = create_user(&app.state, Role::Student).await;
    for _ in 0..2 {
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/api/meetings/{}", Uuid::new_v4()),
                Some(&student.token),
                None,
            )
            .await;
        assert_eq!(status, 404);
    }
    let (status, _) = app.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(status, 200);

    let res = app
        .client
        .get(format!("{internal}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = res.text().await.unwrap();
    assert_eq!(
        sample(
            &text,
            r#"mas_server_http_requests_total{method="GET",route="/api/meetings/{id}",status="404"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"mas_server_http_request_duration_seconds_count{method="GET",route="/api/meetings/{id}"}"#
        ),
        Some(2.0)
    );
    assert!(
        sample(
            &text,
            r#"mas_server_http_requests_total{method="GET",route="/api/health",status="200"}"#
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert!(
        !text.contains("/api/meetings/0") && !text.contains(&student.id.to_string()),
        "raw paths never become labels"
    );
    assert!(
        sample(&text, r#"mas_server_db_pool_connections{state="max"}"#).is_some_and(|n| n >= 1.0)
    );
    assert!(text.contains("mas_server_socketio_connections "), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"mas_server_queue_jobs{queue="emailQueue",state="waiting"}"#
        ),
        Some(0.0),
        "{text}"
    );

    let (status, _) = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, 404, "the public listener does not serve metrics");
}
