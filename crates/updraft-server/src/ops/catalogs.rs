//! Keeping this instance's in-memory state current with the metadata store outside a write made here: reloading
//! one app (its catalog and signing keys) after another instance changed it, and listing the apps to reload them all.

use updraft_core::AppId;

use crate::api_error::ApiError;
use crate::ops::AppState;

/// Reloads an app's signing keys and catalog.
pub(crate) async fn reload_app(state: &AppState, app_id: &AppId) -> Result<(), ApiError> {
    if let Err(error) = state.expo.reload_keys(state.store.as_ref(), app_id).await {
        tracing::warn!(app.id = %app_id, "reloading signing keys of a changed app failed: {error}");
    }
    state.refresh(app_id).await
}

/// Reloads an app's catalog only.
pub(crate) async fn reload_catalog(state: &AppState, app_id: &AppId) -> Result<(), ApiError> {
    state.refresh(app_id).await
}

/// Every app's id.
pub(crate) async fn app_ids(state: &AppState) -> Result<Vec<AppId>, ApiError> {
    Ok(state.store.list_app_ids().await?)
}
