use std::fmt::Write;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{AdminSession, COOKIE_NAME};
use crate::error::AppError;
use crate::http::extract::ApiForm;
use crate::queues::QueueName;
use crate::services::mail::templates::escape;
use crate::services::{password, queue_admin};
use crate::state::AppState;

const PATH: &str = "/admin/queues";
const RECENT: usize = 10;

pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/admin/queues", get(dashboard))
        .route("/admin/queues/login", post(login))
        .route("/admin/queues/logout", post(logout))
        .route("/admin/queues/app.js", get(script))
}

/// Session or the reason there is none (rendered as the login form).
struct MaybeAdmin(Result<AdminSession, AppError>);

impl FromRequestParts<AppState> for MaybeAdmin {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(MaybeAdmin(
            AdminSession::from_request_parts(parts, state).await,
        ))
    }
}

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:24px;color:#222}}\
         table{{border-collapse:collapse;margin:8px 0 20px}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}\
         .reason{{color:#b00020;font-family:monospace;white-space:pre-wrap;max-width:600px}}\
         .err{{color:#b00020}}button{{margin-right:6px}}</style>\
         <script src=\"/admin/queues/app.js\" defer></script></head><body>{body}</body></html>",
        escape(title)
    )
}

fn login_page(message: Option<&str>) -> String {
    let message = message
        .map(|m| format!("<p class=\"err\" id=\"login-error\">{}</p>", escape(m)))
        .unwrap_or_default();
    layout(
        "Queues — sign in",
        &format!(
            "<h1>Queue dashboard</h1><p>Sign in with an admin account.</p>{message}\
             <form method=\"post\" action=\"/admin/queues/login\" id=\"login-form\">\
             <p><label>Email <input type=\"email\" name=\"email\" id=\"email\" required></label></p>\
             <p><label>Password <input type=\"password\" name=\"password\" id=\"password\" required></label></p>\
             <p><button type=\"submit\" id=\"login-submit\">Sign in</button></p></form>"
        ),
    )
}

fn fmt_ms(ms: Option<u64>) -> String {
    ms.and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

async fn dashboard(State(state): State<AppState>, MaybeAdmin(session): MaybeAdmin) -> Response {
    let admin = match session {
        Ok(admin) => admin,
        Err(AppError::Forbidden(m)) => {
            return (StatusCode::FORBIDDEN, Html(login_page(Some(&m)))).into_response();
        }
        Err(_) => return (StatusCode::UNAUTHORIZED, Html(login_page(None))).into_response(),
    };
    match render_dashboard(&state, &admin).await {
        Ok(html) => Html(html).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn render_dashboard(state: &AppState, admin: &AdminSession) -> Result<String, AppError> {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Queue dashboard</h1><p>Signed in as {} ({}). Prefix <code>{}</code>.</p>\
         <form method=\"post\" action=\"/admin/queues/logout\"><button id=\"logout\">Sign out</button></form>\
         <h2>Counts</h2><table id=\"counts\"><tr><th>Queue</th>",
        escape(&admin.0.email),
        admin.0.role,
        escape(&state.queues.config().prefix)
    );
    for s in queue_admin::STATES {
        let _ = write!(body, "<th>{s}</th>");
    }
    body.push_str("<th>Actions</th></tr>");
    for name in QueueName::ALL {
        let summary = queue_admin::summary(&state.queues, name).await?;
        let _ = write!(body, "<tr data-queue=\"{name}\"><td>{name}</td>");
        for s in queue_admin::STATES {
            let n = summary.counts.get(s).copied().unwrap_or(0);
            let _ = write!(body, "<td class=\"count-{s}\">{n}</td>");
        }
        let _ = write!(
            body,
            "<td><button data-action=\"retry-all\" data-queue=\"{name}\">Retry failed</button>\
             <button data-action=\"clean\" data-state=\"completed\" data-queue=\"{name}\">Clean completed</button>\
             <button data-action=\"clean\" data-state=\"failed\" data-queue=\"{name}\">Clean failed</button></td></tr>"
        );
    }
    body.push_str("</table><p id=\"status\" role=\"status\"></p>");

    body.push_str("<h2>Failed jobs</h2><table id=\"failed\"><tr><th>Queue</th><th>Job</th><th>Name</th><th>Attempts</th><th>Failed at</th><th>Reason</th><th></th></tr>");
    for name in QueueName::ALL {
        for job in queue_admin::jobs(&state.queues, name, "failed", RECENT).await? {
            let _ = write!(
                body,
                "<tr class=\"failed-job\"><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"reason\">{}</td><td><button data-action=\"retry-job\" data-queue=\"{name}\" \
                 data-job=\"{}\">Retry</button></td></tr>",
                escape(&job.id),
                escape(&job.name),
                job.attempts_made,
                fmt_ms(job.finished_on),
                escape(job.failed_reason.as_deref().unwrap_or("")),
                escape(&job.id),
            );
        }
    }
    body.push_str("</table>");

    body.push_str("<h2>Recent jobs</h2><table id=\"recent\"><tr><th>Queue</th><th>State</th><th>Job</th><th>Name</th><th>Finished</th></tr>");
    for name in QueueName::ALL {
        for st in ["active", "completed"] {
            for job in queue_admin::jobs(&state.queues, name, st, RECENT).await? {
                let _ = write!(
                    body,
                    "<tr><td>{name}</td><td>{st}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&job.id),
                    escape(&job.name),
                    fmt_ms(job.finished_on)
                );
            }
        }
    }
    body.push_str("</table>");
    Ok(layout("Queues", &body))
}

type LoginRow = (uuid::Uuid, String, String, String, bool);

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

/// Counts sign-in attempts per email in Redis; `true` once the window's budget is spent.
async fn too_many_attempts(state: &AppState, email: &str) -> Result<bool, AppError> {
    let key = format!(
        "ratelimit:queues-login:{}",
        email.trim().to_ascii_lowercase()
    );
    let mut redis = state.redis.clone();
    let (count,): (u64,) = redis::pipe()
        .atomic()
        .incr(&key, 1)
        .expire(&key, state.config.login_window.as_secs() as i64)
        .ignore()
        .query_async(&mut redis)
        .await?;
    Ok(count > u64::from(state.config.login_max_attempts))
}

async fn login(State(state): State<AppState>, ApiForm(form): ApiForm<LoginForm>) -> Response {
    match too_many_attempts(&state, &form.email).await {
        Ok(false) => {}
        Ok(true) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                Html(login_page(Some(
                    "too many sign-in attempts; try again later",
                ))),
            )
                .into_response();
        }
        Err(err) => return err.into_response(),
    }
    let denied =
        |msg: &str| (StatusCode::UNAUTHORIZED, Html(login_page(Some(msg)))).into_response();
    let row: Result<Option<LoginRow>, sqlx::Error> = sqlx::query_as(
        "select id, email, password_hash, role, is_active from users where lower(email) = lower($1)",
    )
    .bind(form.email.trim())
    .fetch_optional(&state.db)
    .await;
    let row = match row {
        Ok(row) => row,
        Err(err) => return AppError::from(err).into_response(),
    };
    let Some((id, email, hash, role, active)) = row else {
        return denied("wrong email or password");
    };
    match password::verify(&form.password, &hash).await {
        Ok(true) => {}
        Ok(false) => return denied("wrong email or password"),
        Err(err) => return err.into_response(),
    }
    let role: crate::auth::Role = match role.parse() {
        Ok(role) => role,
        Err(_) => return denied("wrong email or password"),
    };
    if !active || !role.is_admin() {
        return (
            StatusCode::FORBIDDEN,
            Html(login_page(Some("only admins can open the queue dashboard"))),
        )
            .into_response();
    }
    let ttl = state.config.access_token_ttl;
    let token = match state.jwt.issue(id, role, &email, ttl) {
        Ok(token) => token,
        Err(err) => return err.into_response(),
    };
    let secure = if state.config.app_env == crate::config::AppEnv::Production {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        ttl.as_secs()
    );
    let mut res = Redirect::to(PATH).into_response();
    match HeaderValue::from_str(&cookie) {
        Ok(v) => {
            res.headers_mut().insert(header::SET_COOKIE, v);
            res
        }
        Err(err) => AppError::internal(err).into_response(),
    }
}

async fn logout() -> Response {
    let mut res = Redirect::to(PATH).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("mas_admin_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    res
}

/// Served as a file so the page works under the `script-src 'self'` CSP.
const SCRIPT: &str = r#"document.addEventListener('click', async (ev) => {
  const b = ev.target.closest('button[data-action]');
  if (!b) return;
  const q = encodeURIComponent(b.dataset.queue);
  let url;
  if (b.dataset.action === 'retry-all') url = `/api/admin/queues/${q}/retry`;
  else if (b.dataset.action === 'retry-job') url = `/api/admin/queues/${q}/jobs/${encodeURIComponent(b.dataset.job)}/retry`;
  else if (b.dataset.action === 'clean') url = `/api/admin/queues/${q}/clean?state=${b.dataset.state}`;
  else return;
  const status = document.getElementById('status');
  b.disabled = true;
  try {
    const res = await fetch(url, { method: 'POST', credentials: 'same-origin' });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error ? body.error.message : res.status);
    status.textContent = 'done';
    location.reload();
  } catch (e) {
    status.textContent = 'failed: ' + e.message;
    b.disabled = false;
  }
});
"#;

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}
