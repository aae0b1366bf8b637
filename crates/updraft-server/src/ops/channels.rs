//! Channels: create or update one (pointing it at a bundle or at builtin), and delete one.

use updraft_core::{AppCatalog, AppId, Channel, ChannelName, ChannelTarget, ChannelUpdate, StoreError, codes};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::ops::AppState;
use crate::ops::audit::{self, Change};

/// Creates or updates `channel`; returns it and whether it was created.
pub(crate) async fn set(
    state: &AppState,
    by: &Caller,
    app_id: &AppId,
    channel: &ChannelName,
    update: &ChannelUpdate,
) -> Result<(Channel, bool), ApiError> {
    let catalog = state.catalog(app_id)?;
    let bundle_id = match &update.target {
        None => None,
        Some(ChannelTarget::Builtin) => Some(None),
        Some(ChannelTarget::Bundle(version)) => {
            let bundle =
                catalog.bundle_by_version(version.as_str()).ok_or_else(|| no_such_bundle(app_id, version.as_str()))?;
            Some(Some(bundle.id))
        }
    };
    let before = catalog.channel_by_name(channel.as_str()).map(|existing| channel_view(existing, &catalog));
    // The store checks the bundle again in its transaction: a delete may have committed since the catalog was read.
    let (written, created) =
        match (state.store.upsert_channel(app_id, channel, update, bundle_id).await, &update.target) {
            (Err(StoreError::NotFound(_)), Some(ChannelTarget::Bundle(version))) => {
                return Err(no_such_bundle(app_id, version.as_str()));
            }
            (written, _) => written?,
        };
    state.refresh(app_id).await?;
    let refreshed = state.catalog(app_id)?;
    let after = refreshed.channel_by_name(channel.as_str()).map(|written| channel_view(written, &refreshed));
    let change = Change { app_id: Some(app_id), channel: Some(channel.as_str()), action: "channel.set", before, after };
    audit::append(state, by.key_name(), change).await?;
    tracing::info!(app.id = %app_id, channel.name = %written.name, "channel {} written", written.name);
    Ok((written, created))
}

fn no_such_bundle(app_id: &AppId, version: &str) -> ApiError {
    ApiError::bad_request(
        codes::BUNDLE_VERSION_NOT_FOUND,
        format!("bundle {version} does not exist for app {app_id}; upload it first with POST /bundle"),
    )
}

/// Deletes a channel.
pub(crate) async fn delete(state: &AppState, by: &Caller, app_id: &AppId, name: &ChannelName) -> Result<(), ApiError> {
    let catalog = state.catalog(app_id)?;
    let before = catalog.channel_by_name(name.as_str()).map(|existing| channel_view(existing, &catalog));
    match state.store.delete_channel(app_id, name).await {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::not_found(codes::CHANNEL_NOT_FOUND, format!("channel {name} does not exist")));
        }
        Err(other) => return Err(other.into()),
    }
    state.refresh(app_id).await?;
    let change =
        Change { app_id: Some(app_id), channel: Some(name.as_str()), action: "channel.delete", before, after: None };
    audit::append(state, by.key_name(), change).await
}

/// What the audit log records of a channel: what it serves and its flags.
pub(crate) fn channel_view(channel: &Channel, catalog: &AppCatalog) -> serde_json::Value {
    let bundle = channel.bundle_id.and_then(|id| catalog.bundle(id)).map(|bundle| bundle.version.as_str().to_owned());
    serde_json::json!({
        "name": channel.name.as_str(),
        "bundle": bundle.unwrap_or_else(|| "builtin".to_owned()),
        "public": channel.settings.public,
        "ios": channel.settings.ios,
        "android": channel.settings.android,
        "allow_device_self_set": channel.settings.allow_device_self_set,
    })
}

/// `POST /channel` with Capgo's rollout fields: the channel is written, then the fields are applied to its rollout
/// ([`crate::ops::rollouts::apply_capgo_fields`]).
pub(crate) async fn set_with_rollout(
    state: &AppState,
    caller: &Caller,
    app_id: &AppId,
    channel: &ChannelName,
    update: &ChannelUpdate,
    rollout: &updraft_capgo::management::ChannelRollout,
    by: &str,
) -> Result<(Channel, bool), ApiError> {
    let written = set(state, caller, app_id, channel, update).await?;
    if !rollout.is_empty() {
        crate::ops::rollouts::apply_capgo_fields(state, app_id, channel, rollout, by).await?;
    }
    Ok(written)
}
