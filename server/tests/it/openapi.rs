//! Keeps `/api/openapi.json` and the router in step, in both directions:
//!
//! * every documented (method, path) is served by the running server (not the
//!   fallback 404 and not a 405);
//! * every route registration in `server/src` is documented: handlers carry
//!   `#[utoipa::path]` whose (method, path) must appear in the served document (a
//!   router wired outside `http::api_routes()` fails here), and plain axum
//!   `.route`/`.nest` calls, which utoipa cannot see, must name a documented path or
//!   an explicitly listed non-API mount;
//! * the checked-in `server/openapi.json` matches the generated document, so API
//!   contract changes show up in review.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

use crate::support::TestApp;

/// Mounts that are deliberately not part of the JSON API document.
const NOT_API: &[(&str, &str)] = &[
    ("/assets", "static files"),
    ("/admin/queues", "HTML dashboard page"),
    (
        "/admin/queues/login",
        "HTML form post of the dashboard page",
    ),
    (
        "/admin/queues/logout",
        "HTML form post of the dashboard page",
    ),
    ("/admin/queues/app.js", "dashboard script"),
    (
        "/api/terminal/relay",
        "WebSocket upgrade (terminal relay protocol)",
    ),
    ("/terminal", "HTML terminal page"),
    ("/socket.io", "Socket.IO protocol endpoint"),
    ("/socket.io/", "Socket.IO protocol endpoint"),
    (
        "/internal/connections/drain",
        "operator control endpoint on the internal listener (INTERNAL_PORT), not the API port",
    ),
    (
        "/internal/connections/resume",
        "operator control endpoint on the internal listener (INTERNAL_PORT), not the API port",
    ),
    (
        "/metrics",
        "Prometheus metrics on the internal listener (INTERNAL_PORT), not the API port",
    ),
];

const METHODS: &[&str] = &[
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths object") {
        for method in METHODS {
            if item.get(*method).is_some() {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}

#[sqlx::test(migrations = false)]
async fn every_documented_route_is_served(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (status, served) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let generated = serde_json::to_value(mas_server::http::openapi::document()).unwrap();
    assert_eq!(
        served, generated,
        "served document differs from http::openapi::document()"
    );

    let routes = documented(&served);
    assert!(routes.len() >= 20, "suspiciously few routes: {routes:?}");
    for (method, path) in &routes {
        // Any concrete value works: the router matches before extractors run.
        let concrete = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "00000000-0000-0000-0000-000000000001"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let res = app
            .client
            .request(method.clone(), app.url(&concrete))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert_ne!(
            status, 405,
            "{method} {path} is documented but the path serves other methods only"
        );
        assert!(
            !(status == 404 && body.contains("no route for")),
            "{method} {path} is documented but not routed"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literal right after `(` (whitespace allowed), if the argument is one.
fn literal_arg(rest: &str) -> Option<String> {
    let rest = rest.trim_start().strip_prefix('"')?;
    rest.find('"').map(|end| rest[..end].to_string())
}

#[test]
fn every_route_in_the_source_is_documented() {
    let doc = serde_json::to_value(mas_server::http::openapi::document()).unwrap();
    let routes = documented(&doc);
    let paths: BTreeSet<&str> = routes.iter().map(|(_, p)| p.as_str()).collect();

    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut problems = Vec::new();
    let mut annotated = 0;
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let name = file.display();

        for (at, _) in source.match_indices("#[utoipa::path(") {
            annotated += 1;
            let block = &source[at + "#[utoipa::path(".len()..];
            let block = &block[..block.find(")]").unwrap_or(block.len())];
            let method = block
                .trim_start()
                .split([',', ' ', '\n'])
                .next()
                .unwrap_or("");
            // axum's catch-all `{*rest}` is documented as OpenAPI's `{rest}`.
            let path = block
                .find("path = ")
                .and_then(|i| literal_arg(&block[i + "path = ".len()..]))
                .map(|p| p.replace("{*", "{"));
            match path {
                Some(path) if routes.contains(&(method.to_string(), path.clone())) => {}
                Some(path) => problems.push(format!(
                    "{name}: handler for {method} {path} is not in the served document \
                     (register it with routes! in http::api_routes())"
                )),
                None => problems.push(format!("{name}: #[utoipa::path] without a literal path")),
            }
        }

        for call in [".route(", ".route_service(", ".nest(", ".nest_service("] {
            for (at, _) in source.match_indices(call) {
                let Some(path) = literal_arg(&source[at + call.len()..]) else {
                    problems.push(format!(
                        "{name}: {call}..) needs a literal path so this test can check it"
                    ));
                    continue;
                };
                let nested = call.starts_with(".nest");
                let ok = NOT_API.iter().any(|(p, _)| *p == path)
                    || paths.contains(path.as_str())
                    || (nested && paths.iter().any(|p| p.starts_with(&format!("{path}/"))));
                if !ok {
                    problems.push(format!(
                        "{name}: {call}\"{path}\", ..) is served but not in the OpenAPI document; \
                         use routes! with #[utoipa::path] (or list it in NOT_API with a reason)"
                    ));
                }
            }
        }
    }
    assert!(
        annotated >= routes.len(),
        "found {annotated} #[utoipa::path] for {} routes",
        routes.len()
    );
    assert!(
        problems.is_empty(),
        "OpenAPI drift:\n{}",
        problems.join("\n")
    );
}

#[test]
fn checked_in_snapshot_matches_the_generated_document() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let regenerate =
        "regenerate it with: cargo run --bin mas-server -- openapi > server/openapi.json";
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; {regenerate}", file.display()));
    let snapshot: Value = serde_json::from_str(&text).unwrap();
    let generated = serde_json::to_value(mas_server::http::openapi::document()).unwrap();
    if snapshot != generated {
        let before = documented(&snapshot);
        let after = documented(&generated);
        let added: Vec<_> = after.difference(&before).collect();
        let removed: Vec<_> = before.difference(&after).collect();
        panic!(
            "server/openapi.json is out of date (routes added: {added:?}, removed: {removed:?}; \
             schemas or descriptions may differ too); {regenerate}"
        );
    }
}
