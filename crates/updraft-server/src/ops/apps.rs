//! Apps: register one, and change its encryption key or default Expo channel.

use updraft_core::{App, AppId, FailureKind, StoreError, codes};

use crate::api_error::ApiError;
use crate::ops::AppState;

/// Registers an app.
pub(crate) async fn create(state: &AppState, app: &App) -> Result<(), ApiError> {
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
    Ok(())
}

/// What to change on an app.
pub(crate) struct AppChange {
    /// `Some(None)` removes the key.
    pub(crate) public_key: Option<Option<String>>,
    pub(crate) default_channel: Option<String>,
}

/// Changes an existing app.
pub(crate) async fn update(state: &AppState, app_id: &AppId, change: &AppChange) -> Result<(), ApiError> {
    state.catalog(app_id)?;
    if let Some(public_key) = &change.public_key {
        state.store.set_app_public_key(app_id, public_key.as_deref()).await?;
    }
    if let Some(channel) = &change.default_channel {
        state.store.set_app_default_channel(app_id, channel).await?;
    }
    state.refresh(app_id).await
}
