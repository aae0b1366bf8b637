//! `/apikey`: mint (POST `{name, app_id?}`), list (GET) and revoke (DELETE `{name}` or `{id}`) the gateway's API keys.
//! Only an unscoped caller (the admin key or an unscoped stored key) may manage keys. A key's secret is in the answer
//! to its creation and nowhere else; only its SHA-256 is stored.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde_json::{Value, json};
use updraft_capgo::error_codes;
use updraft_capgo::management::string_field;
use updraft_core::{ApiKeyRecord, ApiKeyScope, AppId};

use crate::api_error::ApiError;
use crate::api_keys;
use crate::routes::call::{json_call, params_call};
use crate::state::AppState;

/// Longest key name accepted.
const NAME_LIMIT: usize = 100;

fn key_json(record: &ApiKeyRecord) -> Value {
    json!({
        "id": record.id,
        "name": record.name,
        "app_id": match &record.scope { ApiKeyScope::All => Value::Null, ApiKeyScope::App(app) => json!(app.as_str()) },
        "created_at": record.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "revoked_at": record.revoked_at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    })
}

fn checked_name(name: Option<String>) -> Result<String, ApiError> {
    let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).ok_or_else(|| {
        ApiError::bad_request(error_codes::MISSING_FIELD, "field `name` is required (a name to recognise the key by)")
    })?;
    if name.len() > NAME_LIMIT || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            error_codes::INVALID_REQUEST,
            format!("field `name` must be at most {NAME_LIMIT} bytes of printable text"),
        ));
    }
    Ok(name)
}

/// POST: mint a key, optionally scoped to one existing app.
pub(crate) async fn create(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let call = json_call(&request, &state, payload).await?;
    call.caller.require_everything()?;
    let name = checked_name(string_field(&call.params, "name")?)?;
    let scope = match string_field(&call.params, "app_id")? {
        None => ApiKeyScope::All,
        Some(raw) => {
            let app_id =
                AppId::parse(&raw).map_err(|e| ApiError::bad_request(error_codes::INVALID_APP_ID, e.to_string()))?;
            state.catalog(&app_id)?;
            ApiKeyScope::App(app_id)
        }
    };
    let existing = state.store.list_api_keys().await?;
    if existing.iter().any(|key| key.is_active() && key.name == name) {
        return Err(ApiError::status(
            409,
            error_codes::INVALID_REQUEST,
            format!("an active API key is already named {name:?}; pick another name or revoke that key first"),
        ));
    }
    let (key, record) = api_keys::mint(&name, scope);
    state.store.insert_api_key(&record).await?;
    tracing::info!(api_key.id = %record.id, api_key.name = %record.name, "created API key");
    let mut answer = key_json(&record);
    answer["status"] = json!("ok");
    answer["key"] = json!(key);
    Ok(HttpResponse::Ok().json(answer))
}

/// GET: every key, revoked ones included, without secrets.
pub(crate) async fn list(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let call = params_call(&request, &state, payload).await?;
    call.caller.require_everything()?;
    let keys: Vec<Value> = state.store.list_api_keys().await?.iter().map(key_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "keys": keys })))
}

/// DELETE: revoke the active key with this `name` (or this `id`).
pub(crate) async fn revoke(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let call = params_call(&request, &state, payload).await?;
    call.caller.require_everything()?;
    let name = string_field(&call.params, "name")?;
    let id = string_field(&call.params, "id")?;
    let active: Vec<ApiKeyRecord> = state.store.list_api_keys().await?.into_iter().filter(|k| k.is_active()).collect();
    let matching: Vec<&ApiKeyRecord> = match (&name, &id) {
        (_, Some(id)) => active.iter().filter(|k| &k.id == id).collect(),
        (Some(name), None) => active.iter().filter(|k| &k.name == name).collect(),
        (None, None) => {
            return Err(ApiError::bad_request(
                error_codes::MISSING_FIELD,
                "field `name` (or `id`) is required: the key to revoke, as `updraft apikey list` shows it",
            ));
        }
    };
    let record = match matching.as_slice() {
        [one] => *one,
        [] => {
            let what = id.map_or_else(|| format!("named {:?}", name.unwrap_or_default()), |id| format!("with id {id}"));
            return Err(ApiError::status(
                404,
                error_codes::NOT_FOUND,
                format!("no active API key {what}; `updraft apikey list` shows the keys"),
            ));
        }
        several => {
            let ids: Vec<&str> = several.iter().map(|k| k.id.as_str()).collect();
            return Err(ApiError::status(
                409,
                error_codes::INVALID_REQUEST,
                format!("several active keys share that name (ids {}); revoke one by `id`", ids.join(", ")),
            ));
        }
    };
    let revoked_at = Utc::now();
    if !state.store.revoke_api_key(&record.id, revoked_at).await? {
        return Err(ApiError::status(404, error_codes::NOT_FOUND, "the key was revoked meanwhile"));
    }
    tracing::info!(api_key.id = %record.id, api_key.name = %record.name, "revoked API key");
    let mut answer = key_json(&ApiKeyRecord { revoked_at: Some(revoked_at), ..record.clone() });
    answer["status"] = json!("ok");
    Ok(HttpResponse::Ok().json(answer))
}
