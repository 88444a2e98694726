use serde_json::Value;
use sqlx::PgPool;

use crate::support::TestApp;

#[sqlx::test(migrations = false)]
async fn health_reports_dependencies(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let res = app.client.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"]["status"], "up");
    assert_eq!(body["checks"]["redis"]["status"], "up");

    let live: Value = app
        .client
        .get(app.url("/api/health/live"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(live["success"], true);
    app.shutdown().await.unwrap();
}
