//! Channels: create or update one (pointing it at a bundle or at builtin), and delete one.

use updraft_core::{AppId, Channel, ChannelName, ChannelTarget, ChannelUpdate, StoreError, codes};

use crate::api_error::ApiError;
use crate::ops::AppState;

/// Creates or updates `channel`; returns it and whether it was created.
pub(crate) async fn set(
    state: &AppState,
    app_id: &AppId,
    channel: &ChannelName,
    update: &ChannelUpdate,
) -> Result<(Channel, bool), ApiError> {
    let catalog = state.catalog(app_id)?;
    let bundle_id = match &update.target {
        None => None,
        Some(ChannelTarget::Builtin) => Some(None),
        Some(ChannelTarget::Bundle(version)) => {
            let bundle = catalog.bundle_by_version(version.as_str()).ok_or_else(|| {
                ApiError::bad_request(
                    codes::BUNDLE_VERSION_NOT_FOUND,
                    format!("bundle {version} does not exist for app {app_id}; upload it first with POST /bundle"),
                )
            })?;
            Some(Some(bundle.id))
        }
    };
    let (written, created) = state.store.upsert_channel(app_id, channel, update, bundle_id).await?;
    state.refresh(app_id).await?;
    tracing::info!(app.id = %app_id, channel.name = %written.name, "channel {} written", written.name);
    Ok((written, created))
}

/// Deletes a channel.
pub(crate) async fn delete(state: &AppState, app_id: &AppId, name: &ChannelName) -> Result<(), ApiError> {
    match state.store.delete_channel(app_id, name).await {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::not_found(codes::CHANNEL_NOT_FOUND, format!("channel {name} does not exist")));
        }
        Err(other) => return Err(other.into()),
    }
    state.refresh(app_id).await
}

/// `POST /channel` with Capgo's rollout fields: the channel is written, then the fields are applied to its rollout
/// ([`crate::ops::rollouts::apply_capgo_fields`]).
pub(crate) async fn set_with_rollout(
    state: &AppState,
    app_id: &AppId,
    channel: &ChannelName,
    update: &ChannelUpdate,
    rollout: &updraft_capgo::management::ChannelRollout,
    by: &str,
) -> Result<(Channel, bool), ApiError> {
    let written = set(state, app_id, channel, update).await?;
    if !rollout.is_empty() {
        crate::ops::rollouts::apply_capgo_fields(state, app_id, channel, rollout, by).await?;
    }
    Ok(written)
}
