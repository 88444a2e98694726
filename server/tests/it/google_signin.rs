//! Sign-in with Google against a real OpenID Provider running locally: the certified
//! `oidc-provider` npm package (tests/node/oidc-provider.mjs) set up with Google's
//! claims, driven through the whole redirect flow (authorize → login → consent →
//! callback) by reqwest with a cookie jar; and once in headless Chromium.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::cookie::Jar;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use crate::support::services::{chromium, node_dir};
use crate::support::{TestApp, logs};

pub const CLIENT_ID: &str = "mas-test-client";
pub const CLIENT_SECRET: &str = "oidc-client-secret-never-logged";

/// The local OpenID Provider (a Node process, killed on drop).
pub struct Provider {
    pub issuer: String,
    _child: Child,
}

impl Provider {
    pub async fn start(redirect_uri: &str) -> Provider {
        let mut child = Command::new("node")
            .arg("oidc-provider.mjs")
            .current_dir(node_dir())
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URI", redirect_uri)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs tests/node/oidc-provider.mjs");
        let stdout = child.stdout.take().expect("provider stdout");
        let mut lines = BufReader::new(stdout).lines();
        let issuer = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("provider output") {
                if let Some(issuer) = line.strip_prefix("READY ") {
                    return issuer.trim().to_string();
                }
            }
            panic!("the OpenID Provider exited before it was ready");
        })
        .await
        .expect("the OpenID Provider starts within 30s");
        // Keep reading: a closed pipe would fail the provider's later writes (EPIPE).
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Provider {
            issuer,
            _child: child,
        }
    }

    pub async fn rotate(&self) -> String {
        let v: Value = reqwest::Client::new()
            .post(format!("{}/__rotate", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["kid"].as_str().unwrap().to_string()
    }

    pub async fn jwks_fetches(&self) -> u64 {
        let v: Value = reqwest::get(format!("{}/__stats", self.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["jwks"].as_u64().unwrap()
    }
}

/// The app with Google sign-in pointed at a fresh local provider.
/// With `landing`, the callback redirects to `{app}/signed-in` (GOOGLE_POST_LOGIN_REDIRECT).
pub async fn app_with_provider(db: PgPool, landing: bool) -> (TestApp, Provider) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let redirect = format!("{base}/api/auth/google/callback");
    let provider = Provider::start(&redirect).await;
    let issuer = provider.issuer.clone();
    let app = TestApp::spawn_on(listener, db, move |env| {
        env.insert("GOOGLE_CLIENT_ID".into(), CLIENT_ID.into());
        env.insert("GOOGLE_CLIENT_SECRET".into(), CLIENT_SECRET.into());
        env.insert("GOOGLE_REDIRECT_URI".into(), redirect);
        env.insert("GOOGLE_OIDC_ISSUER".into(), issuer);
        if landing {
            env.insert(
                "GOOGLE_POST_LOGIN_REDIRECT".into(),
                format!("{base}/signed-in"),
            );
        }
    })
    .await;
    (app, provider)
}

/// A browser-like client: its own cookie jar, redirects followed by hand.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(Arc::new(Jar::default()))
        .redirect(Policy::none())
        // A fresh connection per request: Node closes idle keep-alive connections
        // after a few seconds, and a reused one would race that close (ECONNRESET).
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_string()
    } else {
        format!("{base}{location}")
    }
}

/// Follows the provider's redirects and fills its login and consent forms as `login`
/// until the provider sends the browser to our callback; returns that URL.
async fn authorize(
    client: &reqwest::Client,
    issuer: &str,
    auth_url: &str,
    login: &str,
    callback_prefix: &str,
) -> String {
    let mut next = auth_url.to_string();
    let mut post: Option<Vec<(&str, String)>> = None;
    for _ in 0..20 {
        let res = match post.take() {
            Some(form) => client.post(&next).form(&form).send().await.unwrap(),
            None => client.get(&next).send().await.unwrap(),
        };
        let status = res.status();
        if status.is_redirection() {
            let location = res.headers()["location"].to_str().unwrap().to_string();
            let location = absolute(issuer, &location);
            if location.starts_with(callback_prefix) {
                return location;
            }
            next = location;
            continue;
        }
        let html = res.text().await.unwrap();
        assert!(status.is_success(), "{status}: {html}");
        // The dev interaction pages post back to the same /interaction/{uid} URL.
        if html.contains(r#"name="prompt" value="login""#) {
            post = Some(vec![
                ("prompt", "login".into()),
                ("login", login.into()),
                ("password", "any-password".into()),
            ]);
        } else if html.contains(r#"name="prompt" value="consent""#) {
            post = Some(vec![("prompt", "consent".into())]);
        } else {
            panic!("unexpected provider page: {html}");
        }
    }
    panic!("the provider never redirected back to the callback");
}

struct Started {
    auth_url: String,
}

async fn start(app: &TestApp, client: &reqwest::Client) -> Started {
    let res = client
        .get(app.url("/api/auth/google/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("mas_google_state=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    Started {
        auth_url: res.headers()["location"].to_str().unwrap().to_string(),
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            if k == name {
                (k.into_owned(), value.to_string())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.into()
}

async fn callback(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let res = client.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The whole flow for `login`; returns the callback's answer.
async fn sign_in(app: &TestApp, provider: &Provider, login: &str) -> (u16, Value) {
    let client = browser();
    let started = start(app, &client).await;
    let cb = authorize(
        &client,
        &provider.issuer,
        &started.auth_url,
        login,
        &app.url("/api/auth/google/callback"),
    )
    .await;
    callback(&client, &cb).await
}

#[sqlx::test(migrations = false)]
async fn sign_in_with_google_through_a_real_openid_provider(db: PgPool) {
    let logs = logs::capture();
    let (app, provider) = app_with_provider(db, false).await;

    // The authorization request carries what OIDC + PKCE require.
    let client = browser();
    let started = start(&app, &client).await;
    let auth = &started.auth_url;
    assert!(
        auth.starts_with(&format!("{}/auth?", provider.issuer)),
        "{auth}"
    );
    for (k, v) in [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("code_challenge_method", "S256"),
        ("scope", "openid email profile"),
    ] {
        assert_eq!(query_param(auth, k).as_deref(), Some(v), "{auth}");
    }
    for k in ["state", "nonce", "code_challenge"] {
        assert!(
            query_param(auth, k).is_some_and(|v| v.len() >= 43),
            "{k}: {auth}"
        );
    }
    assert!(!auth.contains(CLIENT_SECRET));

    // First sign-in creates a verified student and hands out our usual token pair.
    let cb = authorize(
        &client,
        &provider.issuer,
        auth,
        "Asha.Rao@example.com",
        &app.url("/api/auth/google/callback"),
    )
    .await;
    assert!(query_param(&cb, "code").is_some(), "{cb}");
    let (status, body) = callback(&client, &cb).await;
    assert_eq!(status, 200, "{body}");
    let session = &body["data"];
    assert_eq!(session["tokenType"], "Bearer");
    assert_eq!(session["user"]["email"], "asha.rao@example.com");
    assert_eq!(session["user"]["role"], "student");
    assert_eq!(session["user"]["name"], "Asha Rao");
    assert_eq!(session["emailVerified"], true);
    let access = session["accessToken"].as_str().unwrap();
    let (s, me) = app
        .call(Method::GET, "/api/auth/me", Some(access), None)
        .await;
    assert_eq!(
        (s, me["data"]["email"].clone()),
        (200, json!("asha.rao@example.com"))
    );
    let (s, refreshed) = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({"refreshToken": session["refreshToken"]})),
        )
        .await;
    assert_eq!(s, 200, "{refreshed}");
    let first_id = session["user"]["id"].clone();
    let picture: String = sqlx::query_scalar(
        "select picture from user_identities where email = 'asha.rao@example.com'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(picture, "https://lh3.googleusercontent.com/a/asha.rao");

    // Replaying the same callback: the state was single use.
    let (status, body) = callback(&client, &cb).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("VALIDATION_ERROR")),
        "{body}"
    );

    // Signing in again finds the linked account; the keys came from the cache.
    let (status, body) = sign_in(&app, &provider, "asha.rao@example.com").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["user"]["id"], first_id);
    assert_eq!(provider.jwks_fetches().await, 1, "the JWKS is cached");

    // An existing password account with the same (verified) email is linked, not duplicated.
    let (s, reg) = app
        .call(Method::POST, "/api/auth/register", None, Some(json!({"name": "Vikram", "email": "vikram@example.com", "password": "password-123"})))
        .await;
    // Register answers 202 whoever owns the address (no enumeration): read the new id back.
    assert_eq!(s, 202, "{reg}");
    let registered: uuid::Uuid =
        sqlx::query_scalar("select id from users where email = 'vikram@example.com'")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    let (status, body) = sign_in(&app, &provider, "vikram@example.com").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["user"]["id"], registered.to_string());
    assert_eq!(
        body["data"]["emailVerified"], true,
        "Google verified the address"
    );

    // A tampered state is refused (and never reaches the token endpoint).
    let client = browser();
    let started = start(&app, &client).await;
    let cb = authorize(
        &client,
        &provider.issuer,
        &started.auth_url,
        "mallory@example.com",
        &app.url("/api/auth/google/callback"),
    )
    .await;
    let (status, body) = callback(
        &client,
        &with_param(&cb, "state", "forged-state-value-forged-state-value-00000"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // A state from another browser (no cookie) is refused too.
    let (status, _) = callback(&browser(), &cb).await;
    assert_eq!(status, 400);
    // The code itself, replayed with a fresh sign-in of this browser: the provider
    // refuses it (wrong PKCE verifier / already redeemed).
    let (status, _) = callback(&client, &cb).await;
    assert_eq!(status, 200, "the untampered callback still works once");
    let fresh = start(&app, &client).await;
    let fresh_state = query_param(&fresh.auth_url, "state").unwrap();
    let (status, body) = callback(&client, &with_param(&cb, "state", &fresh_state)).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("UNAUTHORIZED")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("authorization code was refused"),
        "{body}"
    );

    // A nonce other than ours comes back in the ID token: refused.
    let client = browser();
    let started = start(&app, &client).await;
    let tampered = with_param(&started.auth_url, "nonce", "attacker-chosen-nonce");
    let cb = authorize(
        &client,
        &provider.issuer,
        &tampered,
        "eve@example.com",
        &app.url("/api/auth/google/callback"),
    )
    .await;
    let (status, body) = callback(&client, &cb).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("nonce"),
        "{body}"
    );

    // An unverified Google email never signs in (and creates nothing).
    let (status, body) = sign_in(&app, &provider, "unverified:nobody@example.com").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("FORBIDDEN")),
        "{body}"
    );
    let n: i64 =
        sqlx::query_scalar("select count(*) from users where email = 'nobody@example.com'")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(n, 0);

    // The provider rotates its signing key: the unknown kid makes us refetch the JWKS.
    let before = provider.jwks_fetches().await;
    let kid = provider.rotate().await;
    let (status, body) = sign_in(&app, &provider, "asha.rao@example.com").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["user"]["id"], first_id);
    assert_eq!(
        provider.jwks_fetches().await,
        before + 1,
        "one refetch for {kid}"
    );
    let (status, _) = sign_in(&app, &provider, "asha.rao@example.com").await;
    assert_eq!(status, 200);
    assert_eq!(
        provider.jwks_fetches().await,
        before + 1,
        "the new key is cached"
    );

    // The listing shows it configured, without the secret.
    let admin = crate::support::users::seeded_admin(&app.state).await;
    let (_, list) = app
        .call(
            Method::GET,
            "/api/admin/integrations",
            Some(&admin.token),
            None,
        )
        .await;
    let google = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "google")
        .unwrap();
    assert_eq!(google["configured"], true);
    assert_eq!(
        google["settings"]["GOOGLE_OIDC_ISSUER"],
        provider.issuer.as_str()
    );
    assert!(!list.to_string().contains(CLIENT_SECRET));

    let text = logs.text();
    assert!(
        text.contains("signed in with Google"),
        "logs capture the flow"
    );
    assert!(
        !text.contains(CLIENT_SECRET),
        "the client secret never reaches the logs"
    );
}

#[sqlx::test(migrations = false)]
async fn google_sign_in_is_disabled_without_its_variables(db: PgPool) {
    let app = TestApp::spawn(db).await;
    for path in [
        "/api/auth/google/start",
        "/api/auth/google/callback?code=x&state=y",
    ] {
        let (status, body) = app.call(Method::GET, path, None, None).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body["error"]["code"], "INTEGRATION_DISABLED");
        assert_eq!(
            body["error"]["message"],
            "google is not configured: set GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, GOOGLE_REDIRECT_URI"
        );
    }
    let (status, _) = app.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(status, 200, "a disabled integration leaves health alone");
}

/// The same flow in headless Chromium (tests/node/google-signin-browser.mjs with
/// playwright-core on `MAS_CHROMIUM`): a real browser follows the redirects, fills the
/// provider's forms and lands on `GOOGLE_POST_LOGIN_REDIRECT` with the tokens in the
/// fragment; then a bad state, a replayed callback, a wrong nonce, an unverified
/// email, and a sign-in after the provider rotated its key.
#[sqlx::test(migrations = false)]
async fn sign_in_with_google_in_headless_chromium(db: PgPool) {
    let (app, provider) = app_with_provider(db, true).await;
    let landing = app.url("/signed-in");
    let output = Command::new("node")
        .arg("google-signin-browser.mjs")
        .current_dir(node_dir())
        .env("MAS_CHROMIUM", chromium())
        .env("APP", &app.base)
        .env("ISSUER", &provider.issuer)
        .env("LANDING", &landing)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("the browser run finishes within 2 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser run failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();

    // Happy path: the landing page got our tokens in its fragment.
    let fragment = results["signIn"]["fragment"].as_str().unwrap();
    let pairs: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(fragment.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(pairs["tokenType"], "Bearer");
    let (s, me) = app
        .call(
            Method::GET,
            "/api/auth/me",
            Some(&pairs["accessToken"]),
            None,
        )
        .await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["data"]["email"], "priya@example.com");

    assert_eq!(results["badState"]["status"], 400, "{results}");
    assert_eq!(results["replay"]["status"], 400, "{results}");
    assert_eq!(results["wrongNonce"]["status"], 401, "{results}");
    assert_eq!(results["unverified"]["status"], 403, "{results}");
    assert!(
        results["afterRotation"]["fragment"]
            .as_str()
            .unwrap()
            .contains("accessToken="),
        "{results}"
    );
    assert_eq!(
        provider.jwks_fetches().await,
        2,
        "one fetch, one refetch after the rotation"
    );
}
