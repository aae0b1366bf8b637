//! `GET /audit?app_id=…[&limit=]`: the newest records of an app's audit log (any key that may see the app); without
//! `app_id`, the whole installation's (a key scoped to no app).

use actix_web::{HttpRequest, HttpResponse, web};
use updraft_capgo::management::{app_id_field, string_field};
use updraft_core::codes;

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::contract::audit::{AuditEntry, AuditLog};
use crate::ops::audit;
use crate::routes::call::read_params;
use crate::state::AppState;

/// Records a page shows unless `limit` says otherwise, and the most it may ask for.
const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1000;

pub(crate) async fn list(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = read_params(&request, payload).await?;
    let limit = match string_field(&params, "limit")? {
        None => DEFAULT_LIMIT,
        Some(raw) => raw.parse::<u64>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
            ApiError::bad_request(
                codes::INVALID_FIELD,
                format!("`limit` must be a whole number from 1 to {MAX_LIMIT}, got {raw:?}"),
            )
        })?,
    };
    let app_id = if params.contains_key("app_id") {
        let app_id = app_id_field(&params)?;
        caller.require_app(&app_id)?;
        state.catalog(&app_id)?;
        Some(app_id)
    } else {
        if caller.grant().app.is_some() {
            return Err(ApiError::bad_request(
                codes::MISSING_FIELD,
                "field `app_id` is required for a key scoped to an app (GET /audit?app_id=…)",
            ));
        }
        None
    };
    let records = audit::list(&state, app_id.as_ref(), limit).await?;
    Ok(HttpResponse::Ok().json(AuditLog { records: records.iter().map(AuditEntry::of).collect() }))
}
