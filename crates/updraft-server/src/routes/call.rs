//! The common start of every management handler after authentication (the `Caller` extractor): read the body with
//! a size cap, and read the parameters (a JSON body for writes; a JSON body or else the query string for reads and
//! deletes, as Capgo's `getBodyOrQuery` does).

use actix_web::{HttpRequest, web};
use serde_json::{Map, Value};
use updraft_capgo::management::object_body;
use updraft_core::{Failure, codes};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::routes::body::{JSON_BODY_LIMIT, read_limited};
use crate::state::AppState;

/// A write's parameters: the body, which must be a JSON object.
pub(crate) async fn json_params(payload: web::Payload) -> Result<Map<String, Value>, ApiError> {
    let body = read_limited(payload, JSON_BODY_LIMIT).await?;
    Ok(object_body(&body)?)
}

/// A read's or delete's parameters: a JSON object body if there is one, else the query string.
pub(crate) async fn read_params(request: &HttpRequest, payload: web::Payload) -> Result<Map<String, Value>, ApiError> {
    let body = read_limited(payload, JSON_BODY_LIMIT).await?;
    Ok(body_or_query(&body, request)?)
}

/// A read or delete about one app the caller may touch: its parameters, id and current catalog.
pub(crate) struct AppCall {
    pub(crate) params: Map<String, Value>,
    pub(crate) app_id: updraft_core::AppId,
    pub(crate) catalog: std::sync::Arc<updraft_core::AppCatalog>,
}

/// `read_params`, then the `app_id` parameter, the caller's right to it, and the app's catalog.
pub(crate) async fn app_params_call(
    request: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    payload: web::Payload,
) -> Result<AppCall, ApiError> {
    let params = read_params(request, payload).await?;
    let app_id = updraft_capgo::management::app_id_field(&params)?;
    caller.require_app(&app_id)?;
    let catalog = state.catalog(&app_id)?;
    Ok(AppCall { params, app_id, catalog })
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
