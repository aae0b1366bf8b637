//! `GET /release_health?app_id=…[&channel=…]`: per release and channel, adoption and failure counts and rates
//! (API key with access to the app).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;
use updraft_core::{Failure, codes};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::routes::call::{AppCall, app_params_call};
use crate::state::AppState;

pub(crate) async fn get_release_health(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params, app_id, .. } = app_params_call(&request, &state, &caller, payload).await?;
    let channel = match params.get("channel") {
        None | Some(Value::Null) => None,
        Some(Value::String(channel)) if !channel.is_empty() => Some(channel.as_str()),
        Some(other) => {
            return Err(Failure::invalid(
                codes::INVALID_REQUEST,
                format!("channel must be a channel name such as production, got {other}"),
            )
            .into());
        }
    };
    let answer = crate::ops::release_health::report(&state, &app_id, channel).await?;
    Ok(HttpResponse::Ok().json(answer))
}
