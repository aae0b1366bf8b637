//! `/device`: per-device overrides (seed 002's `DeviceLink`) and what a device last reported.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};
use updraft_capgo::error_codes;
use updraft_capgo::management::{
    ManagementError, app_id_field, device_id_field, object_body, ok_body, parse_device_link,
};
use updraft_core::OverrideTarget;

use crate::api_error::ApiError;
use crate::auth::authenticate;
use crate::routes::body::{JSON_BODY_LIMIT, read_limited};
use crate::state::AppState;

pub(crate) async fn link_device(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&request, &state).await?;
    let body = read_limited(payload, JSON_BODY_LIMIT).await?;
    let link = parse_device_link(&body)?;
    caller.require_app(&link.app_id)?;
    let catalog = state.catalog(&link.app_id)?;
    let channel_id = match &link.channel {
        None => None,
        Some(name) => {
            let channel = catalog.channel_by_name(name.as_str()).ok_or_else(|| {
                ManagementError::not_found(
                    error_codes::CHANNEL_NOT_FOUND,
                    format!("channel {name} does not exist"),
                )
            })?;
            if channel.settings.public {
                return Err(ApiError::bad_request(
                    "public_channel_override",
                    format!(
                        "channel {name} is public, so every device already gets it; override devices onto a private channel"
                    ),
                ));
            }
            Some(channel.id)
        }
    };
    let bundle_id = match &link.version {
        None => None,
        Some(version) => Some(
            catalog
                .bundle_by_version(version.as_str())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        error_codes::CANNOT_FIND_VERSION,
                        format!("bundle {version} does not exist"),
                    )
                })?
                .id,
        ),
    };
    if channel_id.is_none() && bundle_id.is_none() {
        return Ok(HttpResponse::Ok().json(ok_body()));
    }
    let target = OverrideTarget {
        channel_id,
        bundle_id,
    };
    state
        .store
        .set_device_override(&link.app_id, &link.device_id, &target)
        .await?;
    state.refresh(&link.app_id).await?;
    Ok(HttpResponse::Ok().json(ok_body()))
}

/// Reads the body if it is JSON, else the query string, as Capgo's `getBodyOrQuery` does.
fn body_or_query(
    body: &[u8],
    request: &HttpRequest,
) -> Result<Map<String, Value>, ManagementError> {
    if !body.is_empty()
        && let Ok(map) = object_body(body)
    {
        return Ok(map);
    }
    let pairs =
        web::Query::<Vec<(String, String)>>::from_query(request.query_string()).map_err(|e| {
            ManagementError::bad_request(
                error_codes::INVALID_REQUEST,
                format!("bad query string: {e}"),
            )
        })?;
    Ok(pairs
        .into_inner()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect())
}

pub(crate) async fn unlink_device(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&request, &state).await?;
    let body = read_limited(payload, JSON_BODY_LIMIT).await?;
    let params = body_or_query(&body, &request)?;
    let app_id = app_id_field(&params)?;
    let device_id = device_id_field(&params)?;
    caller.require_app(&app_id)?;
    state.catalog(&app_id)?;
    state
        .store
        .delete_device_override(&app_id, &device_id)
        .await?;
    state.refresh(&app_id).await?;
    Ok(HttpResponse::Ok().json(ok_body()))
}

pub(crate) async fn get_device(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&request, &state).await?;
    let body = read_limited(payload, JSON_BODY_LIMIT).await?;
    let params = body_or_query(&body, &request)?;
    let app_id = app_id_field(&params)?;
    caller.require_app(&app_id)?;
    let catalog = state.catalog(&app_id)?;
    let device_id = device_id_field(&params)?;
    let device = state
        .store
        .get_device(&app_id, &device_id)
        .await?
        .ok_or_else(|| {
            ManagementError::not_found(
                error_codes::DEVICE_NOT_FOUND,
                format!("device {device_id} has not checked in"),
            )
        })?;
    let override_target = catalog.override_for(&device_id);
    let channel = override_target
        .and_then(|o| o.channel_id)
        .and_then(|id| catalog.channel_by_id(id))
        .map(|c| c.name.as_str().to_owned());
    let pinned = override_target
        .and_then(|o| o.bundle_id)
        .and_then(|id| catalog.bundle(id));
    let mut answer = json!({
        "updated_at": device.seen_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "device_id": device.device_id.as_str(),
        "custom_id": device.custom_id,
        "is_prod": device.is_prod,
        "is_emulator": device.is_emulator,
        "install_source": device.install_source,
        "version_name": device.version_name,
        "app_id": device.app_id.as_str(),
        "platform": device.platform.as_str(),
        "plugin_version": device.plugin_version,
        "os_version": device.version_os,
        "version_build": device.version_build,
        "version_code": device.version_code,
        "key_id": device.key_id,
        "default_channel": device.default_channel,
    });
    if let Value::Object(map) = &mut answer {
        if let Some(channel) = channel {
            map.insert("channel".into(), Value::String(channel));
        }
        if let Some(bundle) = pinned {
            map.insert(
                "version".into(),
                json!({ "id": bundle.id, "name": bundle.version.as_str() }),
            );
        }
    }
    Ok(HttpResponse::Ok().json(answer))
}
