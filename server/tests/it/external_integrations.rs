//! `GET /api/admin/integrations` for every integration this area adds, both unset and
//! configured (settings shown, secrets never), and the CDN asset URLs.

use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

use crate::support::TestApp;
use crate::support::users::seeded_admin;

/// (name, what `missing` lists when nothing is set, HTTP client or not)
const UNSET: &[(&str, &[&str], bool)] = &[
    (
        "google",
        &[
            "GOOGLE_CLIENT_ID",
            "GOOGLE_CLIENT_SECRET",
            "GOOGLE_REDIRECT_URI",
        ],
        true,
    ),
    (
        "google-calendar",
        &[
            "GOOGLE_CLIENT_ID",
            "GOOGLE_CLIENT_SECRET",
            "GOOGLE_CALENDAR_REFRESH_TOKEN",
        ],
        true,
    ),
    (
        "google-drive",
        &[
            "GOOGLE_CLIENT_ID",
            "GOOGLE_CLIENT_SECRET",
            "GOOGLE_DRIVE_REDIRECT_URI",
            "TOKEN_ENCRYPTION_KEY",
        ],
        true,
    ),
    ("judge0", &["JUDGE0_URL"], true),
    (
        "elevenlabs",
        &[
            "ELEVENLABS_API_KEY",
            "ELEVENLABS_AGENT_ID",
            "ELEVENLABS_AGENT_PHONE_NUMBER_ID",
            "ELEVENLABS_WEBHOOK_SECRET",
        ],
        true,
    ),
    ("graphy", &["GRAPHY_MID", "GRAPHY_API_KEY"], true),
    ("mr-hire", &["MR_HIRE_BACKEND_URL"], true),
    (
        "class-agent",
        &["CLASS_AGENT_URL", "CLASS_AGENT_API_KEY"],
        true,
    ),
    ("cdn", &["MAS_ASSETS_CDN_URL"], false),
];

/// Every variable set; the secrets end in `-secret-value` so one search finds a leak.
const ALL_SET: &[(&str, &str)] = &[
    ("GOOGLE_CLIENT_ID", "client.apps.googleusercontent.com"),
    ("GOOGLE_CLIENT_SECRET", "google-secret-value"),
    (
        "GOOGLE_REDIRECT_URI",
        "https://api.example.com/api/auth/google/callback",
    ),
    (
        "GOOGLE_CALENDAR_REFRESH_TOKEN",
        "calendar-refresh-secret-value",
    ),
    ("GOOGLE_CALENDAR_ID", "mentoring@group.calendar.google.com"),
    (
        "GOOGLE_DRIVE_REDIRECT_URI",
        "https://api.example.com/api/integrations/google-drive/callback",
    ),
    (
        "TOKEN_ENCRYPTION_KEY",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ),
    ("JUDGE0_URL", "https://judge0-ce.p.rapidapi.com"),
    ("JUDGE0_API_KEY", "judge0-secret-value"),
    ("ELEVENLABS_API_KEY", "xi-secret-value"),
    ("ELEVENLABS_AGENT_ID", "agent_aarya"),
    ("ELEVENLABS_AGENT_PHONE_NUMBER_ID", "phnum_aarya"),
    ("ELEVENLABS_WEBHOOK_SECRET", "wsec-secret-value"),
    ("GRAPHY_MID", "masmerchant"),
    ("GRAPHY_API_KEY", "graphy-secret-value"),
    ("MR_HIRE_BACKEND_URL", "https://hire.example.com/api"),
    ("MR_HIRE_API_KEY", "hire-secret-value"),
    ("CLASS_AGENT_URL", "https://agent.example.com"),
    ("CLASS_AGENT_API_KEY", "agent-secret-value"),
    ("MAS_ASSETS_CDN_URL", "https://cdn.example.com"),
];

fn row<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} is listed"))
}

#[sqlx::test(migrations = false)]
async fn every_integration_is_listed_unset_with_what_to_set(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = seeded_admin(&app.state).await;
    let (s, list) = app
        .call(
            Method::GET,
            "/api/admin/integrations",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, 200);
    for (name, missing, http) in UNSET {
        let r = row(&list, name);
        assert_eq!(r["configured"], false, "{r}");
        assert_eq!(r["missing"], serde_json::json!(missing), "{name}");
        assert_eq!(r["settings"], serde_json::json!({}), "{name}");
        assert_eq!(r["circuit"].is_object(), *http, "{name}: {r}");
    }
    let (s, _) = app.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(s, 200, "unset integrations never fail health");
}

#[sqlx::test(migrations = false)]
async fn every_integration_is_listed_configured_without_secrets(db: PgPool) {
    let app = TestApp::spawn_with(db, |env| {
        env.extend(ALL_SET.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    })
    .await;
    let admin = seeded_admin(&app.state).await;
    let (s, list) = app
        .call(
            Method::GET,
            "/api/admin/integrations",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, 200);
    for (name, _, http) in UNSET {
        let r = row(&list, name);
        assert_eq!(r["configured"], true, "{r}");
        assert_eq!(r["missing"], serde_json::json!([]), "{name}");
        assert_eq!(r["circuit"].is_object(), *http, "{name}: {r}");
        if *http {
            assert_eq!(r["circuit"]["state"], "closed");
        }
    }
    assert_eq!(
        row(&list, "google")["settings"]["GOOGLE_OIDC_ISSUER"],
        "https://accounts.google.com"
    );
    assert_eq!(
        row(&list, "google-calendar")["settings"]["GOOGLE_CALENDAR_ID"],
        "mentoring@group.calendar.google.com"
    );
    assert_eq!(
        row(&list, "judge0")["settings"]["JUDGE0_AUTH"],
        "rapidapi",
        "inferred from the RapidAPI host"
    );
    assert_eq!(
        row(&list, "elevenlabs")["settings"]["ELEVENLABS_AGENT_ID"],
        "agent_aarya"
    );
    assert_eq!(
        row(&list, "graphy")["settings"]["GRAPHY_API_URL"],
        "https://api.ongraphy.com/public/v1"
    );
    assert_eq!(
        row(&list, "mr-hire")["settings"]["MR_HIRE_BACKEND_URL"],
        "https://hire.example.com/api"
    );
    assert_eq!(
        row(&list, "cdn")["settings"]["MAS_ASSETS_CDN_URL"],
        "https://cdn.example.com"
    );
    let text = list.to_string();
    assert!(!text.contains("secret-value"), "{text}");
    assert!(
        !text.contains("AAECAwQF"),
        "the encryption key is never shown"
    );
}

#[sqlx::test(migrations = false)]
async fn asset_urls_use_the_cdn_when_set(db: PgPool) {
    let cdn_app = TestApp::spawn_with(db.clone(), |env| {
        env.insert(
            "MAS_ASSETS_CDN_URL".into(),
            "https://cdn.example.com/mas".into(),
        );
    })
    .await;
    let page = cdn_app
        .client
        .get(cdn_app.url("/terminal"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"src="https://cdn.example.com/mas/assets/terminal/xterm.js""#),
        "{page}"
    );
    assert!(!page.contains(r#"="/assets/"#), "{page}");

    // A second server on the same pool, started before the first stops (stopping a
    // server closes its pool).
    let app = TestApp::spawn(db).await;
    let page = app
        .client
        .get(app.url("/terminal"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"src="/assets/terminal/xterm.js""#),
        "served from the origin: {page}"
    );
}

#[test]
fn malformed_values_are_one_clear_error() {
    let base: Vec<(String, String)> = [
        ("DATABASE_URL", "postgres://u@127.0.0.1/db"),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("JUDGE0_URL", "http://judge0.local:2358"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (var, value) in [
        ("TOKEN_ENCRYPTION_KEY", "too-short-key-secret-value"),
        ("JUDGE0_URL", "ftp://judge0.local"),
        ("GOOGLE_OIDC_ISSUER", "not a url"),
        ("JUDGE0_AUTH", "basic"),
        ("CODE_RUN_CPU_SECONDS", "60"),
    ] {
        let mut vars: std::collections::HashMap<String, String> = base.iter().cloned().collect();
        vars.insert(var.into(), value.into());
        let err = mas_server::config::Config::from_map(&vars)
            .unwrap_err()
            .to_string();
        assert!(err.contains(var), "{err}");
        assert!(!err.contains("secret-value"), "{err}");
    }
}
