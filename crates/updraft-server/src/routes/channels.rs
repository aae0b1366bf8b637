//! `POST /channel`: create or update a channel (seed 002's `ChannelSet`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use updraft_capgo::error_codes;
use updraft_capgo::management::{ok_body, parse_channel_set};
use updraft_core::ChannelTarget;

use crate::api_error::ApiError;
use crate::auth::authenticate;
use crate::routes::body::{JSON_BODY_LIMIT, read_limited};
use crate::state::AppState;

pub(crate) async fn set_channel(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&request, &state).await?;
    let body = read_limited(payload, JSON_BODY_LIMIT).await?;
    let set = parse_channel_set(&body)?;
    caller.require_app(&set.app_id)?;
    let catalog = state.catalog(&set.app_id)?;
    let bundle_id = match &set.update.target {
        None => None,
        Some(ChannelTarget::Builtin) => Some(None),
        Some(ChannelTarget::Bundle(version)) => {
            let bundle = catalog.bundle_by_version(version.as_str()).ok_or_else(|| {
                ApiError::bad_request(
                    error_codes::CANNOT_FIND_VERSION,
                    format!("bundle {version} does not exist for app {}; upload it first with POST /bundle", set.app_id),
                )
            })?;
            Some(Some(bundle.id))
        }
    };
    let (channel, created) = state
        .store
        .upsert_channel(&set.app_id, &set.channel, &set.update, bundle_id)
        .await?;
    state.refresh(&set.app_id).await?;
    tracing::info!(app.id = %set.app_id, channel.name = %channel.name, "channel {} written", channel.name);
    if created {
        Ok(HttpResponse::Ok()
            .json(json!({ "status": "ok", "id": channel.id, "public": channel.settings.public })))
    } else {
        Ok(HttpResponse::Ok().json(ok_body()))
    }
}
