//! The shared Redis instance (`REDIS_URL`). Areas whose keys could collide use their
//! own database number: [`super::auth::REDIS_DB`], [`super::queues::REDIS_DB`],
//! [`super::realtime::REDIS_DB`]; everything else uses `REDIS_URL` as it is.

use super::app::required_env;

/// `REDIS_URL` from the environment, pointed at database `db`.
pub fn redis_url_with_db(db: u32) -> String {
    with_db(&required_env("REDIS_URL"), db)
}

/// `url` with its database number (the path) replaced by, or set to, `db`.
fn with_db(url: &str, db: u32) -> String {
    let mut parsed =
        reqwest::Url::parse(url).unwrap_or_else(|e| panic!("REDIS_URL {url:?} is not a URL: {e}"));
    parsed.set_path(&format!("/{db}"));
    parsed.into()
}

#[test]
fn with_db_replaces_or_adds_the_database_number() {
    for (url, want) in [
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379/3"),
        ("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/3"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/3"),
        (
            "redis://:pw@host:1/12?protocol=resp3",
            "redis://:pw@host:1/3?protocol=resp3",
        ),
    ] {
        assert_eq!(with_db(url, 3), want, "{url}");
    }
}
