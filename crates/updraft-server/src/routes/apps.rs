//! `/app`: register an app (POST `{app_id, name, public_key?}`) and set or clear its encryption key (PUT
//! `{app_id, public_key}`).

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde_json::{Value, json};
use updraft_capgo::encryption::AppPublicKey;
use updraft_capgo::management::{app_id_field, ok_body, parse_app_create, string_field};
use updraft_core::{App, ChannelName, codes};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::ops::apps::{self, AppChange};
use crate::routes::call::json_params;
use crate::state::AppState;

/// Checks a `public_key` field: PKCS#1 PEM, 2048-bit.
fn checked_public_key(params: &serde_json::Map<String, Value>) -> Result<Option<String>, ApiError> {
    let Some(pem) = string_field(params, "public_key")? else { return Ok(None) };
    AppPublicKey::parse(&pem).map_err(|e| ApiError::bad_request("invalid_public_key", e.to_string()))?;
    Ok(Some(pem.trim().to_owned()))
}

/// Checks a `default_channel` field (the Expo channel for clients that send no `expo-channel-name`).
fn checked_channel(params: &serde_json::Map<String, Value>) -> Result<Option<String>, ApiError> {
    let Some(name) = string_field(params, "default_channel")? else { return Ok(None) };
    let name = ChannelName::parse(&name).map_err(|e| ApiError::bad_request(codes::INVALID_FIELD, e.to_string()))?;
    Ok(Some(name.as_str().to_owned()))
}

pub(crate) async fn create_app(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = json_params(payload).await?;
    let create = parse_app_create(&params)?;
    caller.require_everything()?;
    let public_key = checked_public_key(&params)?;
    let default_channel = checked_channel(&params)?.unwrap_or_else(|| "production".to_owned());
    let app = App { id: create.app_id, name: create.name, public_key, default_channel, created_at: Utc::now() };
    apps::create(&state, &caller, &app).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ok", "app_id": app.id.as_str(), "name": app.name })))
}

pub(crate) async fn update_app(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = json_params(payload).await?;
    let app_id = app_id_field(&params)?;
    caller.require_app_change(&app_id)?;
    state.catalog(&app_id)?;
    let has_key = params.contains_key("public_key");
    let default_channel = checked_channel(&params)?;
    if !has_key && default_channel.is_none() {
        return Err(ApiError::bad_request(
            codes::MISSING_FIELD,
            "send `public_key` (the PKCS#1 PEM from .capgo_key_v2.pub, or null to remove it) and/or `default_channel`",
        ));
    }
    let public_key = if has_key { Some(checked_public_key(&params)?) } else { None };
    apps::update(&state, &caller, &app_id, &AppChange { public_key, default_channel }).await?;
    Ok(HttpResponse::Ok().json(ok_body()))
}
