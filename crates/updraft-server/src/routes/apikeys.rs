//! `/apikey`: mint (POST `{name, app_id?}`), list (GET) and revoke (DELETE `{name}` or `{id}`) the gateway's API keys.
//! Only an unscoped caller (the admin key or an unscoped stored key) may manage keys. A key's secret is in the answer
//! to its creation and nowhere else; only its SHA-256 is stored.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};
use updraft_core::{AppId, ChannelName, Grant, Role, codes};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::contract::api_keys::{ApiKeyList, ApiKeyView, CreateApiKey, CreatedApiKey, RevokeApiKey, RevokedApiKey};
use crate::ops::api_keys::{self, KeyRef};
use crate::routes::call::{json_params, read_params};
use crate::state::AppState;

/// Longest key name accepted.
const NAME_LIMIT: usize = 100;

/// Reads parameters as a contract body, naming what was wrong.
fn body<T: serde::de::DeserializeOwned>(params: Map<String, Value>, expected: &str) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(params))
        .map_err(|e| ApiError::bad_request(codes::INVALID_FIELD, format!("{e}; expected {expected}")))
}

fn checked_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request(
            codes::MISSING_FIELD,
            "field `name` is required (a name to recognise the key by)",
        ));
    }
    if name.len() > NAME_LIMIT || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            codes::INVALID_REQUEST,
            format!("field `name` must be at most {NAME_LIMIT} bytes of printable text"),
        ));
    }
    Ok(name.to_owned())
}

/// POST: mint a key, optionally scoped to one existing app.
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = json_params(payload).await?;
    caller.require_everything()?;
    if !params.contains_key("name") {
        checked_name("")?;
    }
    let asked: CreateApiKey =
        body(params, "{\"name\", \"role\" (read, publish or admin), \"app_id\" (optional), \"channel\" (optional)}")?;
    let name = checked_name(&asked.name)?;
    let present = |raw: Option<String>| raw.filter(|raw| !raw.trim().is_empty());
    let app = present(asked.app_id)
        .map(|raw| AppId::parse(&raw).map_err(|e| ApiError::bad_request(codes::INVALID_APP_ID, e.to_string())))
        .transpose()?;
    let role = match present(asked.role) {
        None => Role::Admin,
        Some(raw) => Role::parse(&raw).map_err(|e| ApiError::bad_request(codes::INVALID_FIELD, e))?,
    };
    let channel = present(asked.channel)
        .map(|raw| {
            ChannelName::parse(&raw)
                .map_err(|e| ApiError::bad_request(codes::INVALID_FIELD, format!("field `channel`: {e}")))
        })
        .transpose()?;
    if channel.is_some() && app.is_none() {
        return Err(ApiError::bad_request(
            codes::MISSING_FIELD,
            "a key scoped to a channel needs `app_id` too (a channel belongs to one app)",
        ));
    }
    let grant = Grant { role, app, channel };
    let (key, record) = api_keys::create(&state, &caller, &name, &grant).await?;
    Ok(HttpResponse::Ok().json(CreatedApiKey { status: "ok".into(), key, view: ApiKeyView::of(&record) }))
}

/// GET: every key, revoked ones included, without secrets.
pub(crate) async fn list(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    read_params(&request, payload).await?;
    caller.require_everything()?;
    let keys = api_keys::list(&state).await?.iter().map(ApiKeyView::of).collect();
    Ok(HttpResponse::Ok().json(ApiKeyList { keys }))
}

/// DELETE: revoke the active key with this `name` (or this `id`).
pub(crate) async fn revoke(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = read_params(&request, payload).await?;
    caller.require_everything()?;
    let asked: RevokeApiKey = body(params, "{\"name\"} or {\"id\"}")?;
    let key = match (asked.name, asked.id) {
        (_, Some(id)) => KeyRef::Id(id),
        (Some(name), None) => KeyRef::Name(name),
        (None, None) => {
            return Err(ApiError::bad_request(
                codes::MISSING_FIELD,
                "field `name` (or `id`) is required: the key to revoke, as `updraft apikey list` shows it",
            ));
        }
    };
    let revoked = api_keys::revoke(&state, &caller, &key).await?;
    Ok(HttpResponse::Ok().json(RevokedApiKey { status: "ok".into(), view: ApiKeyView::of(&revoked) }))
}
