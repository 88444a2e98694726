//! Secrets Manager reads against the moto emulator started by scripts/services.

use mas_operator::aws_secrets::{self, SecretsError};
use uuid::Uuid;

async fn client() -> aws_sdk_secretsmanager::Client {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run the tests through scripts/test");
    aws_secrets::client().await
}

#[tokio::test]
async fn json_and_plain_secrets_are_merged() {
    let sm = client().await;
    let prefix = format!("test/{}", Uuid::new_v4().simple());
    let app = format!("{prefix}/app");
    let jwt = format!("{prefix}/jwt-secret");
    sm.create_secret()
        .name(&app)
        .secret_string(r#"{"DATABASE_URL":"postgres://db/mas","REDIS_URL":"redis://r"}"#)
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name(&jwt)
        .secret_string("j".repeat(40))
        .send()
        .await
        .unwrap();

    let got = aws_secrets::fetch(&sm, &[app.clone(), jwt.clone()])
        .await
        .unwrap();
    assert_eq!(got["DATABASE_URL"], b"postgres://db/mas");
    assert_eq!(got["REDIS_URL"], b"redis://r");
    assert_eq!(got["JWT_SECRET"], "j".repeat(40).as_bytes());

    // A rotated value is what the next read returns.
    sm.put_secret_value()
        .secret_id(&jwt)
        .secret_string("k".repeat(40))
        .send()
        .await
        .unwrap();
    let got = aws_secrets::fetch(&sm, &[jwt]).await.unwrap();
    assert_eq!(got["JWT_SECRET"], "k".repeat(40).as_bytes());
}

#[tokio::test]
async fn missing_and_conflicting_secrets_are_clear_errors() {
    let sm = client().await;
    let prefix = format!("test/{}", Uuid::new_v4().simple());
    let missing = format!("{prefix}/missing");
    assert_eq!(
        aws_secrets::fetch(&sm, std::slice::from_ref(&missing))
            .await
            .unwrap_err(),
        SecretsError::NotFound(missing)
    );

    let a = format!("{prefix}/a");
    let b = format!("{prefix}/b");
    for id in [&a, &b] {
        sm.create_secret()
            .name(id)
            .secret_string(r#"{"SAME":"value-that-must-not-leak"}"#)
            .send()
            .await
            .unwrap();
    }
    let err = aws_secrets::fetch(&sm, &[a, b]).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("SAME") && text.contains("both"), "{text}");
    assert!(!text.contains("value-that-must-not-leak"));
}
