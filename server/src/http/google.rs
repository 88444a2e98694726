//! Google: `/api/auth/google/*` (sign-in with Google, OpenID Connect), the mentors'
//! Drive connection under `/api/integrations/google-drive`, and a meeting's calendar
//! event. Logic lives in `services::google`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiPath, ApiQuery};
use super::response::{Envelope, ok};
use crate::auth::{AuthUser, RequireRole, roles};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::services::auth::Session;
use crate::services::google::calendar::{self, CalendarEvent};
use crate::services::google::drive::{self, ConsentStart, DriveConnection, Recording};
use crate::services::google::oidc;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(google_start))
        .routes(routes!(google_callback))
        .routes(routes!(drive_status, drive_disconnect))
        .routes(routes!(drive_connect))
        .routes(routes!(drive_callback))
        .routes(routes!(drive_recordings))
        .routes(routes!(meeting_calendar))
}

const SIGNIN_COOKIE_PATH: &str = "/api/auth/google";
const DRIVE_COOKIE_PATH: &str = "/api/integrations/google-drive";

/// The value of cookie `name` in the request, if any.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Starts sign-in with Google: redirects to Google's consent screen with `state`,
/// `nonce` and a PKCE challenge (S256), all kept server-side for
/// `GOOGLE_SIGNIN_TTL_SECONDS` and usable once; a cookie binds them to this browser.
#[utoipa::path(
    get,
    path = "/api/auth/google/start",
    tag = "auth",
    responses(
        (status = 303, description = "Redirect to Google's authorization endpoint",
            headers(
                ("location" = String, description = "Google's authorization URL"),
                ("set-cookie" = String, description = "`mas_google_state`: HttpOnly, SameSite=Lax, Path=/api/auth/google")
            )),
        (status = 502, description = "Google's discovery document could not be read", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, GOOGLE_REDIRECT_URI unset) or Google's circuit is open", body = ErrorBody),
        (status = 504, description = "Google did not answer in time", body = ErrorBody)
    )
)]
pub async fn google_start(State(state): State<AppState>) -> AppResult<Response> {
    let started = oidc::start(&state).await?;
    let location = HeaderValue::from_str(&started.authorization_url)
        .map_err(|_| AppError::BadGateway("google: unusable authorization URL".into()))?;
    let cookie = set_cookie(
        oidc::STATE_COOKIE,
        &started.state,
        SIGNIN_COOKIE_PATH,
        started.ttl.as_secs(),
        started.secure_cookie,
    );
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// Google's redirect back: checks `state` (cookie and single-use store), exchanges the
/// code with the PKCE verifier, verifies the ID token (signature by a key of Google's
/// JWKS, issuer, audience, expiry, nonce) and requires `email_verified`. Links to the
/// account with that email, or creates a student, and answers our usual token pair (or
/// redirects to `GOOGLE_POST_LOGIN_REDIRECT` with the tokens in the URL fragment).
#[utoipa::path(
    get,
    path = "/api/auth/google/callback",
    tag = "auth",
    params(oidc::Callback),
    responses(
        (status = 200, description = "Signed in: access and refresh tokens", body = Envelope<Session>),
        (status = 303, description = "Signed in, redirected to GOOGLE_POST_LOGIN_REDIRECT with `#accessToken=..&refreshToken=..&tokenType=Bearer&expiresIn=..`"),
        (status = 400, description = "Missing code, or state unknown, expired, already used or not this browser's", body = ErrorBody),
        (status = 401, description = "Sign-in declined, code refused, or ID token invalid (signature, issuer, audience, expiry, nonce)", body = ErrorBody),
        (status = 403, description = "Email not verified by Google, or account deactivated", body = ErrorBody),
        (status = 502, description = "Google answered badly", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED or Google's circuit is open", body = ErrorBody),
        (status = 504, description = "Google did not answer in time", body = ErrorBody)
    )
)]
pub async fn google_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(callback): ApiQuery<oidc::Callback>,
) -> Response {
    let cookie = cookie_value(&headers, oidc::STATE_COOKIE);
    // Cleared only once this browser's own flow was used: a forged callback must not
    // end a sign-in that is still under way.
    let used = cookie.is_some() && cookie == callback.state;
    let clear = set_cookie(oidc::STATE_COOKIE, "", SIGNIN_COOKIE_PATH, 0, false);
    let mut res = match oidc::finish(&state, &callback, cookie.as_deref()).await {
        Ok(session) => match state
            .config
            .external
            .google_oidc
            .as_ref()
            .and_then(|g| g.post_login_redirect.as_ref())
        {
            Some(target) => {
                let fragment = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("accessToken", &session.access_token)
                    .append_pair("refreshToken", &session.refresh_token)
                    .append_pair("tokenType", session.token_type)
                    .append_pair("expiresIn", &session.expires_in.to_string())
                    .finish();
                match HeaderValue::from_str(&format!("{target}#{fragment}")) {
                    Ok(location) => {
                        (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
                    }
                    Err(_) => AppError::internal(anyhow::anyhow!("bad redirect")).into_response(),
                }
            }
            None => ok(session).into_response(),
        },
        Err(err) => err.into_response(),
    };
    let headers = res.headers_mut();
    if used {
        headers.append(header::SET_COOKIE, clear);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Starts connecting the mentor's Google Drive (offline access to recordings): answers
/// Google's consent URL, valid 10 minutes and once, bound to this browser by a cookie.
#[utoipa::path(
    get,
    path = "/api/integrations/google-drive/connect",
    tag = "integrations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Send the browser to `authorizationUrl`", body = Envelope<ConsentStart>,
            headers(("set-cookie" = String, description = "`mas_drive_state`: HttpOnly, SameSite=Lax"))),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a mentor", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, GOOGLE_DRIVE_REDIRECT_URI, TOKEN_ENCRYPTION_KEY unset)", body = ErrorBody)
    )
)]
pub async fn drive_connect(
    State(state): State<AppState>,
    mentor: RequireRole<roles::Mentors>,
) -> AppResult<Response> {
    let started = drive::start(&state, mentor.user().id()).await?;
    let cookie = set_cookie(
        drive::STATE_COOKIE,
        &started.state,
        DRIVE_COOKIE_PATH,
        started.consent.expires_in,
        started.secure_cookie,
    );
    let mut res = ok(started.consent).into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(res)
}

/// Google's redirect back from the Drive consent: stores the refresh token, encrypted.
#[utoipa::path(
    get,
    path = "/api/integrations/google-drive/callback",
    tag = "integrations",
    params(drive::Callback),
    responses(
        (status = 200, description = "Connected", body = Envelope<DriveConnection>),
        (status = 400, description = "Missing code, or consent state unknown, expired, used or not this browser's", body = ErrorBody),
        (status = 401, description = "Consent declined or code refused", body = ErrorBody),
        (status = 502, description = "Google answered badly or granted no offline access", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED or Google's circuit is open", body = ErrorBody),
        (status = 504, description = "Google did not answer in time", body = ErrorBody)
    )
)]
pub async fn drive_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(callback): ApiQuery<drive::Callback>,
) -> Response {
    let cookie = cookie_value(&headers, drive::STATE_COOKIE);
    // As for sign-in: only this browser's own (now used) consent clears the cookie.
    let used = cookie.is_some() && cookie == callback.state;
    let mut res = match drive::finish(&state, &callback, cookie.as_deref()).await {
        Ok(connection) => ok(connection).into_response(),
        Err(err) => err.into_response(),
    };
    if used {
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(drive::STATE_COOKIE, "", DRIVE_COOKIE_PATH, 0, false),
        );
    }
    res
}

/// Whether the mentor's Drive is connected (the token itself is never shown).
#[utoipa::path(
    get,
    path = "/api/integrations/google-drive",
    tag = "integrations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Connection state", body = Envelope<DriveConnection>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a mentor", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED", body = ErrorBody)
    )
)]
pub async fn drive_status(
    State(state): State<AppState>,
    mentor: RequireRole<roles::Mentors>,
) -> AppResult<Json<Envelope<DriveConnection>>> {
    Ok(ok(drive::status(&state, mentor.user().id()).await?))
}

/// Forgets the mentor's Drive connection (the stored token is deleted).
#[utoipa::path(
    delete,
    path = "/api/integrations/google-drive",
    tag = "integrations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Disconnected", body = Envelope<DriveConnection>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a mentor", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED", body = ErrorBody)
    )
)]
pub async fn drive_disconnect(
    State(state): State<AppState>,
    mentor: RequireRole<roles::Mentors>,
) -> AppResult<Json<Envelope<DriveConnection>>> {
    Ok(ok(drive::disconnect(&state, mentor.user().id()).await?))
}

/// The mentor's meeting recordings (MP4 files in their Drive), newest first, at most 50.
#[utoipa::path(
    get,
    path = "/api/integrations/google-drive/recordings",
    tag = "integrations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recordings", body = Envelope<Vec<Recording>>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a mentor", body = ErrorBody),
        (status = 409, description = "Drive not connected, or the connection was revoked", body = ErrorBody),
        (status = 502, description = "Google answered badly", body = ErrorBody),
        (status = 503, description = "INTEGRATION_DISABLED or Google's circuit is open", body = ErrorBody),
        (status = 504, description = "Google did not answer in time", body = ErrorBody)
    )
)]
pub async fn drive_recordings(
    State(state): State<AppState>,
    mentor: RequireRole<roles::Mentors>,
) -> AppResult<Json<Envelope<Vec<Recording>>>> {
    Ok(ok(drive::recordings(&state, mentor.user().id()).await?))
}

/// The meeting's Google Calendar event and Meet link (participants and admins).
#[utoipa::path(
    get,
    path = "/api/meetings/{id}/calendar",
    tag = "meetings",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event's sync state and links", body = Envelope<CalendarEvent>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not a participant or admin", body = ErrorBody),
        (status = 404, description = "Unknown meeting, or no event (calendar not configured when it was booked)", body = ErrorBody)
    )
)]
pub async fn meeting_calendar(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Envelope<CalendarEvent>>> {
    Ok(ok(calendar::get(&state, id, &user).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; mas_google_state=xyz; b=2"),
        );
        assert_eq!(cookie_value(&h, "mas_google_state").as_deref(), Some("xyz"));
        assert_eq!(cookie_value(&h, "missing"), None);
    }
}
