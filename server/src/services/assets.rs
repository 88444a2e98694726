//! Public URLs of the static assets under `/assets`: on the CDN when
//! `MAS_ASSETS_CDN_URL` is set, else on this origin. Every asset URL the server hands
//! out is built here.

use crate::config::Config;

/// `path` relative to the assets root, e.g. `terminal/xterm.js`.
pub fn asset_url(config: &Config, path: &str) -> String {
    let path = path.trim_start_matches('/');
    match &config.storage.assets_cdn_url {
        Some(cdn) => format!("{cdn}/assets/{path}"),
        // Origin-relative: the browser resolves it against whichever host served the page.
        None => format!("/assets/{path}"),
    }
}

/// `html` with every origin-relative `/assets/` reference pointed at [`asset_url`].
pub fn rewrite_html(config: &Config, html: &str) -> String {
    if config.storage.assets_cdn_url.is_none() {
        return html.to_string();
    }
    html.replace("=\"/assets/", &format!("=\"{}", asset_url(config, "")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(cdn: Option<&str>) -> Config {
        let mut vars: HashMap<String, String> = [
            ("DATABASE_URL", "postgres://u@127.0.0.1/db"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(cdn) = cdn {
            vars.insert("MAS_ASSETS_CDN_URL".into(), cdn.into());
        }
        Config::from_map(&vars).unwrap()
    }

    #[test]
    fn cdn_or_origin() {
        assert_eq!(
            asset_url(&config(None), "terminal/xterm.js"),
            "/assets/terminal/xterm.js"
        );
        let cdn = config(Some("https://cdn.example.com/mas/"));
        assert_eq!(
            asset_url(&cdn, "/terminal/xterm.js"),
            "https://cdn.example.com/mas/assets/terminal/xterm.js"
        );
        let html = r#"<script src="/assets/terminal/xterm.js"></script><a href="/api/x">"#;
        assert_eq!(
            rewrite_html(&cdn, html),
            r#"<script src="https://cdn.example.com/mas/assets/terminal/xterm.js"></script><a href="/api/x">"#
        );
        assert_eq!(rewrite_html(&config(None), html), html);
    }
}
