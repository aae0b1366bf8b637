//! `POST /app`: register an app.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde_json::json;
use updraft_capgo::error_codes;
use updraft_capgo::management::parse_app_create;
use updraft_core::{App, StoreError};

use crate::api_error::ApiError;
use crate::auth::authenticate;
use crate::routes::body::{JSON_BODY_LIMIT, read_limited};
use crate::state::AppState;

pub(crate) async fn create_app(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&request, &state).await?;
    let body = read_limited(payload, JSON_BODY_LIMIT).await?;
    let create = parse_app_create(&body)?;
    caller.require_everything()?;
    let app = App {
        id: create.app_id,
        name: create.name,
        created_at: Utc::now(),
    };
    match state.store.create_app(&app).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::status(
                409,
                error_codes::APP_ALREADY_EXISTS,
                format!("app {} already exists", app.id),
            ));
        }
        Err(other) => return Err(other.into()),
    }
    state.refresh(&app.id).await?;
    tracing::info!(app.id = %app.id, "created app {}", app.id);
    Ok(HttpResponse::Ok()
        .json(json!({ "status": "ok", "app_id": app.id.as_str(), "name": app.name })))
}
