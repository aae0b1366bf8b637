//! The operator's console under `/console`: server-rendered pages and a little JavaScript (a confirmation before
//! each action), embedded in the binary, no external assets.
//!
//! Sign-in trades an API key (posted once, never put in a URL or a page) for a session: an `HttpOnly`,
//! `SameSite=Strict` cookie, `Secure` behind https, that expires after [`SESSION_TTL`] or at sign-out, and a CSRF
//! token every action must carry. Failed sign-ins are limited per client address. Pages show what the key may see;
//! actions need a `publish` key and its channel scope, and each calls the same use case as the API, which appends
//! the audit record. Nothing here runs on the device path.
//!
//! [`SESSION_TTL`]: crate::console_sessions::SESSION_TTL

mod actions;
mod charts;
mod html;
mod pages;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use updraft_core::AppId;

use crate::api_error::ApiError;
use crate::auth::caller_of_key;
use crate::console_sessions::{SESSION_TTL, Session};
use crate::ops::console;
use crate::state::AppState;

/// The session cookie.
const COOKIE: &str = "updraft_session";
const CSS: &str = include_str!("console.css");
const JS: &str = include_str!("console.js");

/// Whether the browser reached the gateway over https (directly, or through a proxy that says so).
fn over_https(request: &HttpRequest, state: &AppState) -> bool {
    let forwarded = request
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    forwarded || state.public_url.starts_with("https://") || request.connection_info().scheme() == "https"
}

/// An HTML answer with the console's security headers: no framing, no caching, scripts and styles from the
/// gateway only.
fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(body)
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn session_cookie(request: &HttpRequest, state: &AppState, value: &str, max_age_seconds: u64) -> String {
    let secure = if over_https(request, state) { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}")
}

fn session_token(request: &HttpRequest) -> Option<String> {
    // actix's cookie parsing is a feature this build leaves out; the header is `name=value; name=value`.
    request
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|token| !token.is_empty())
}

/// The live session of the request, its key still valid; otherwise the answer that sends the browser to sign in.
async fn signed_in(request: &HttpRequest, state: &AppState) -> Result<(String, Session), HttpResponse> {
    let to_sign_in = || redirect("/console");
    let token = session_token(request).ok_or_else(to_sign_in)?;
    let session = state.console.session(&token).ok_or_else(to_sign_in)?;
    match console::still_valid(state, &session.caller).await {
        Ok(true) => Ok((token, session)),
        Ok(false) => {
            state.console.sign_out(&token);
            Err(to_sign_in())
        }
        Err(error) => Err(error_page(Some(&session), &error)),
    }
}

/// A page for a failed request, with its status.
fn error_page(session: Option<&Session>, error: &ApiError) -> HttpResponse {
    let status = error.status_code();
    if status.is_server_error() {
        // Logged with its cause; the page says only what the API would.
        let _ = error.error_response();
    }
    let failure = error.failure();
    let body = format!(
        r#"<div class="flash err" id="error" data-code="{}">{}</div><p><a href="javascript:history.back()">Back</a> · <a href="/console/apps">Apps</a></p>"#,
        html::escape(failure.code),
        html::escape(&failure.message)
    );
    html(status, html::page("Refused", session, &body))
}

fn app_of(raw: &str, session: &Session) -> Result<AppId, ApiError> {
    let app_id =
        AppId::parse(raw).map_err(|e| ApiError::bad_request(updraft_core::codes::INVALID_APP_ID, e.to_string()))?;
    session.caller.require_app(&app_id)?;
    Ok(app_id)
}

/// `GET /console`: the sign-in page, or the apps when signed in.
pub(crate) async fn index(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match signed_in(&request, &state).await {
        Ok(_) => redirect("/console/apps"),
        Err(_) => html(StatusCode::OK, html::sign_in_page(None)),
    }
}

/// `POST /console/signin` (form `key`): a session for a valid key.
pub(crate) async fn sign_in(
    request: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let address = request.peer_addr().map(|a| a.ip()).unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    if let Some(wait) = state.console.blocked_for(address) {
        let message = format!("Too many failed sign-ins from this address; try again in {} s.", wait.as_secs() + 1);
        return html(StatusCode::TOO_MANY_REQUESTS, html::sign_in_page(Some(&message)))
            .customize_retry_after(wait.as_secs() + 1);
    }
    let key = form.get("key").map(|k| k.trim()).unwrap_or_default();
    let caller = if key.is_empty() { Ok(None) } else { caller_of_key(&state, key).await };
    match caller {
        Ok(Some(caller)) => {
            tracing::info!(api_key.name = %caller.key_name(), "console sign-in");
            let token = state.console.sign_in(caller);
            let mut response = redirect("/console/apps");
            response.headers_mut().insert(
                header::SET_COOKIE,
                header::HeaderValue::from_str(&session_cookie(&request, &state, &token, SESSION_TTL.as_secs()))
                    .unwrap_or_else(|_| header::HeaderValue::from_static("")),
            );
            response
        }
        Ok(None) => {
            state.console.note_failure(address);
            tracing::info!("console sign-in refused: the key is not valid");
            html(StatusCode::UNAUTHORIZED, html::sign_in_page(Some("That API key is not valid.")))
        }
        Err(error) => error_page(None, &error),
    }
}

/// `POST /console/signout` (form `csrf`).
pub(crate) async fn sign_out(
    request: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Some(token) = session_token(&request)
        && let Some(session) = state.console.session(&token)
    {
        if !actions::csrf_matches(&session, &form) {
            return error_page(Some(&session), &actions::forged());
        }
        state.console.sign_out(&token);
    }
    let mut response = redirect("/console");
    if let Ok(value) = header::HeaderValue::from_str(&session_cookie(&request, &state, "", 0)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /console/assets/{file}`: the embedded stylesheet and script.
pub(crate) async fn asset(path: web::Path<String>) -> HttpResponse {
    let (content_type, body) = match path.as_str() {
        "console.css" => ("text/css; charset=utf-8", CSS),
        "console.js" => ("text/javascript; charset=utf-8", JS),
        _ => return HttpResponse::NotFound().content_type("text/plain").body("no such console asset"),
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(body)
}

/// `GET /console/apps`: the apps the key may see.
pub(crate) async fn apps(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (_, session) = match signed_in(&request, &state).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let mut catalogs = Vec::new();
    for app_id in state.index.app_ids() {
        if session.caller.require_app(&app_id).is_ok()
            && let Ok(catalog) = state.catalog(&app_id)
        {
            catalogs.push(catalog);
        }
    }
    html(StatusCode::OK, html::page("Apps", Some(&session), &pages::apps(&catalogs)))
}

/// `GET /console/apps/{app_id}`: the overview.
pub(crate) async fn app(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let (_, session) = match signed_in(&request, &state).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let result = async {
        let app_id = app_of(&path, &session)?;
        console::app_overview(&state, &app_id).await
    }
    .await;
    match result {
        Ok(overview) => {
            let flash = actions::flash(&query);
            let title = overview.catalog.app().id.as_str().to_owned();
            html(StatusCode::OK, html::page(&title, Some(&session), &pages::overview(&session, &overview, &flash)))
        }
        Err(error) => error_page(Some(&session), &error),
    }
}

/// `GET /console/apps/{app_id}/devices[?id=]`: the device lookup.
pub(crate) async fn devices(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let (_, session) = match signed_in(&request, &state).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let id = query.get("id").map(|id| id.trim().to_owned()).unwrap_or_default();
    let result = async {
        let app_id = app_of(&path, &session)?;
        state.catalog(&app_id)?;
        let found = if id.is_empty() { None } else { Some(console::device_lookup(&state, &app_id, &id).await?) };
        Ok::<_, ApiError>((app_id, found))
    }
    .await;
    match result {
        Ok((app_id, found)) => {
            let flash = actions::flash(&query);
            let body = pages::device(&session, app_id.as_str(), &id, found.as_ref(), &flash);
            html(StatusCode::OK, html::page("Device lookup", Some(&session), &body))
        }
        Err(error) => error_page(Some(&session), &error),
    }
}

/// `GET /console/apps/{app_id}/audit`: the audit log.
pub(crate) async fn audit(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let (_, session) = match signed_in(&request, &state).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let result = async {
        let app_id = app_of(&path, &session)?;
        let records = console::audit_log(&state, &app_id, 200).await?;
        Ok::<_, ApiError>((app_id, records))
    }
    .await;
    match result {
        Ok((app_id, records)) => {
            html(StatusCode::OK, html::page("Audit log", Some(&session), &pages::audit(app_id.as_str(), &records)))
        }
        Err(error) => error_page(Some(&session), &error),
    }
}

/// `POST /console/apps/{app_id}/actions/{action}`: one action, then back to the page it came from.
pub(crate) async fn action(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let (_, session) = match signed_in(&request, &state).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let (app, name) = path.into_inner();
    let result = async {
        let app_id = app_of(&app, &session)?;
        actions::run(&state, &session, &app_id, &name, &form).await?;
        Ok::<_, ApiError>(app_id)
    }
    .await;
    match result {
        Ok(app_id) => {
            let page = if name == "device-pin" {
                let device = form.get("device_id").map(String::as_str).unwrap_or_default();
                format!("/console/apps/{app_id}/devices?id={}&done={name}", urlencode(device))
            } else {
                format!("/console/apps/{app_id}?done={name}#{}", actions::anchor(&name))
            };
            redirect(&page)
        }
        Err(error) => error_page(Some(&session), &error),
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

trait RetryAfter {
    fn customize_retry_after(self, seconds: u64) -> Self;
}

impl RetryAfter for HttpResponse {
    fn customize_retry_after(mut self, seconds: u64) -> Self {
        if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
            self.headers_mut().insert(header::RETRY_AFTER, value);
        }
        self
    }
}
