//! Devices: put one on a channel or pin it to a bundle (an override), remove its override, and read what devices
//! last reported.

use updraft_core::{
    AppId, BundlePin, ChannelName, ChannelTarget, DeviceCursor, DeviceId, DeviceReport, OverrideTarget, StoreError,
    codes,
};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::ops::AppState;
use crate::ops::audit::{self, Change};

/// Sets a device's override: a private channel, a bundle (or builtin), or both. Naming neither changes nothing.
pub(crate) async fn link(
    state: &AppState,
    by: &Caller,
    app_id: &AppId,
    device_id: &DeviceId,
    channel: Option<&ChannelName>,
    version: Option<&ChannelTarget>,
) -> Result<(), ApiError> {
    let catalog = state.catalog(app_id)?;
    let channel_id = match channel {
        None => None,
        Some(name) => {
            let channel = catalog.channel_by_name(name.as_str()).ok_or_else(|| {
                ApiError::not_found(codes::CHANNEL_NOT_FOUND, format!("channel {name} does not exist"))
            })?;
            if channel.settings.public {
                return Err(ApiError::bad_request(
                    "public_channel_override",
                    format!(
                        "channel {name} is public, so every device already gets it; override devices onto a private channel"
                    ),
                ));
            }
            Some(channel.id)
        }
    };
    let bundle = match version {
        None => None,
        Some(ChannelTarget::Builtin) => Some(BundlePin::Builtin),
        Some(ChannelTarget::Bundle(version)) => Some(BundlePin::Bundle(
            catalog.bundle_by_version(version.as_str()).ok_or_else(|| no_such_bundle(version.as_str()))?.id,
        )),
    };
    if channel_id.is_none() && bundle.is_none() {
        return Ok(());
    }
    let before = catalog.override_for(device_id).map(|target| override_view(device_id, target, &catalog));
    let target = OverrideTarget { channel_id, bundle };
    // The store checks a pinned bundle again in its transaction: a delete may have committed since the catalog was
    // read.
    match (state.store.set_device_override(app_id, device_id, &target).await, version) {
        (Err(StoreError::NotFound(_)), Some(ChannelTarget::Bundle(version))) => {
            return Err(no_such_bundle(version.as_str()));
        }
        (written, _) => written?,
    }
    state.refresh(app_id).await?;
    let after = Some(override_view(device_id, &target, &catalog));
    let change =
        Change { app_id: Some(app_id), channel: channel.map(ChannelName::as_str), action: "device.pin", before, after };
    audit::append(state, by.key_name(), change).await
}

fn no_such_bundle(version: &str) -> ApiError {
    ApiError::bad_request(
        codes::BUNDLE_VERSION_NOT_FOUND,
        format!("bundle {version} does not exist; upload it first, or pin the device to a version that exists"),
    )
}

/// Removes a device's override.
pub(crate) async fn unlink(
    state: &AppState,
    by: &Caller,
    app_id: &AppId,
    device_id: &DeviceId,
) -> Result<(), ApiError> {
    let catalog = state.catalog(app_id)?;
    let before = catalog.override_for(device_id).map(|target| override_view(device_id, target, &catalog));
    state.store.delete_device_override(app_id, device_id).await?;
    state.refresh(app_id).await?;
    let change = Change { app_id: Some(app_id), channel: None, action: "device.unpin", before, after: None };
    audit::append(state, by.key_name(), change).await
}

/// What the audit log and the console show of a device's override.
pub(crate) fn override_view(
    device_id: &DeviceId,
    target: &OverrideTarget,
    catalog: &updraft_core::AppCatalog,
) -> serde_json::Value {
    let channel = target.channel_id.and_then(|id| catalog.channel_by_id(id)).map(|c| c.name.as_str().to_owned());
    let bundle = match &target.bundle {
        None => None,
        Some(BundlePin::Builtin) => Some("builtin".to_owned()),
        Some(BundlePin::Bundle(id)) => catalog.bundle(*id).map(|b| b.version.as_str().to_owned()),
    };
    serde_json::json!({ "device_id": device_id.as_str(), "channel": channel, "bundle": bundle })
}

/// What a device last reported, or 404 `device_not_found`.
pub(crate) async fn get(state: &AppState, app_id: &AppId, device_id: &DeviceId) -> Result<DeviceReport, ApiError> {
    state
        .store
        .get_device(app_id, device_id)
        .await?
        .ok_or_else(|| ApiError::not_found(codes::DEVICE_NOT_FOUND, format!("device {device_id} has not checked in")))
}

/// Up to `limit` devices after `cursor`, in the order asked.
pub(crate) async fn list_after(
    state: &AppState,
    app_id: &AppId,
    cursor: Option<&DeviceCursor>,
    limit: u64,
    descending: bool,
) -> Result<Vec<DeviceReport>, ApiError> {
    Ok(state.store.list_devices_after(app_id, cursor, limit, descending).await?)
}

/// Up to `limit` devices from `offset`, most recently seen first.
pub(crate) async fn list(
    state: &AppState,
    app_id: &AppId,
    offset: u64,
    limit: u64,
) -> Result<Vec<DeviceReport>, ApiError> {
    Ok(state.store.list_devices(app_id, offset, limit).await?)
}
