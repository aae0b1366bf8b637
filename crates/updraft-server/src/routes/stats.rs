//! `/stats`: devices report events (POST, open, written behind); operators read recent events and per-bundle
//! counts (GET, API key).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde_json::{Value, json};
use updraft_capgo::stats::{parse_stats, stats_reply};

use crate::api_error::ApiError;
use crate::routes::body::{JSON_BODY_LIMIT, read_limited};
use crate::routes::call::{AppCall, app_params_call};
use crate::state::AppState;

const RECENT_EVENTS: u64 = 100;

pub(crate) async fn post_stats(state: web::Data<AppState>, payload: web::Payload) -> HttpResponse {
    let body = match read_limited(payload, JSON_BODY_LIMIT).await {
        Ok(body) => body,
        Err(error) => return actix_web::ResponseError::error_response(&error),
    };
    let request = match parse_stats(&body, Utc::now()) {
        Ok(request) => request,
        Err((code, message)) => return HttpResponse::BadRequest().json(json!({ "error": code, "message": message })),
    };
    // Events of unknown apps are acknowledged (a 4xx would make the device drop its whole batch) but not kept.
    let known: Vec<_> = request.events.iter().filter(|e| state.index.get(&e.app_id).is_some()).cloned().collect();
    if !state.writes.push_stats(known) {
        // Not acknowledged: the plugin keeps the events and sends them again.
        return actix_web::ResponseError::error_response(&crate::api_error::ApiError::Unavailable(
            "the stats queue is full (the database is slow or unavailable); send the events again later".into(),
        ));
    }
    HttpResponse::Ok().json(stats_reply(&request))
}

pub(crate) async fn get_stats(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params: _, app_id, .. } = app_params_call(&request, &state, payload).await?;
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
                "created_at": event.received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
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
