//! `/channel`: create or update (POST, seed 002's `ChannelSet`), list or read one (GET), delete (DELETE).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use updraft_capgo::error_codes;
use updraft_capgo::management::{
    ManagementError, PAGE_SIZE, channel_field, channel_json, ok_body, page_field, parse_channel_set, string_field,
};
use updraft_core::{ChannelName, ChannelTarget, StoreError};

use crate::api_error::ApiError;
use crate::routes::call::{AppCall, app_params_call, json_call};
use crate::state::AppState;

pub(crate) async fn set_channel(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let call = json_call(&request, &state, payload).await?;
    let set = parse_channel_set(&call.params)?;
    call.caller.require_app(&set.app_id)?;
    let catalog = state.catalog(&set.app_id)?;
    let bundle_id = match &set.update.target {
        None => None,
        Some(ChannelTarget::Builtin) => Some(None),
        Some(ChannelTarget::Bundle(version)) => {
            let bundle = catalog.bundle_by_version(version.as_str()).ok_or_else(|| {
                ApiError::bad_request(
                    error_codes::CANNOT_FIND_VERSION,
                    format!(
                        "bundle {version} does not exist for app {}; upload it first with POST /bundle",
                        set.app_id
                    ),
                )
            })?;
            Some(Some(bundle.id))
        }
    };
    let (channel, created) = state.store.upsert_channel(&set.app_id, &set.channel, &set.update, bundle_id).await?;
    state.refresh(&set.app_id).await?;
    tracing::info!(app.id = %set.app_id, channel.name = %channel.name, "channel {} written", channel.name);
    if created {
        Ok(HttpResponse::Ok().json(json!({ "status": "ok", "id": channel.id, "public": channel.settings.public })))
    } else {
        Ok(HttpResponse::Ok().json(ok_body()))
    }
}

pub(crate) async fn get_channels(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params, catalog, .. } = app_params_call(&request, &state, payload).await?;
    if let Some(name) = string_field(&params, "channel")? {
        let channel = catalog.channel_by_name(&name).ok_or_else(|| {
            ManagementError::not_found(error_codes::CHANNEL_NOT_FOUND, format!("channel {name} does not exist"))
        })?;
        return Ok(HttpResponse::Ok().json(channel_json(channel, &catalog)));
    }
    let page = page_field(&params)?;
    let mut channels: Vec<_> = catalog.channels().iter().collect();
    channels.sort_by_key(|c| (c.created_at, c.id));
    let items: Vec<Value> =
        channels.into_iter().skip(page * PAGE_SIZE).take(PAGE_SIZE).map(|c| channel_json(c, &catalog)).collect();
    Ok(HttpResponse::Ok().json(items))
}

pub(crate) async fn delete_channel(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params, app_id, .. } = app_params_call(&request, &state, payload).await?;
    let name: ChannelName = channel_field(&params, "channel")?;
    match state.store.delete_channel(&app_id, &name).await {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => {
            return Err(ManagementError::not_found(
                error_codes::CHANNEL_NOT_FOUND,
                format!("channel {name} does not exist"),
            )
            .into());
        }
        Err(other) => return Err(other.into()),
    }
    state.refresh(&app_id).await?;
    Ok(HttpResponse::Ok().json(ok_body()))
}
