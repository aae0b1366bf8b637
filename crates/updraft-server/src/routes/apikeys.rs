//! `/apikey`: mint (POST `{name, app_id?}`), list (GET) and revoke (DELETE `{name}` or `{id}`) the gateway's API keys.
//! Only an unscoped caller (the admin key or an unscoped stored key) may manage keys. A key's secret is in the answer
//! to its creation and nowhere else; only its SHA-256 is stored.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use updraft_capgo::management::string_field;
use updraft_core::{ApiKeyRecord, ApiKeyScope, AppId, codes};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::ops::api_keys::{self, KeyRef};
use crate::routes::call::{json_params, read_params};
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
        ApiError::bad_request(codes::MISSING_FIELD, "field `name` is required (a name to recognise the key by)")
    })?;
    if name.len() > NAME_LIMIT || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            codes::INVALID_REQUEST,
            format!("field `name` must be at most {NAME_LIMIT} bytes of printable text"),
        ));
    }
    Ok(name)
}

/// POST: mint a key, optionally scoped to one existing app.
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = json_params(payload).await?;
    caller.require_everything()?;
    let name = checked_name(string_field(&params, "name")?)?;
    let scope = match string_field(&params, "app_id")? {
        None => ApiKeyScope::All,
        Some(raw) => ApiKeyScope::App(
            AppId::parse(&raw).map_err(|e| ApiError::bad_request(codes::INVALID_APP_ID, e.to_string()))?,
        ),
    };
    let (key, record) = api_keys::create(&state, &name, scope).await?;
    let mut answer = key_json(&record);
    answer["status"] = json!("ok");
    answer["key"] = json!(key);
    Ok(HttpResponse::Ok().json(answer))
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
    let keys: Vec<Value> = api_keys::list(&state).await?.iter().map(key_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "keys": keys })))
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
    let name = string_field(&params, "name")?;
    let id = string_field(&params, "id")?;
    let key = match (name, id) {
        (_, Some(id)) => KeyRef::Id(id),
        (Some(name), None) => KeyRef::Name(name),
        (None, None) => {
            return Err(ApiError::bad_request(
                codes::MISSING_FIELD,
                "field `name` (or `id`) is required: the key to revoke, as `updraft apikey list` shows it",
            ));
        }
    };
    let revoked = api_keys::revoke(&state, &key).await?;
    let mut answer = key_json(&revoked);
    answer["status"] = json!("ok");
    Ok(HttpResponse::Ok().json(answer))
}
