//! The four buckets against moto: each purpose lands in its bucket, the object is
//! really PUT through the presigned URL, confirmed by a HEAD (size and type must match
//! what was announced), read back through a signed GET (private) or the public origin
//! (banners); other users' uploads are 404; unconfirmed uploads expire and the cleanup
//! deletes their objects.

use std::collections::HashMap;
use std::time::Duration;

use mas_server::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::{TestApp, create_user};

struct Buckets {
    documents: String,
    recordings: String,
    assets: String,
    invoices: String,
}

async fn app_with_buckets(
    db: PgPool,
    adjust: impl FnOnce(&mut HashMap<String, String>),
) -> (TestApp, Buckets) {
    let tag = &Uuid::new_v4().simple().to_string()[..10];
    let b = Buckets {
        documents: format!("docs-{tag}"),
        recordings: format!("recs-{tag}"),
        assets: format!("assets-{tag}"),
        invoices: format!("inv-{tag}"),
    };
    let names = [
        ("S3_DOCUMENTS_BUCKET", b.documents.clone()),
        // The seed's names are accepted.
        ("AWS_S3_BUCKET_NAME", b.recordings.clone()),
        ("AWS_S3_BANNER_BUCKET", b.assets.clone()),
        ("S3_INVOICES_BUCKET", b.invoices.clone()),
    ];
    let app = TestApp::spawn_with(db, |env| {
        for (k, v) in names {
            env.insert(k.into(), v);
        }
        env.insert(
            "S3_ENDPOINT".into(),
            std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL"),
        );
        adjust(env);
    })
    .await;
    let storage = app.state.storage().await.unwrap();
    for name in [&b.documents, &b.recordings, &b.assets, &b.invoices] {
        storage
            .client()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap();
    }
    (app, b)
}

async fn ticket(
    app: &TestApp,
    token: &str,
    purpose: &str,
    name: &str,
    ct: &str,
    size: usize,
) -> (u16, Value) {
    app.call(
        Method::POST,
        "/api/uploads",
        Some(token),
        Some(json!({"purpose": purpose, "fileName": name, "contentType": ct, "sizeBytes": size})),
    )
    .await
}

async fn put(url: &str, ct: &str, body: Vec<u8>) {
    let res = reqwest::Client::new()
        .put(url)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "PUT {}", res.status());
}

async fn head_exists(app: &TestApp, bucket: &str, key: &str) -> bool {
    let storage = app.state.storage().await.unwrap();
    storage
        .client()
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
}

#[sqlx::test(migrations = false)]
async fn each_purpose_is_confirmed_in_its_own_bucket(db: PgPool) {
    let (app, b) = app_with_buckets(db, |env| {
        env.insert(
            "MAS_ASSETS_CDN_URL".into(),
            "https://cdn.example.com/".into(),
        );
        env.insert("S3_PRIVATE_GET_TTL_SECONDS".into(), "60".into());
    })
    .await;
    let student = create_user(&app.state, Role::Student).await;
    let admin = create_user(&app.state, Role::Admin).await;

    for (who, purpose, ct, bucket) in [
        (&student, "resume", "application/pdf", &b.documents),
        (&student, "recording", "video/webm", &b.recordings),
        (&admin, "banner", "image/png", &b.assets),
    ] {
        let body = format!("{purpose} bytes {}", Uuid::new_v4()).into_bytes();
        let (status, t) = ticket(&app, &who.token, purpose, "file.bin", ct, body.len()).await;
        assert_eq!(status, 200, "{purpose}: {t}");
        let t = &t["data"];
        let id = t["uploadId"].as_str().unwrap().to_string();
        let url = t["uploadUrl"].as_str().unwrap();
        assert!(
            url.contains(&format!("/{bucket}/{purpose}/{}/", who.id)),
            "{url}"
        );

        // Confirming before the PUT: 409, the row stays pending.
        let confirm = format!("/api/uploads/{id}/confirm");
        let (status, res) = app
            .call(Method::POST, &confirm, Some(&who.token), None)
            .await;
        assert_eq!(status, 409, "{res}");
        put(url, ct, body.clone()).await;
        // Someone else cannot confirm or see it.
        let other = create_user(&app.state, Role::Student).await.token;
        let (status, _) = app.call(Method::POST, &confirm, Some(&other), None).await;
        assert_eq!(status, 404);
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/api/uploads/{id}"),
                Some(&other),
                None,
            )
            .await;
        assert_eq!(status, 404);

        let (status, res) = app
            .call(Method::POST, &confirm, Some(&who.token), None)
            .await;
        assert_eq!(status, 200, "{purpose}: {res}");
        assert_eq!(res["data"]["status"], "confirmed");
        assert_eq!(res["data"]["bucket"], bucket.as_str());
        assert_eq!(res["data"]["sizeBytes"], body.len());
        assert_eq!(res["data"]["ownerId"], who.id.to_string());
        // Again: the same row.
        let (status, again) = app
            .call(Method::POST, &confirm, Some(&who.token), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(again["data"]["confirmedAt"], res["data"]["confirmedAt"]);

        let (status, dl) = app
            .call(
                Method::GET,
                &format!("/api/uploads/{id}/download"),
                Some(&who.token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{dl}");
        let dl_url = dl["data"]["downloadUrl"].as_str().unwrap();
        let key = t["key"].as_str().unwrap();
        if purpose == "banner" {
            // Public: the CDN URL, no signature.
            assert_eq!(dl_url, format!("https://cdn.example.com/{key}"));
        } else {
            assert!(dl_url.contains("X-Amz-Expires=60"), "{dl_url}");
            let got = reqwest::get(dl_url).await.unwrap().bytes().await.unwrap();
            assert_eq!(got.as_ref(), body.as_slice());
        }
    }

    // Banners are for admins.
    let (status, _) = ticket(&app, &student.token, "banner", "b.png", "image/png", 10).await;
    assert_eq!(status, 403);
}

#[sqlx::test(migrations = false)]
async fn an_object_that_differs_from_the_announcement_is_refused_and_deleted(db: PgPool) {
    let (app, b) = app_with_buckets(db, |_| {}).await;
    let student = create_user(&app.state, Role::Student).await;
    // moto does not enforce the signed Content-Type/Length, so a client can put
    // something else: the HEAD at confirm catches it.
    let (_, t) = ticket(
        &app,
        &student.token,
        "document",
        "a.pdf",
        "application/pdf",
        5,
    )
    .await;
    let t = &t["data"];
    let key = t["key"].as_str().unwrap().to_string();
    put(
        t["uploadUrl"].as_str().unwrap(),
        "application/zip",
        b"12345".to_vec(),
    )
    .await;
    assert!(head_exists(&app, &b.documents, &key).await);
    let id = t["uploadId"].as_str().unwrap();
    let (status, res) = app
        .call(
            Method::POST,
            &format!("/api/uploads/{id}/confirm"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(status, 409, "{res}");
    assert!(!head_exists(&app, &b.documents, &key).await);

    // Wrong size.
    let (_, t) = ticket(
        &app,
        &student.token,
        "document",
        "b.pdf",
        "application/pdf",
        5,
    )
    .await;
    let t = &t["data"];
    put(
        t["uploadUrl"].as_str().unwrap(),
        "application/pdf",
        b"1234567".to_vec(),
    )
    .await;
    let id = t["uploadId"].as_str().unwrap();
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/uploads/{id}/confirm"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/uploads/{id}/download"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(status, 409);
}

#[sqlx::test(migrations = false)]
async fn unconfirmed_uploads_expire_and_their_objects_are_deleted(db: PgPool) {
    let (app, b) = app_with_buckets(db, |env| {
        env.insert("S3_PRESIGN_TTL_SECONDS".into(), "1".into());
        env.insert("UPLOAD_CONFIRM_WINDOW_SECONDS".into(), "1".into());
    })
    .await;
    let student = create_user(&app.state, Role::Student).await;
    let (_, t) = ticket(
        &app,
        &student.token,
        "resume",
        "cv.pdf",
        "application/pdf",
        3,
    )
    .await;
    let t = t["data"].clone();
    let key = t["key"].as_str().unwrap().to_string();
    put(
        t["uploadUrl"].as_str().unwrap(),
        "application/pdf",
        b"abc".to_vec(),
    )
    .await;
    // A confirmed one survives the cleanup.
    let (_, kept) = ticket(
        &app,
        &student.token,
        "resume",
        "keep.pdf",
        "application/pdf",
        3,
    )
    .await;
    let kept = kept["data"].clone();
    put(
        kept["uploadUrl"].as_str().unwrap(),
        "application/pdf",
        b"xyz".to_vec(),
    )
    .await;
    let kept_id = kept["uploadId"].as_str().unwrap();
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/uploads/{kept_id}/confirm"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(status, 200);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let id = t["uploadId"].as_str().unwrap();
    let (status, res) = app
        .call(
            Method::POST,
            &format!("/api/uploads/{id}/confirm"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(status, 409, "{res}");
    // What the cleanup job runs.
    let deleted = mas_server::services::uploads::expire(&app.state)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(!head_exists(&app, &b.documents, &key).await);
    assert!(head_exists(&app, &b.documents, kept["key"].as_str().unwrap()).await);
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/uploads/{id}"),
            Some(&student.token),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[sqlx::test(migrations = false)]
async fn an_unset_bucket_disables_only_its_purposes(db: PgPool) {
    let app = TestApp::spawn_with(db, |env| {
        env.insert("S3_DOCUMENTS_BUCKET".into(), "docs-only".into());
        env.insert(
            "S3_ENDPOINT".into(),
            std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL"),
        );
    })
    .await;
    let student = create_user(&app.state, Role::Student).await.token;
    let (status, res) = ticket(&app, &student, "recording", "r.webm", "video/webm", 10).await;
    assert_eq!(status, 503, "{res}");
    assert_eq!(res["error"]["code"], "INTEGRATION_DISABLED");
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("S3_RECORDINGS_BUCKET")
    );
    let (status, res) = ticket(&app, &student, "resume", "r.pdf", "application/pdf", 10).await;
    assert_eq!(status, 200, "{res}");
    // Health does not depend on the buckets.
    assert_eq!(
        app.call(Method::GET, "/api/health", None, None).await.0,
        200
    );
}
