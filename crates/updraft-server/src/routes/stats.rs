//! `/stats`: devices report events (POST, open, written behind); operators read recent events and per-bundle
//! counts (GET, API key).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde_json::{Value, json};
use updraft_capgo::stats::{parse_stats, queue_full_body, stats_reply};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::routes::body::{JSON_BODY_LIMIT, read_limited};
use crate::routes::call::{AppCall, app_params_call};
use crate::state::AppState;
use updraft_capgo::device_error_body;

const RECENT_EVENTS: u64 = 100;

pub(crate) async fn post_stats(
    state: web::Data<AppState>,
    limits: web::Data<crate::rate_limit::RateLimits>,
    payload: web::Payload,
) -> HttpResponse {
    let body = match read_limited(payload, JSON_BODY_LIMIT).await {
        Ok(body) => body,
        Err(error) => return actix_web::ResponseError::error_response(&error),
    };
    let request = match parse_stats(&body, Utc::now()) {
        Ok(request) => request,
        // A batch past the cap is a 413 like an oversized body: no device sends one.
        Err((code, message)) if code == updraft_core::codes::BODY_TOO_LARGE => {
            return HttpResponse::PayloadTooLarge().json(device_error_body(code, &message));
        }
        Err((code, message)) => return HttpResponse::BadRequest().json(device_error_body(code, &message)),
    };
    // A batch comes from one device: it counts once, against its first event's device.
    if let Some(first) = request.events.first()
        && let Err(retry_after) = limits.device(first.app_id.as_str(), first.device_id.as_str())
    {
        return crate::rate_limit::RateLimits::device_refusal(retry_after);
    }
    // Events of unknown apps are acknowledged (a 4xx would make the device drop its whole batch) but not kept.
    let known: Vec<_> = request.events.iter().filter(|e| state.index.get(&e.app_id).is_some()).cloned().collect();
    if !state.writes.push_stats(known) {
        // Not acknowledged, all or nothing: the plugin keeps the events and sends them again. It waits for
        // `Retry-After` only on a 429 (on a 5xx it retries at its next flush, about once a second); the code is not
        // Capgo's `too_many_requests`, which would also make the device queue a `rate_limit_reached` event.
        return HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", STATS_RETRY_AFTER_SECONDS.to_string()))
            .json(queue_full_body(STATS_RETRY_AFTER_SECONDS));
    }
    HttpResponse::Ok().json(stats_reply(&request))
}

/// How long a device waits before resending stats the gateway could not queue. A 429 pauses all of the plugin's
/// traffic (update checks included) for that long, so it is short.
const STATS_RETRY_AFTER_SECONDS: u64 = 5;

pub(crate) async fn get_stats(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params: _, app_id, .. } = app_params_call(&request, &state, &caller, payload).await?;
    let summary = crate::ops::stats::summary(&state, &app_id, RECENT_EVENTS).await?;
    let recent: Vec<Value> = summary
        .recent
        .iter()
        .map(|event| {
            json!({
                "device_id": event.device_id.as_str(),
                "action": event.action,
                "version_name": event.version_name,
                "old_version_name": event.old_version_name,
                "platform": event.platform,
                "plugin_version": event.plugin_version,
                "created_at": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "received_at": event.received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "metadata": event.metadata.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    let bundles: Vec<Value> = summary
        .per_bundle
        .iter()
        .map(|c| json!({ "version_name": c.version_name, "devices": c.devices, "installs": c.installs, "failures": c.failures }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "app_id": app_id.as_str(), "recent": recent, "bundles": bundles })))
}
