//! Channel self-assignment by plugins that keep the device's choice on the server (as a device override): apply
//! what `updraft_core::self_set_change` decides, and drop a choice the device made itself.

use updraft_core::{AppCatalog, AppId, DeviceId, OverrideTarget, Platform, SelfSetChange, SelfSetDenied};

use crate::api_error::ApiError;
use crate::ops::AppState;

/// Why a device's channel change did not happen.
pub(crate) enum SelfSetFailure {
    /// The rules refuse it.
    Denied(SelfSetDenied),
    /// The store failed.
    Failed(ApiError),
    /// The app holds as many device overrides as it may (`updraft_core::MAX_DEVICE_OVERRIDES_PER_APP`).
    Full,
}

impl From<ApiError> for SelfSetFailure {
    fn from(error: ApiError) -> Self {
        Self::Failed(error)
    }
}

/// Moves a device to channel `name` (or back to its platform's public default) by its override.
pub(crate) async fn set(
    state: &AppState,
    catalog: &AppCatalog,
    device_id: &DeviceId,
    name: &str,
    platform: Platform,
) -> Result<(), SelfSetFailure> {
    let app_id = &catalog.app().id;
    let current = catalog.override_for(device_id);
    // A call that changes nothing writes nothing and reloads nothing (devices repeat setChannel).
    match updraft_core::self_set_change(catalog, device_id, name, platform).map_err(SelfSetFailure::Denied)? {
        SelfSetChange::ClearOverride if current.is_none() => return Ok(()),
        SelfSetChange::ClearOverride => {
            state.store.delete_device_override(app_id, device_id).await.map_err(ApiError::from)?;
        }
        SelfSetChange::SetOverride { channel_id } => {
            let target = OverrideTarget { channel_id: Some(channel_id), bundle: None };
            if current == Some(&target) {
                return Ok(());
            }
            if !updraft_core::self_set_has_room(catalog, device_id) {
                return Err(SelfSetFailure::Full);
            }
            state.store.set_device_override(app_id, device_id, &target).await.map_err(ApiError::from)?;
        }
    }
    Ok(state.refresh(app_id).await?)
}

/// Drops a device's own choice; `false` when it has none to drop (no override, or an operator's).
pub(crate) async fn unset(state: &AppState, catalog: &AppCatalog, device_id: &DeviceId) -> Result<bool, ApiError> {
    if !updraft_core::self_unset_allowed(catalog, device_id) {
        return Ok(false);
    }
    let app_id: &AppId = &catalog.app().id;
    state.store.delete_device_override(app_id, device_id).await?;
    state.refresh(app_id).await?;
    Ok(true)
}
