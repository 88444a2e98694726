//! Secrets Manager on moto (scripts/services), with the env the operator child inherits.

/// Secrets Manager on moto, with the same env the operator child process inherits.
pub async fn secrets_manager() -> aws_sdk_secretsmanager::Client {
    for var in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(
            std::env::var(var).is_ok_and(|v| !v.is_empty()),
            "{var} is not set: run scripts/test (moto env)"
        );
    }
    mas_operator::aws_secrets::client().await
}
