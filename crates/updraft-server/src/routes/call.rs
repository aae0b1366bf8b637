//! The common start of every management handler: authenticate, read the body with a size cap, and read the
//! parameters (a JSON body for writes; a JSON body or else the query string for reads and deletes, as Capgo's
//! `getBodyOrQuery` does).

use actix_web::{HttpRequest, web};
use serde_json::{Map, Value};
use updraft_capgo::management::object_body;
use updraft_core::{Failure, codes};

use crate::api_error::ApiError;
use crate::auth::{Caller, authenticate};
use crate::routes::body::{JSON_BODY_LIMIT, read_limited};
use crate::state::AppState;

/// An authenticated management call with its parameters.
pub(crate) struct Call {
    pub(crate) caller: Caller,
    pub(crate) params: Map<String, Value>,
}

/// A write: the body must be a JSON object.
pub(crate) async fn json_call(
    request: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<Call, ApiError> {
    let caller = authenticate(request, state).await?;
    let body = read_limited(payload, JSON_BODY_LIMIT).await?;
    Ok(Call { caller, params: object_body(&body)? })
}

/// A read or delete: a JSON object body if there is one, else the query string.
pub(crate) async fn params_call(
    request: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<Call, ApiError> {
    let caller = authenticate(request, state).await?;
    let body = read_limited(payload, JSON_BODY_LIMIT).await?;
    Ok(Call { caller, params: body_or_query(&body, request)? })
}

/// A read or delete about one app the caller may touch: its parameters, id and current catalog.
pub(crate) struct AppCall {
    pub(crate) params: Map<String, Value>,
    pub(crate) app_id: updraft_core::AppId,
    pub(crate) catalog: std::sync::Arc<updraft_core::AppCatalog>,
}

/// `params_call`, then the `app_id` parameter, the caller's right to it, and the app's catalog.
pub(crate) async fn app_params_call(
    request: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<AppCall, ApiError> {
    let call = params_call(request, state, payload).await?;
    let app_id = updraft_capgo::management::app_id_field(&call.params)?;
    call.caller.require_app(&app_id)?;
    let catalog = state.catalog(&app_id)?;
    Ok(AppCall { params: call.params, app_id, catalog })
}

/// Reads a JSON object body if it is one, else the query string.
pub(crate) fn body_or_query(body: &[u8], request: &HttpRequest) -> Result<Map<String, Value>, Failure> {
    if !body.is_empty()
        && let Ok(map) = object_body(body)
    {
        return Ok(map);
    }
    query_map(request)
}

/// The query string as a map of strings.
pub(crate) fn query_map(request: &HttpRequest) -> Result<Map<String, Value>, Failure> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .map_err(|e| Failure::invalid(codes::INVALID_REQUEST, format!("bad query string: {e}")))?;
    Ok(pairs.into_inner().into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}
