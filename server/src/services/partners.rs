//! Thin proxies to partner services: Graphy (Mr. Learn), the mr-hire backend and the
//! class agent. Never an open relay: the base URL is fixed by configuration, only
//! allow-listed method + path shapes pass, the client controls neither host nor
//! scheme, no client header is forwarded, redirects are never followed (the policy
//! client refuses them), and request and response sizes and time are bounded.
//!
//! Graphy's contract followed: its Public API v1 (base
//! `https://api.ongraphy.com/public/v1`, as documented in Graphy's API dashboard and
//! used by its integrations: the merchant id `mid` and API `key` as query parameters on
//! `GET /learners`, `/products`, `/transactions`, and as form fields on
//! `POST /learners`, `/assign`). mr-hire-backend and the class agent are our own
//! services without public docs: the contract is JSON over HTTP with
//! `Authorization: Bearer` (mr-hire) and `X-API-Key` (class agent), the caller named in
//! `X-MAS-User-Id` / `X-MAS-User-Role`.

use axum::http::{Method, StatusCode};
use reqwest::RequestBuilder;
use serde_json::Value;

use crate::auth::{AuthUser, Role};
use crate::error::{AppError, AppResult};
use crate::services::integrations::{HttpClient, IntegrationId, OutboundError};
use crate::state::AppState;

/// Longest proxied path and query.
const MAX_PATH: usize = 256;
const MAX_QUERY: usize = 2048;

/// One allowed request shape: `*` matches exactly one plain segment.
struct Allowed {
    method: Method,
    pattern: &'static str,
}

const fn allow(method: Method, pattern: &'static str) -> Allowed {
    Allowed { method, pattern }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partner {
    Graphy,
    MrHire,
    ClassAgent,
}

impl Partner {
    pub fn id(self) -> IntegrationId {
        match self {
            Partner::Graphy => IntegrationId::Graphy,
            Partner::MrHire => IntegrationId::MrHire,
            Partner::ClassAgent => IntegrationId::ClassAgent,
        }
    }

    fn allowed(self) -> &'static [Allowed] {
        static GRAPHY: [Allowed; 5] = [
            allow(Method::GET, "learners"),
            allow(Method::GET, "products"),
            allow(Method::GET, "transactions"),
            allow(Method::POST, "learners"),
            allow(Method::POST, "assign"),
        ];
        static MR_HIRE: [Allowed; 5] = [
            allow(Method::GET, "jobs"),
            allow(Method::GET, "jobs/*"),
            allow(Method::GET, "companies/*"),
            allow(Method::GET, "applications"),
            allow(Method::POST, "jobs/*/applications"),
        ];
        static CLASS_AGENT: [Allowed; 4] = [
            allow(Method::POST, "sessions"),
            allow(Method::GET, "sessions/*"),
            allow(Method::POST, "sessions/*/messages"),
            allow(Method::GET, "sessions/*/messages"),
        ];
        match self {
            Partner::Graphy => &GRAPHY,
            Partner::MrHire => &MR_HIRE,
            Partner::ClassAgent => &CLASS_AGENT,
        }
    }

    /// Who may call it: Graphy holds learner and payment data (staff only); the job
    /// board and the class agent serve everyone signed in, who are named upstream.
    pub fn permits(self, role: Role) -> bool {
        match self {
            Partner::Graphy => role.is_admin() || role == Role::Sales,
            Partner::MrHire => true,
            Partner::ClassAgent => matches!(role, Role::Student | Role::Mentor) || role.is_admin(),
        }
    }

    /// The allow-list, for the OpenAPI description and error messages.
    pub fn describe(self) -> String {
        self.allowed()
            .iter()
            .map(|a| format!("{} {}", a.method, a.pattern))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A plain path segment: no dots-only, no separators, no escapes.
fn plain_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// Checks `path` (as the client sent it, after the route prefix) against the allow-list.
pub fn check_path(partner: Partner, method: &Method, path: &str) -> AppResult<String> {
    let not_allowed = || {
        AppError::not_found(format!(
            "{} path not allowed; allowed: {}",
            partner.id().name(),
            partner.describe()
        ))
    };
    if path.len() > MAX_PATH {
        return Err(not_allowed());
    }
    let segments: Vec<&str> = path.split('/').collect();
    if !segments.iter().all(|s| plain_segment(s)) {
        return Err(not_allowed());
    }
    let matches = |pattern: &str| {
        let want: Vec<&str> = pattern.split('/').collect();
        want.len() == segments.len() && want.iter().zip(&segments).all(|(w, s)| *w == "*" || w == s)
    };
    if partner
        .allowed()
        .iter()
        .any(|a| a.method == *method && matches(a.pattern))
    {
        Ok(segments.join("/"))
    } else {
        Err(not_allowed())
    }
}

/// A proxied answer: upstream status (2xx) and its JSON.
pub struct Proxied {
    pub status: StatusCode,
    pub body: Value,
}

fn query_pairs(raw: Option<&str>, reserved: &[&str]) -> AppResult<Vec<(String, String)>> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    if raw.len() > MAX_QUERY {
        return Err(AppError::validation(format!(
            "query string longer than {MAX_QUERY} bytes"
        )));
    }
    Ok(url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        // The credentials are ours to add; a client cannot override them.
        .filter(|(k, _)| !reserved.iter().any(|r| r.eq_ignore_ascii_case(k)))
        .collect())
}

pub async fn forward(
    state: &AppState,
    partner: Partner,
    caller: &AuthUser,
    method: Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> AppResult<Proxied> {
    let http = state.integrations.http(partner.id())?;
    if !partner.permits(caller.role()) {
        return Err(AppError::forbidden(format!(
            "your role cannot use {}",
            partner.id().name()
        )));
    }
    let path = check_path(partner, &method, path)?;
    let limits = state.config.external.proxy_limits();
    if body.len() > limits.max_request_bytes {
        return Err(AppError::PayloadTooLarge);
    }
    let json_body: Option<Value> = if method == Method::POST {
        if body.is_empty() {
            Some(Value::Object(Default::default()))
        } else {
            Some(
                serde_json::from_slice(body)
                    .map_err(|_| AppError::validation("the body must be JSON"))?,
            )
        }
    } else {
        None
    };
    let ext = &state.config.external;
    let build: Box<dyn Fn(&reqwest::Client) -> RequestBuilder + Send + Sync> = match partner {
        Partner::Graphy => {
            let cfg = ext.graphy.as_ref().ok_or_else(missing_settings)?;
            let mut pairs = query_pairs(query, &["mid", "key"])?;
            let url = format!("{}/{path}", cfg.api_url);
            let (mid, key) = (cfg.mid.clone(), cfg.api_key.expose().to_string());
            match json_body {
                // Graphy's POSTs are form-encoded, credentials included.
                Some(Value::Object(fields)) => {
                    let mut form: Vec<(String, String)> = fields
                        .into_iter()
                        .filter(|(k, _)| k != "mid" && k != "key")
                        .map(|(k, v)| {
                            let v = match v {
                                Value::String(s) => s,
                                other => other.to_string(),
                            };
                            (k, v)
                        })
                        .collect();
                    form.push(("mid".into(), mid));
                    form.push(("key".into(), key));
                    Box::new(move |c| c.post(&url).query(&pairs).form(&form))
                }
                Some(_) => return Err(AppError::validation("the body must be a JSON object")),
                None => {
                    pairs.push(("mid".into(), mid));
                    pairs.push(("key".into(), key));
                    Box::new(move |c| c.get(&url).query(&pairs))
                }
            }
        }
        Partner::MrHire | Partner::ClassAgent => {
            let cfg = match partner {
                Partner::MrHire => ext.mr_hire.as_ref(),
                _ => ext.class_agent.as_ref(),
            }
            .ok_or_else(missing_settings)?;
            let pairs = query_pairs(query, &[])?;
            let url = format!("{}/{path}", cfg.base_url);
            let key = cfg.api_key.as_ref().map(|k| k.expose().to_string());
            let (user, role) = (caller.id().to_string(), caller.role().as_str());
            let method = method.clone();
            Box::new(move |c| {
                let mut req = c
                    .request(method.clone(), &url)
                    .query(&pairs)
                    .header("X-MAS-User-Id", &user)
                    .header("X-MAS-User-Role", role)
                    .header(reqwest::header::ACCEPT, "application/json");
                if let Some(key) = &key {
                    req = match partner {
                        Partner::MrHire => req.bearer_auth(key),
                        _ => req.header("X-API-Key", key),
                    };
                }
                if let Some(body) = &json_body {
                    req = req.json(body);
                }
                req
            })
        }
    };
    let res = http
        .send(|c| build(c))
        .await
        .map_err(|e| upstream_error(http, e))?;
    let status = res.status();
    let bytes = read_bounded(http, res, limits.max_response_bytes).await?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|_| {
            AppError::BadGateway(format!(
                "{} answered something other than JSON",
                http.provider()
            ))
        })?
    };
    Ok(Proxied { status, body })
}

fn missing_settings() -> AppError {
    AppError::internal(anyhow::anyhow!("partner registered without settings"))
}

/// The upstream's refusal of the client's request keeps its meaning; anything about our
/// own credentials or the upstream's health is a gateway error.
fn upstream_error(http: &HttpClient, err: OutboundError) -> AppError {
    let provider = http.provider();
    match &err {
        OutboundError::Status { status, .. } => match status.as_u16() {
            400 | 422 => {
                AppError::validation(format!("{provider} rejected the request ({status})"))
            }
            404 => AppError::not_found(format!("{provider}: not found")),
            409 => AppError::conflict(format!("{provider}: conflict")),
            429 => {
                AppError::TooManyRequests(format!("{provider} is rate limiting; try again later"))
            }
            _ => err.into(),
        },
        _ => err.into(),
    }
}

async fn read_bounded(
    http: &HttpClient,
    mut res: reqwest::Response,
    max: usize,
) -> AppResult<Vec<u8>> {
    if res.content_length().is_some_and(|n| n as usize > max) {
        return Err(too_large(http, max));
    }
    let mut out = Vec::new();
    loop {
        match res.chunk().await {
            Ok(Some(chunk)) => {
                if out.len() + chunk.len() > max {
                    return Err(too_large(http, max));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out),
            Err(e) if e.is_timeout() => {
                return Err(AppError::GatewayTimeout(format!(
                    "{} did not finish its answer in time",
                    http.provider()
                )));
            }
            Err(_) => {
                return Err(AppError::BadGateway(format!(
                    "{} broke off its answer",
                    http.provider()
                )));
            }
        }
    }
}

fn too_large(http: &HttpClient, max: usize) -> AppError {
    AppError::BadGateway(format!(
        "{} answered more than {max} bytes",
        http.provider()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allow_listed_plain_paths_pass() {
        let ok = |p: Partner, m: Method, path: &str| check_path(p, &m, path).is_ok();
        assert!(ok(Partner::Graphy, Method::GET, "learners"));
        assert!(!ok(Partner::Graphy, Method::DELETE, "learners"));
        assert!(!ok(Partner::Graphy, Method::GET, "learners/../admin"));
        assert!(!ok(Partner::Graphy, Method::GET, "../learners"));
        assert!(!ok(Partner::Graphy, Method::GET, "learners/"));
        assert!(!ok(Partner::Graphy, Method::GET, "/learners"));
        assert!(ok(Partner::MrHire, Method::GET, "jobs/42"));
        assert!(!ok(Partner::MrHire, Method::GET, "jobs/42/secret"));
        assert!(!ok(Partner::MrHire, Method::GET, "jobs/%2e%2e"));
        assert!(!ok(Partner::MrHire, Method::GET, "jobs/a:b"));
        assert!(!ok(Partner::MrHire, Method::GET, "jobs/.."));
        assert!(ok(
            Partner::ClassAgent,
            Method::POST,
            "sessions/abc-1/messages"
        ));
        assert!(!ok(Partner::ClassAgent, Method::GET, "http:"));
    }

    #[test]
    fn reserved_query_keys_are_dropped() {
        let pairs = query_pairs(Some("limit=5&KEY=stolen&mid=x&skip=0"), &["mid", "key"]).unwrap();
        assert_eq!(
            pairs,
            vec![("limit".into(), "5".into()), ("skip".into(), "0".into())]
        );
    }
}
