//! `/channel_self`: the plugin's `setChannel` (POST), `getChannel` (PUT), `listChannels` (GET) and, for plugins
//! older than 5.34 / 6.34 / 7.34 / 8.0, `unsetChannel` (DELETE). Refusals are HTTP 200 `{error, message}`; success
//! replies never carry an `error` key.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Map, Value};
use updraft_capgo::channel_self::{
    ChannelSelfRequest, get_channel_body, list_body, missing_channel_body, parse_channel_self, self_set_refusal_body,
    set_ok_body,
};
use updraft_capgo::management::ok_body;
use updraft_core::{AppCatalog, SelfSetDenied, channel_report, codes, listable_channels, self_assignable};

use crate::api_error::{ApiError, capgo_code};
use crate::ops::channel_self::{self, SelfSetFailure};
use crate::routes::body::{JSON_BODY_LIMIT, read_limited};
use crate::routes::call::{body_or_query, query_map};
use crate::state::AppState;
use updraft_capgo::device_error_body;

/// Why a `/channel_self` call gets no success answer.
#[derive(Debug, thiserror::Error)]
enum Rejection {
    /// HTTP 400 `{error, message}`.
    #[error("{0}: {1}")]
    BadRequest(&'static str, String),
    /// HTTP 200 `{error, message}` (how Capgo refuses these calls).
    #[error("{}", .0)]
    Refusal(Value),
    /// Database trouble.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The device is past its rate limit (429 with `Retry-After`).
    #[error("rate limited")]
    Limited(std::time::Duration),
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(..) => StatusCode::BAD_REQUEST,
            Self::Refusal(_) => StatusCode::OK,
            Self::Api(error) => error.status_code(),
            Self::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::BadRequest(code, message) => HttpResponse::BadRequest().json(device_error_body(code, message)),
            Self::Refusal(body) => HttpResponse::Ok().json(body),
            Self::Api(error) => error.error_response(),
            Self::Limited(retry_after) => crate::rate_limit::RateLimits::device_refusal(*retry_after),
        }
    }
}

fn refusal(code: &str, message: &str) -> Rejection {
    Rejection::Refusal(device_error_body(code, message))
}

/// Parses the request and finds the app.
fn prepare(state: &AppState, map: &Map<String, Value>) -> Result<(ChannelSelfRequest, Arc<AppCatalog>), Rejection> {
    let request = parse_channel_self(map).map_err(|(code, message)| Rejection::BadRequest(code, message))?;
    let catalog = state.index.get(&request.app_id).ok_or_else(|| {
        refusal(codes::APP_NOT_FOUND, &format!("app {} is not registered on this update server", request.app_id))
    })?;
    Ok((request, catalog))
}

async fn read_request(
    http: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<(ChannelSelfRequest, Arc<AppCatalog>), Rejection> {
    let body = read_limited(payload, JSON_BODY_LIMIT).await?;
    let map = body_or_query(&body, http).map_err(|e| Rejection::BadRequest(capgo_code(&e), e.message))?;
    prepare_limited(http, state, &map)
}

/// `prepare`, then the device's rate limit.
fn prepare_limited(
    http: &HttpRequest,
    state: &AppState,
    map: &Map<String, Value>,
) -> Result<(ChannelSelfRequest, Arc<AppCatalog>), Rejection> {
    let (request, catalog) = prepare(state, map)?;
    if let Some(limits) = http.app_data::<web::Data<crate::rate_limit::RateLimits>>()
        && let Err(retry_after) = limits.device(request.app_id.as_str(), request.device_id.as_str())
    {
        return Err(Rejection::Limited(retry_after));
    }
    Ok((request, catalog))
}

/// POST: setChannel.
pub(crate) async fn set_channel(
    http: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, impl ResponseError> {
    let (request, catalog) = read_request(&http, &state, payload).await?;
    let Some(name) = request.channel.clone() else {
        // Capgo answers this with a 200 refusal too (`plugin_runtime/plugins/channel_self.ts`).
        return Err(Rejection::Refusal(missing_channel_body()));
    };
    if request.keeps_channel_locally() {
        // The device keeps its choice and sends it as defaultChannel: validate, store nothing.
        return match self_assignable(&catalog, &name, request.platform) {
            Ok(_) => Ok(HttpResponse::Ok().json(set_ok_body())),
            Err(refused) => Err(Rejection::Refusal(self_set_refusal_body(refused, &name))),
        };
    }
    // Older plugins: the choice lives on the server as a device override.
    match channel_self::set(&state, &catalog, &request.device_id, &name, request.platform).await {
        Ok(()) => Ok(HttpResponse::Ok().json(set_ok_body())),
        Err(SelfSetFailure::Denied(SelfSetDenied::OperatorOverride)) => Err(refusal(
            "cannot_override",
            "An operator set this device's channel; it cannot be changed from the device",
        )),
        Err(SelfSetFailure::Denied(SelfSetDenied::Refused(refused))) => {
            Err(Rejection::Refusal(self_set_refusal_body(refused, &name)))
        }
        Err(SelfSetFailure::Failed(error)) => Err(Rejection::Api(error)),
        Err(SelfSetFailure::Full) => Err(refusal(
            "too_many_overrides",
            "this app holds as many device channel choices as it may; update the plugin (current plugins keep the \
             choice on the device) or ask the operator to remove unused device overrides",
        )),
    }
}

/// PUT: getChannel. Answers the channel `/updates` would resolve for this device, naming it only when the plugin
/// cannot get pinned to it by the answer (`updraft_core::channel_report`: 8.47.9+ persist any name as their
/// defaultChannel).
pub(crate) async fn get_channel(
    http: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, impl ResponseError> {
    let (request, catalog) = read_request(&http, &state, payload).await?;
    let asked = request.channel.as_deref().or(request.default_channel.as_deref());
    // A plugin that sent no version is treated as a current one.
    let persists = request.plugin_version.as_ref().is_none_or(|v| v.persists_get_channel_reply());
    match channel_report(&catalog, &request.device_id, request.platform, asked, persists) {
        Some(report) => Ok(HttpResponse::Ok().json(get_channel_body(&report))),
        // A 400 carrying channel_not_found makes the device fall back to its local defaultChannel.
        None => Err(Rejection::BadRequest(codes::CHANNEL_NOT_FOUND, "No channel for this device".into())),
    }
}

/// GET: listChannels (info object in the query string).
pub(crate) async fn list_channels(
    http: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, impl ResponseError> {
    let map = query_map(&http).map_err(|e| Rejection::BadRequest(capgo_code(&e), e.message))?;
    let (request, catalog) = prepare_limited(&http, &state, &map)?;
    let channels = listable_channels(&catalog, request.platform, request.is_prod, request.is_emulator);
    Ok::<_, Rejection>(HttpResponse::Ok().json(list_body(&channels)))
}

/// DELETE: unsetChannel from plugins that keep the choice on the server (body or query string).
pub(crate) async fn unset_channel(
    http: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, impl ResponseError> {
    let (request, catalog) = read_request(&http, &state, payload).await?;
    if request.keeps_channel_locally() {
        return Ok(HttpResponse::Ok().json(ok_body()));
    }
    if !channel_self::unset(&state, &catalog, &request.device_id).await? {
        return Err(refusal("cannot_override", "This device has no channel it selected itself"));
    }
    Ok(HttpResponse::Ok().json(ok_body()))
}
