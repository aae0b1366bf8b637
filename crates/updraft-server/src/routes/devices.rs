//! `/device`: per-device overrides (POST, seed 002's `DeviceLink`; DELETE) and what devices last reported (GET:
//! one device, or a list in Capgo's `{data, nextCursor, hasMore}` shape, by cursor or by zero-based page).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use updraft_capgo::management::{
    PAGE_SIZE, device_id_field, device_json, ok_body, page_field, parse_device_link, string_field,
};
use updraft_core::{DeviceCursor, DeviceId, codes};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::ops::devices;
use crate::routes::call::{AppCall, app_params_call, json_params};
use crate::state::AppState;

pub(crate) async fn link_device(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = json_params(payload).await?;
    let link = parse_device_link(&params)?;
    // A channel-scoped key may put a device on its channel only; pinning a bundle is not about one channel.
    match (&link.channel, &link.version) {
        (Some(channel), None) => caller.require_channel(&link.app_id, channel)?,
        _ => caller.require_app_change(&link.app_id)?,
    }
    devices::link(&state, &caller, &link.app_id, &link.device_id, link.channel.as_ref(), link.version.as_ref()).await?;
    Ok(HttpResponse::Ok().json(ok_body()))
}

pub(crate) async fn unlink_device(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params, app_id, .. } = app_params_call(&request, &state, &caller, payload).await?;
    let device_id = device_id_field(&params)?;
    caller.require_app_change(&app_id)?;
    devices::unlink(&state, &caller, &app_id, &device_id).await?;
    Ok(HttpResponse::Ok().json(ok_body()))
}

pub(crate) async fn get_devices(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params, app_id, catalog } = app_params_call(&request, &state, &caller, payload).await?;
    let params = &params;
    if params.contains_key("device_id") {
        let device_id = device_id_field(params)?;
        let device = devices::get(&state, &app_id, &device_id).await?;
        return Ok(HttpResponse::Ok().json(device_json(&device, &catalog)));
    }
    if params.contains_key("cursor") || params.contains_key("limit") {
        let limit = match string_field(params, "limit")? {
            None => PAGE_SIZE as u64,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| bad(format!("`limit` must be a whole number from 1 to 1000, got {raw:?}")))?,
        };
        let descending = match string_field(params, "order")?.as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(other) => return Err(bad(format!("`order` must be asc or desc, got {other:?}"))),
        };
        let cursor = string_field(params, "cursor")?.map(|raw| parse_cursor(&raw)).transpose()?;
        let listed = devices::list_after(&state, &app_id, cursor.as_ref(), limit + 1, descending).await?;
        return Ok(HttpResponse::Ok().json(device_page(listed, limit, &catalog)));
    }
    // Zero-based `page` of 50, in the same shape (Capgo always answers `{data, nextCursor, hasMore}`); the
    // `nextCursor` continues in the cursor form, whose default order (most recently seen first) is this one.
    let page = page_field(params)? as u64;
    let size = PAGE_SIZE as u64;
    let listed = devices::list(&state, &app_id, page * size, size + 1).await?;
    Ok(HttpResponse::Ok().json(device_page(listed, size, &catalog)))
}

/// `{data, nextCursor, hasMore}` from up to `limit + 1` devices (one more than a page tells whether more follow).
fn device_page(mut devices: Vec<updraft_core::DeviceReport>, limit: u64, catalog: &updraft_core::AppCatalog) -> Value {
    let has_more = devices.len() as u64 > limit;
    devices.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = devices
        .last()
        .filter(|_| has_more)
        .map(|d| format!("{}|{}", d.seen_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), d.device_id));
    let data: Vec<Value> = devices.iter().map(|d| device_json(d, catalog)).collect();
    json!({ "data": data, "nextCursor": next_cursor, "hasMore": has_more })
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request(codes::INVALID_FIELD, message)
}

/// A cursor is `<updated_at>|<device_id>`, as `nextCursor` gives it.
fn parse_cursor(raw: &str) -> Result<DeviceCursor, ApiError> {
    let invalid = || bad(format!("`cursor` must be a nextCursor value from a previous page, got {raw:?}"));
    let (time, device) = raw.split_once('|').ok_or_else(invalid)?;
    let updated_at = DateTime::parse_from_rfc3339(time).map_err(|_| invalid())?.with_timezone(&Utc);
    let device_id = DeviceId::parse(device).map_err(|_| invalid())?;
    Ok(DeviceCursor { updated_at, device_id })
}
