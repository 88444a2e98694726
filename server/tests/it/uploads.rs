//! Presigned uploads against the moto S3 emulator (started by scripts/services).
//! moto does not verify signatures, so the URL contents are asserted explicitly and
//! the object is really written and read back through the presigned URLs.

use mas_server::auth::Role;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::{TestApp, create_user};

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run the tests through scripts/test")
}

async fn app_with_bucket(db: PgPool) -> (TestApp, String) {
    let bucket = format!("uploads-{}", Uuid::new_v4().simple());
    let app = TestApp::spawn_with(db, |env| {
        env.insert("S3_BUCKET".into(), bucket.clone());
        env.insert("S3_ENDPOINT".into(), endpoint());
        env.insert("AWS_REGION".into(), "us-east-1".into());
        env.insert("S3_PRESIGN_TTL_SECONDS".into(), "600".into());
    })
    .await;
    let storage = app.state.storage().await.unwrap();
    storage
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    (app, bucket)
}

#[sqlx::test(migrations = false)]
async fn presigned_upload_round_trip(db: PgPool) {
    let (app, bucket) = app_with_bucket(db).await;
    let student = create_user(&app.state, Role::Student).await;
    let (user, bearer) = (student.id, student.token);
    let body = b"%PDF-1.4 resume".to_vec();

    let res = app
        .client
        .post(app.url("/api/uploads"))
        .bearer_auth(&bearer)
        .json(&json!({"purpose":"resume","fileName":"../My CV.pdf","contentType":"application/pdf","sizeBytes": body.len()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ticket: Value = res.json().await.unwrap();
    let url = ticket["data"]["uploadUrl"].as_str().unwrap().to_string();
    let key = ticket["data"]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with(&format!("resume/{user}/")), "key {key}");
    assert!(key.ends_with("-My_CV.pdf"), "key {key}");
    // Path-style URL on the configured endpoint, SigV4 query signature bound to the content type.
    assert!(
        url.starts_with(&format!("{}/{bucket}/resume/{user}/", endpoint())),
        "url {url}"
    );
    assert!(
        url.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256"),
        "url {url}"
    );
    assert!(url.contains("X-Amz-Expires=600"), "url {url}");
    assert!(url.contains("X-Amz-Signature="), "url {url}");
    let signed = url
        .split("X-Amz-SignedHeaders=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(signed.contains("content-type"), "signed headers {signed}");
    assert!(signed.contains("content-length"), "signed headers {signed}");

    let put = reqwest::Client::new()
        .put(&url)
        .header("content-type", "application/pdf")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "PUT {}", put.status());

    let res: Value = app
        .client
        .get(app.url(&format!("/api/uploads/download?key={key}")))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let download = res["data"]["downloadUrl"].as_str().unwrap();
    let got = reqwest::get(download).await.unwrap().bytes().await.unwrap();
    assert_eq!(got.as_ref(), body.as_slice());

    // Someone else's key is refused; an admin may read it.
    let other = create_user(&app.state, Role::Student).await.token;
    let res = app
        .client
        .get(app.url(&format!("/api/uploads/download?key={key}")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let admin = create_user(&app.state, Role::Admin).await.token;
    let res = app
        .client
        .get(app.url(&format!("/api/uploads/download?key={key}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn bad_upload_requests_are_rejected(db: PgPool) {
    let (app, _bucket) = app_with_bucket(db).await;
    let bearer = create_user(&app.state, Role::Student).await.token;
    let cases = [
        (
            json!({"purpose":"avatar","fileName":"a.gif","contentType":"image/gif","sizeBytes":10}),
            "not allowed",
        ),
        (
            json!({"purpose":"avatar","fileName":"a.png","contentType":"image/png","sizeBytes":99_000_000}),
            "exceeds",
        ),
        (
            json!({"purpose":"resume","fileName":"...","contentType":"text/plain","sizeBytes":10}),
            "fileName",
        ),
        (
            json!({"purpose":"secrets","fileName":"a.txt","contentType":"text/plain","sizeBytes":10}),
            "purpose",
        ),
    ];
    for (body, needle) in cases {
        let res = app
            .client
            .post(app.url("/api/uploads"))
            .bearer_auth(&bearer)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["success"], false);
        let message = err["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    }
    let res = app
        .client
        .post(app.url("/api/uploads"))
        .json(&json!({"purpose":"resume","fileName":"a.pdf","contentType":"application/pdf","sizeBytes":10}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    app.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn uploads_answer_503_when_storage_is_not_configured(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let bearer = create_user(&app.state, Role::Student).await.token;
    let res = app
        .client
        .post(app.url("/api/uploads"))
        .bearer_auth(&bearer)
        .json(&json!({"purpose":"resume","fileName":"a.pdf","contentType":"application/pdf","sizeBytes":10}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let err: Value = res.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("S3_DOCUMENTS_BUCKET")
    );
    app.shutdown().await.unwrap();
}
