//! The one outbound HTTP policy every provider call goes through: per-provider
//! timeouts, retries with backoff for idempotent calls only, a circuit breaker, no
//! redirects, and errors that name the provider but never carry a secret.

use std::time::{Duration, Instant};

use reqwest::{Method, Request, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use super::backoff;
use super::breaker::{Breaker, CircuitState, Permit, Transition};
use crate::config::Secret;
use crate::error::{AppError, with_sources};

/// Upstream error bodies are kept this short (they end up in job reasons).
const BODY_SNIPPET_CHARS: usize = 300;
const BODY_SNIPPET_BYTES: usize = 4096;

/// Marks a non-idempotent method as safe to repeat (Stripe-style header).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// How calls to one provider behave. Declared with the integration.
#[derive(Debug, Clone, Copy)]
pub struct HttpPolicy {
    pub connect_timeout: Duration,
    /// Whole attempt: connecting, sending, and reading the response body.
    pub timeout: Duration,
    /// Attempts of an idempotent call (first try included); other calls get one.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Longest `Retry-After` worth waiting for; a longer one ends the call instead,
    /// since retrying earlier than asked would only be refused again.
    pub max_retry_after: Duration,
    /// Consecutive failed attempts that open the circuit.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
}

impl HttpPolicy {
    pub const DEFAULT: HttpPolicy = HttpPolicy {
        connect_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(30),
        max_attempts: 3,
        backoff_base: Duration::from_millis(250),
        backoff_max: Duration::from_secs(5),
        max_retry_after: Duration::from_secs(30),
        breaker_threshold: 5,
        breaker_cooldown: Duration::from_secs(30),
    };
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy::DEFAULT
    }
}

/// Why a provider call failed. Messages name the provider and never contain a URL,
/// a header or a known secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboundError {
    #[error(
        "{provider} is temporarily unavailable after repeated failures; retry in {}s",
        .retry_in.as_secs().max(1)
    )]
    CircuitOpen {
        provider: &'static str,
        retry_in: Duration,
    },
    #[error("{provider} did not answer within {}s", .after.as_secs_f64())]
    Timeout {
        provider: &'static str,
        after: Duration,
    },
    #[error("{provider} is unreachable: {detail}")]
    Unreachable {
        provider: &'static str,
        detail: String,
    },
    /// A non-2xx answer (redirects included: they are never followed). `body` is the
    /// start of the upstream's answer, kept out of the message shown to clients.
    #[error("{provider} answered HTTP {status}")]
    Status {
        provider: &'static str,
        status: StatusCode,
        body: String,
        retry_after: Option<Duration>,
    },
    #[error("{provider} sent an unreadable response: {detail}")]
    BadResponse {
        provider: &'static str,
        detail: String,
    },
    /// Our side could not build the request (a bug, not the provider's fault).
    #[error("request to {provider} could not be built: {detail}")]
    Request {
        provider: &'static str,
        detail: String,
    },
}

impl OutboundError {
    /// Worth trying again later (the upstream may recover): what the queue jobs use.
    pub fn is_transient(&self) -> bool {
        match self {
            OutboundError::CircuitOpen { .. }
            | OutboundError::Timeout { .. }
            | OutboundError::Unreachable { .. }
            | OutboundError::BadResponse { .. } => true,
            OutboundError::Status { status, .. } => transient_status(*status),
            OutboundError::Request { .. } => false,
        }
    }
}

/// 502 for a bad or missing answer, 503 while the circuit is open, 504 on timeout.
impl From<OutboundError> for AppError {
    fn from(err: OutboundError) -> Self {
        match &err {
            OutboundError::CircuitOpen { .. } => AppError::Unavailable(err.to_string()),
            OutboundError::Timeout { .. } => AppError::GatewayTimeout(err.to_string()),
            OutboundError::Unreachable { .. }
            | OutboundError::Status { .. }
            | OutboundError::BadResponse { .. } => AppError::BadGateway(err.to_string()),
            OutboundError::Request { .. } => AppError::Internal(err.into()),
        }
    }
}

fn transient_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// RFC 9110 idempotent methods.
fn idempotent_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// The circuit as shown by `GET /api/admin/integrations`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CircuitView {
    pub state: CircuitState,
    pub consecutive_failures: u32,
    /// Milliseconds left in the cool-down while open.
    pub retry_in_ms: Option<u64>,
    pub threshold: u32,
    pub cooldown_ms: u64,
}

/// One provider's HTTP client under [`HttpPolicy`], with its own circuit breaker.
#[derive(Debug)]
pub struct HttpClient {
    provider: &'static str,
    policy: HttpPolicy,
    /// Building fails only if the TLS backend cannot start; calls then report it.
    http: Result<reqwest::Client, String>,
    breaker: Breaker,
    /// Values scrubbed from every message (an upstream may echo a key back).
    secrets: Vec<Secret>,
}

impl HttpClient {
    pub fn new(provider: &'static str, policy: HttpPolicy, secrets: Vec<Secret>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            // A provider call never ends up at another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| with_sources(&e.without_url()));
        HttpClient {
            provider,
            policy,
            http,
            breaker: Breaker::new(policy.breaker_threshold, policy.breaker_cooldown),
            secrets: secrets
                .into_iter()
                .filter(|s| !s.expose().is_empty())
                .collect(),
        }
    }

    pub fn provider(&self) -> &'static str {
        self.provider
    }

    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    pub fn circuit(&self) -> CircuitView {
        let snap = self.breaker.snapshot(Instant::now());
        CircuitView {
            state: snap.state,
            consecutive_failures: snap.consecutive_failures,
            retry_in_ms: snap.retry_in.map(|d| d.as_millis() as u64),
            threshold: self.breaker.threshold(),
            cooldown_ms: self.breaker.cooldown().as_millis() as u64,
        }
    }

    /// Sends the request `build` makes from this provider's client. It is retried only
    /// when idempotent: an idempotent method (GET, HEAD, PUT, DELETE, ...) or an
    /// `Idempotency-Key` header. Returns 2xx responses; anything else is an error.
    pub async fn send(
        &self,
        build: impl FnOnce(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, OutboundError> {
        self.call(build, false).await
    }

    /// [`HttpClient::send`] for a call the caller knows is safe to repeat although its
    /// method is not idempotent (e.g. a POST the provider de-duplicates).
    pub async fn send_idempotent(
        &self,
        build: impl FnOnce(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, OutboundError> {
        self.call(build, true).await
    }

    /// A successful response's JSON body.
    pub async fn json<T: DeserializeOwned>(&self, res: Response) -> Result<T, OutboundError> {
        res.json().await.map_err(|e| self.body_error(e))
    }

    /// A successful response's body as text.
    pub async fn text(&self, res: Response) -> Result<String, OutboundError> {
        res.text().await.map_err(|e| self.body_error(e))
    }

    fn body_error(&self, e: reqwest::Error) -> OutboundError {
        if e.is_timeout() {
            OutboundError::Timeout {
                provider: self.provider,
                after: self.policy.timeout,
            }
        } else {
            OutboundError::BadResponse {
                provider: self.provider,
                detail: self.describe(e),
            }
        }
    }

    async fn call(
        &self,
        build: impl FnOnce(&reqwest::Client) -> RequestBuilder,
        marked_idempotent: bool,
    ) -> Result<Response, OutboundError> {
        let provider = self.provider;
        let http = self
            .http
            .as_ref()
            .map_err(|detail| OutboundError::Request {
                provider,
                detail: detail.clone(),
            })?;
        let request = build(http).build().map_err(|e| OutboundError::Request {
            provider,
            detail: self.describe(e),
        })?;
        let idempotent = marked_idempotent
            || idempotent_method(request.method())
            || request.headers().contains_key(IDEMPOTENCY_KEY);
        // A streamed body cannot be replayed, so it gets one attempt.
        let attempts = if idempotent && request.try_clone().is_some() {
            self.policy.max_attempts.max(1)
        } else {
            1
        };
        let timeout = request.timeout().copied().unwrap_or(self.policy.timeout);
        let method = request.method().clone();

        let mut pending = Some(request);
        let mut last: Option<OutboundError> = None;
        for attempt in 1..=attempts {
            let permit = match self.breaker.acquire(Instant::now()) {
                Ok(permit) => permit,
                // Mid-retry, the upstream's own last answer says more than "circuit open".
                Err(rejected) => {
                    return Err(last.unwrap_or(OutboundError::CircuitOpen {
                        provider,
                        retry_in: rejected.retry_in,
                    }));
                }
            };
            let next = if attempt < attempts {
                pending.as_ref().and_then(Request::try_clone)
            } else {
                pending.take()
            };
            let Some(req) = next else { break };

            let err = match http.execute(req).await {
                Ok(res) if res.status().is_success() => {
                    self.settle(permit, true);
                    return Ok(res);
                }
                Ok(res) => {
                    let status = res.status();
                    // A 4xx means the upstream is up and answering: not a failure of it.
                    self.settle(permit, !transient_status(status));
                    let retry_after = res
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| backoff::parse_retry_after(v, chrono::Utc::now()));
                    OutboundError::Status {
                        provider,
                        status,
                        body: self.snippet(res).await,
                        retry_after,
                    }
                }
                Err(e) => {
                    self.settle(permit, false);
                    self.transport_error(e, timeout)
                }
            };

            let wait = match &err {
                OutboundError::Status { status, .. } if !transient_status(*status) => None,
                OutboundError::Status {
                    retry_after: Some(after),
                    ..
                } if *after > self.policy.max_retry_after => None,
                OutboundError::Status { retry_after, .. } => Some(
                    self.backoff(attempt)
                        .max(retry_after.unwrap_or(Duration::ZERO)),
                ),
                _ => Some(self.backoff(attempt)),
            };
            match wait {
                Some(delay) if attempt < attempts => {
                    tracing::warn!(
                        provider,
                        %method,
                        attempt,
                        attempts,
                        delay_ms = delay.as_millis() as u64,
                        error = %err,
                        "provider call failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    last = Some(err);
                }
                _ => {
                    tracing::warn!(provider, %method, attempt, error = %err, "provider call failed");
                    return Err(err);
                }
            }
        }
        Err(last.unwrap_or(OutboundError::Request {
            provider,
            detail: "the request could not be repeated".into(),
        }))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        backoff::jittered(attempt, self.policy.backoff_base, self.policy.backoff_max)
    }

    fn settle(&self, permit: Permit<'_>, ok: bool) {
        let transition = if ok {
            permit.success()
        } else {
            permit.failure(Instant::now())
        };
        match transition {
            Transition::Opened => tracing::warn!(
                provider = self.provider,
                cooldown_s = self.policy.breaker_cooldown.as_secs_f64(),
                "circuit opened: calls fail fast until a probe succeeds"
            ),
            Transition::Closed => {
                tracing::info!(provider = self.provider, "circuit closed: probe succeeded")
            }
            Transition::None => {}
        }
    }

    fn transport_error(&self, e: reqwest::Error, timeout: Duration) -> OutboundError {
        if e.is_timeout() {
            OutboundError::Timeout {
                provider: self.provider,
                after: if e.is_connect() {
                    self.policy.connect_timeout
                } else {
                    timeout
                },
            }
        } else {
            OutboundError::Unreachable {
                provider: self.provider,
                detail: self.describe(e),
            }
        }
    }

    /// The error and its causes, without the URL (it may carry a key in its query).
    fn describe(&self, e: reqwest::Error) -> String {
        self.redact(with_sources(&e.without_url()))
    }

    /// The start of an error response's body, decoded leniently.
    async fn snippet(&self, mut res: Response) -> String {
        let mut bytes = Vec::new();
        while bytes.len() < BODY_SNIPPET_BYTES {
            match res.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let text: String = String::from_utf8_lossy(&bytes)
            .chars()
            .take(BODY_SNIPPET_CHARS)
            .collect();
        self.redact(text)
    }

    pub fn redact(&self, mut text: String) -> String {
        for secret in &self.secrets {
            if text.contains(secret.expose()) {
                text = text.replace(secret.expose(), "***");
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_follows_the_method() {
        for m in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
            assert!(idempotent_method(&m), "{m}");
        }
        for m in [Method::POST, Method::PATCH] {
            assert!(!idempotent_method(&m), "{m}");
        }
    }

    #[test]
    fn errors_map_to_gateway_statuses_naming_the_provider() {
        let cases = [
            (
                OutboundError::Timeout {
                    provider: "acme",
                    after: Duration::from_millis(1500),
                },
                504,
                "acme did not answer within 1.5s",
            ),
            (
                OutboundError::CircuitOpen {
                    provider: "acme",
                    retry_in: Duration::from_millis(10),
                },
                503,
                "acme is temporarily unavailable after repeated failures; retry in 1s",
            ),
            (
                OutboundError::Status {
                    provider: "acme",
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: "details stay out".into(),
                    retry_after: None,
                },
                502,
                "acme answered HTTP 500 Internal Server Error",
            ),
        ];
        for (err, status, message) in cases {
            let app: AppError = err.into();
            assert_eq!(app.status().as_u16(), status);
            assert_eq!(app.to_string(), message);
        }
    }

    #[test]
    fn known_secrets_are_scrubbed() {
        let c = HttpClient::new("acme", HttpPolicy::DEFAULT, vec![Secret::new("sk-123")]);
        assert_eq!(c.redact("bad key sk-123!".into()), "bad key ***!");
    }
}
