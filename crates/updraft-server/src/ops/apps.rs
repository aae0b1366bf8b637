//! Apps: register one, and change its encryption key or default Expo channel.

use updraft_core::{App, AppId, FailureKind, StoreError, codes};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::ops::AppState;
use crate::ops::audit::{self, Change};

/// Registers an app.
pub(crate) async fn create(state: &AppState, by: &Caller, app: &App) -> Result<(), ApiError> {
    match state.store.create_app(app).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::client(
                FailureKind::Conflict,
                codes::APP_ALREADY_EXISTS,
                format!("app {} already exists", app.id),
            ));
        }
        Err(other) => return Err(other.into()),
    }
    state.refresh(&app.id).await?;
    tracing::info!(app.id = %app.id, "created app {}", app.id);
    let after = Some(app_view(app));
    audit::append(
        state,
        by.key_name(),
        Change { app_id: Some(&app.id), channel: None, action: "app.create", before: None, after },
    )
    .await
}

/// What to change on an app.
pub(crate) struct AppChange {
    /// `Some(None)` removes the key.
    pub(crate) public_key: Option<Option<String>>,
    pub(crate) default_channel: Option<String>,
}

/// Changes an existing app.
pub(crate) async fn update(state: &AppState, by: &Caller, app_id: &AppId, change: &AppChange) -> Result<(), ApiError> {
    let before = Some(app_view(state.catalog(app_id)?.app()));
    if let Some(public_key) = &change.public_key {
        state.store.set_app_public_key(app_id, public_key.as_deref()).await?;
    }
    if let Some(channel) = &change.default_channel {
        state.store.set_app_default_channel(app_id, channel).await?;
    }
    state.refresh(app_id).await?;
    let after = Some(app_view(state.catalog(app_id)?.app()));
    audit::append(
        state,
        by.key_name(),
        Change { app_id: Some(app_id), channel: None, action: "app.update", before, after },
    )
    .await
}

/// What the audit log records of an app (whether it has an encryption key, not the key).
fn app_view(app: &App) -> serde_json::Value {
    serde_json::json!({
        "app_id": app.id.as_str(),
        "name": app.name,
        "default_channel": app.default_channel,
        "has_public_key": app.public_key.is_some(),
    })
}
