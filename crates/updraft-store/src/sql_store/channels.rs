//! Channels: creating, updating and deleting them. A channel is a named pointer at a bundle (or builtin) with the
//! policy flags Capgo devices are checked against.
//!
//! The settings themselves (defaults, partial updates) are `updraft_core::channel`; this module only stores them.

use chrono::Utc;
use sqlx::{Any, Transaction};
use tracing::instrument;
use updraft_core::{AppId, Channel, ChannelName, ChannelSettings, ChannelUpdate, StoreError, StoreResult};

use super::bundles::{BundleRef, keep_live, row_lock};
use super::{SqlStore, map_error};
use crate::backend::Backend;
use crate::rows;
use crate::time::to_db;

#[instrument(skip_all, fields(app.id = %app_id, channel.name = %name))]
pub(super) async fn upsert_channel(
    store: &SqlStore,
    app_id: &AppId,
    name: &ChannelName,
    update: &ChannelUpdate,
    bundle_id: Option<Option<i64>>,
) -> StoreResult<(Channel, bool)> {
    let mut tx = store.write_transaction().await?;
    let result = upsert_channel_in(&mut tx, store.backend, app_id, name, update, bundle_id).await?;
    store.announce(&mut tx, app_id).await?;
    tx.commit().await.map_err(map_error)?;
    Ok(result)
}

#[instrument(skip_all, fields(app.id = %app_id, channel.name = %name))]
pub(super) async fn delete_channel(store: &SqlStore, app_id: &AppId, name: &ChannelName) -> StoreResult<()> {
    let mut tx = store.write_transaction().await?;
    let channel =
        channel_row(&mut tx, app_id, name, "").await?.ok_or_else(|| StoreError::NotFound(format!("channel {name}")))?;
    sqlx::query("DELETE FROM device_overrides WHERE channel_id = $1")
        .bind(channel.id)
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
    // A channel made again under the same name starts without the old one's rollout.
    sqlx::query("DELETE FROM rollouts WHERE app_id = $1 AND channel = $2")
        .bind(app_id.as_str())
        .bind(name.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
    sqlx::query("DELETE FROM channels WHERE id = $1").bind(channel.id).execute(&mut *tx).await.map_err(map_error)?;
    store.announce(&mut tx, app_id).await?;
    tx.commit().await.map_err(map_error)
}

/// The upsert of `POST /channel`, inside a transaction (publishing a bundle to a channel runs it too).
pub(super) async fn upsert_channel_in(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    app_id: &AppId,
    name: &ChannelName,
    update: &ChannelUpdate,
    bundle_id: Option<Option<i64>>,
) -> StoreResult<(Channel, bool)> {
    let now = to_db(Utc::now());
    if let Some(Some(pointed)) = bundle_id {
        keep_live(tx, backend, app_id, BundleRef::Id(pointed)).await?;
    }
    // Locked on PostgreSQL: the update writes back what it read (the bundle when none is given, every setting the
    // update leaves alone), so a change committed meanwhile must be read, not overwritten with the older values.
    let existing = channel_row(tx, app_id, name, &row_lock(backend, "FOR UPDATE")).await?;
    let created = existing.is_none();
    let (mut settings, current_bundle) = match &existing {
        Some(channel) => (channel.settings.clone(), channel.bundle_id),
        None => (ChannelSettings::default(), None),
    };
    settings.apply(update);
    let bundle_id = bundle_id.unwrap_or(current_bundle);
    // Both statements bind the settings in the same order, then (created_at,) app_id and name.
    let query = if created {
        "INSERT INTO channels (bundle_id, public, disable_auto_update, disable_auto_update_under_native, ios, android,
            electron, allow_device_self_set, allow_emulator, allow_device, allow_dev, allow_prod, updated_at,
            created_at, app_id, name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    } else {
        "UPDATE channels SET bundle_id = $1, public = $2, disable_auto_update = $3, disable_auto_update_under_native = $4,
            ios = $5, android = $6, electron = $7, allow_device_self_set = $8, allow_emulator = $9, allow_device = $10,
            allow_dev = $11, allow_prod = $12, updated_at = $13
         WHERE app_id = $14 AND name = $15"
    };
    let mut statement = sqlx::query(query)
        .bind(bundle_id)
        .bind(settings.public)
        .bind(settings.disable_auto_update.as_str())
        .bind(settings.disable_auto_update_under_native)
        .bind(settings.ios)
        .bind(settings.android)
        .bind(settings.electron)
        .bind(settings.allow_device_self_set)
        .bind(settings.allow_emulator)
        .bind(settings.allow_device)
        .bind(settings.allow_dev)
        .bind(settings.allow_prod)
        .bind(now.clone());
    if created {
        statement = statement.bind(now);
    }
    statement.bind(app_id.as_str()).bind(name.as_str()).execute(&mut **tx).await.map_err(map_error)?;
    let channel =
        channel_row(tx, app_id, name, "").await?.ok_or_else(|| StoreError::NotFound(format!("channel {name}")))?;
    Ok((channel, created))
}

/// The channel's row; `lock` is appended to the select (a [`row_lock`] clause, or nothing).
async fn channel_row(
    tx: &mut Transaction<'_, Any>,
    app_id: &AppId,
    name: &ChannelName,
    lock: &str,
) -> StoreResult<Option<Channel>> {
    sqlx::query(&format!("SELECT * FROM channels WHERE app_id = $1 AND name = $2{lock}"))
        .bind(app_id.as_str())
        .bind(name.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_error)?
        .as_ref()
        .map(rows::channel)
        .transpose()
}
