//! `/channel`: create or update (POST, seed 002's `ChannelSet`), list or read one (GET), delete (DELETE).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use updraft_capgo::management::{
    PAGE_SIZE, channel_field, channel_json, ok_body, page_field, parse_channel_set, string_field,
};
use updraft_core::{ChannelName, codes};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::ops::channels;
use crate::routes::call::{AppCall, app_params_call, json_params};
use crate::state::AppState;

pub(crate) async fn set_channel(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = json_params(payload).await?;
    let set = parse_channel_set(&params)?;
    caller.require_channel(&set.app_id, &set.channel)?;
    let by = crate::routes::rollouts::operator(&caller);
    let (channel, created) =
        channels::set_with_rollout(&state, &caller, &set.app_id, &set.channel, &set.update, &set.rollout, &by).await?;
    if created {
        Ok(HttpResponse::Ok().json(json!({ "status": "ok", "id": channel.id, "public": channel.settings.public })))
    } else {
        Ok(HttpResponse::Ok().json(ok_body()))
    }
}

pub(crate) async fn get_channels(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params, catalog, .. } = app_params_call(&request, &state, &caller, payload).await?;
    if let Some(name) = string_field(&params, "channel")? {
        let channel = catalog
            .channel_by_name(&name)
            .ok_or_else(|| ApiError::not_found(codes::CHANNEL_NOT_FOUND, format!("channel {name} does not exist")))?;
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
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params, app_id, .. } = app_params_call(&request, &state, &caller, payload).await?;
    let name: ChannelName = channel_field(&params, "channel")?;
    caller.require_channel(&app_id, &name)?;
    channels::delete(&state, &caller, &app_id, &name).await?;
    Ok(HttpResponse::Ok().json(ok_body()))
}
