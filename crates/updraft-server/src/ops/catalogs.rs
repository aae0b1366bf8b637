//! Keeping this instance's in-memory state current with the metadata store outside a write made here: reloading
//! one app (its catalog and signing keys) after another instance changed it, and listing the apps to reload them all.

use updraft_core::AppId;

use crate::api_error::ApiError;
use crate::ops::AppState;

/// Reloads an app's signing keys and catalog; fails when either could not be read (whatever was loaded stays in
/// use meanwhile).
pub(crate) async fn reload_app(state: &AppState, app_id: &AppId) -> Result<(), ApiError> {
    let keys = state.expo.reload_keys(state.store.as_ref(), app_id).await;
    state.refresh(app_id).await?;
    Ok(keys?)
}

/// Every app's id.
pub(crate) async fn app_ids(state: &AppState) -> Result<Vec<AppId>, ApiError> {
    Ok(state.store.list_app_ids().await?)
}
