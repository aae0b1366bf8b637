//! Rollouts: one row per (app, channel), the channel's current rollout. Every change is one transaction that also
//! announces the app (so every instance serves it within the change feed's delay), and every change of state is
//! conditional on the state the caller saw (`UPDATE ... WHERE state = ...`): of two instances halting the same
//! rollout at once, exactly one halts it, and the other learns that it did not.
//!
//! The Expo releases a change mints (the candidate published with its rollout, the stable release republished by a
//! halt) are recorded in the same transaction, so a rollout and what it serves never disagree.

use chrono::Utc;
use sqlx::{Any, Transaction};
use tracing::instrument;
use updraft_core::{
    AppId, ChannelName, ExpoRelease, Halt, HaltCause, RolloutId, RolloutState, RolloutTarget, StableTarget, StoreError,
    StoreResult, StoredRollout,
};

use super::bundles::{self, BundleRef};
use super::{SqlStore, db_integer, expo, map_error};
use crate::rows;
use crate::time::to_db;

fn candidate_columns(candidate: &RolloutTarget) -> (&'static str, &str) {
    match candidate {
        RolloutTarget::CapgoBundle(version) => ("capgo_bundle", version.as_str()),
        RolloutTarget::ExpoGroup(group) => ("expo_group", group.as_str()),
    }
}

fn stable_columns(stable: &StableTarget) -> (&'static str, Option<&str>) {
    match stable {
        StableTarget::Builtin => ("builtin", None),
        StableTarget::CapgoBundle(version) => ("capgo_bundle", Some(version.as_str())),
        StableTarget::ExpoPrevious => ("expo_previous", None),
    }
}

/// The `covers` column: one `platform runtime_version` pair per line (platforms hold no space, runtime versions no
/// control character).
fn covers_column(stored: &StoredRollout) -> String {
    stored
        .covers
        .iter()
        .map(|(platform, runtime)| format!("{} {runtime}", platform.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn completed_at(state: &RolloutState) -> Option<String> {
    match state {
        RolloutState::Completed { at } => Some(to_db(*at)),
        RolloutState::Active | RolloutState::Halted(_) => None,
    }
}

#[instrument(skip_all, fields(app.id = %stored.rollout.app_id(), channel.name = %stored.rollout.channel()))]
pub(super) async fn start_rollout(
    store: &SqlStore,
    stored: &StoredRollout,
    releases: &[ExpoRelease],
) -> StoreResult<()> {
    let rollout = &stored.rollout;
    if !rollout.is_active() {
        return Err(StoreError::Other("a rollout starts active".into()));
    }
    let mut tx = store.write_transaction().await?;
    // The Capgo bundles it serves must still be live (see `bundles::keep_live`).
    let stable = match rollout.stable() {
        StableTarget::CapgoBundle(version) => Some(version.as_str()),
        StableTarget::Builtin | StableTarget::ExpoPrevious => None,
    };
    let candidate = match rollout.candidate() {
        RolloutTarget::CapgoBundle(version) => Some(version.as_str()),
        RolloutTarget::ExpoGroup(_) => None,
    };
    for version in candidate.into_iter().chain(stable) {
        bundles::keep_live(&mut tx, store.backend, rollout.app_id(), BundleRef::Version(version)).await?;
    }
    // A halted or completed rollout on the channel makes way; an active one stays, and the insert then conflicts.
    sqlx::query("DELETE FROM rollouts WHERE app_id = $1 AND channel = $2 AND state <> 'active'")
        .bind(rollout.app_id().as_str())
        .bind(rollout.channel().as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
    let (candidate_kind, candidate) = candidate_columns(rollout.candidate());
    let (stable_kind, stable) = stable_columns(rollout.stable());
    let change = &stored.last_change;
    sqlx::query(
        "INSERT INTO rollouts (id, app_id, channel, state, percent_bps, candidate_kind, candidate, stable_kind, stable,
            covers, max_failure_rate, min_devices, started_at, health_since, completed_at, halted_at, halted_by,
            halt_automatic, halt_reason, halt_devices, halt_failures, changed_action, changed_by, changed_at,
            change_reason)
         VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL, NULL, $14, NULL, NULL,
            NULL, $15, $16, $17, $18)",
    )
    .bind(rollout.id().as_str())
    .bind(rollout.app_id().as_str())
    .bind(rollout.channel().as_str())
    .bind(i64::from(rollout.percent().basis_points()))
    .bind(candidate_kind)
    .bind(candidate)
    .bind(stable_kind)
    .bind(stable)
    .bind(covers_column(stored))
    .bind(rollout.policy().max_failure_rate().to_string())
    .bind(db_integer(rollout.policy().min_devices()))
    .bind(to_db(rollout.started_at()))
    .bind(to_db(rollout.health_since()))
    .bind(false)
    .bind(&change.action)
    .bind(&change.by)
    .bind(to_db(change.at))
    .bind(&change.reason)
    .execute(&mut *tx)
    .await
    .map_err(|error| match map_error(error) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("an active rollout on channel {}", rollout.channel())),
        other => other,
    })?;
    expo::insert_expo_releases_in(&mut tx, releases).await?;
    store.announce(&mut tx, rollout.app_id()).await?;
    tx.commit().await.map_err(map_error)
}

#[instrument(skip_all, fields(app.id = %app_id, channel.name = %channel, rollout.id = %rollout_id.as_str()))]
pub(super) async fn halt_rollout(
    store: &SqlStore,
    app_id: &AppId,
    channel: &ChannelName,
    rollout_id: &RolloutId,
    halt: &Halt,
    releases: &[ExpoRelease],
    judged: Option<&StoredRollout>,
) -> StoreResult<bool> {
    let mut tx = store.write_transaction().await?;
    let figures = halt.figures;
    let judged_change = judged.map(|judged| to_db(judged.last_change.at));
    let halted = sqlx::query(
        "UPDATE rollouts SET state = 'halted', halted_at = $1, halted_by = $2, halt_automatic = $3, halt_reason = $4,
            halt_devices = $5, halt_failures = $6, changed_action = 'halt', changed_by = $7, changed_at = $8,
            change_reason = $9
         WHERE id = $10 AND app_id = $11 AND channel = $12 AND state = 'active'
            AND ($13 IS NULL OR changed_at = $14)",
    )
    .bind(to_db(halt.at))
    .bind(halt.by.label())
    .bind(halt.by == HaltCause::Automatic)
    .bind(&halt.reason)
    .bind(figures.map(|f| db_integer(f.devices)))
    .bind(figures.map(|f| db_integer(f.failures)))
    .bind(halt.by.label())
    .bind(to_db(halt.at))
    .bind(&halt.reason)
    .bind(rollout_id.as_str())
    .bind(app_id.as_str())
    .bind(channel.as_str())
    .bind(judged_change.as_deref())
    .bind(judged_change.as_deref())
    .execute(&mut *tx)
    .await
    .map_err(map_error)?
    .rows_affected()
        == 1;
    if !halted {
        // Someone else halted, completed or changed it first: nothing is minted.
        tx.rollback().await.map_err(map_error)?;
        return Ok(false);
    }
    expo::insert_expo_releases_in(&mut tx, releases).await?;
    store.announce(&mut tx, app_id).await?;
    tx.commit().await.map_err(map_error)?;
    Ok(true)
}

#[instrument(skip_all, fields(app.id = %stored.rollout.app_id(), channel.name = %stored.rollout.channel()))]
pub(super) async fn update_rollout(
    store: &SqlStore,
    stored: &StoredRollout,
    seen: &StoredRollout,
    releases: &[ExpoRelease],
    channel_bundle_id: Option<i64>,
) -> StoreResult<bool> {
    let rollout = &stored.rollout;
    let expected_state = seen.rollout.state().as_str();
    if matches!(rollout.state(), RolloutState::Halted(_)) && expected_state != "halted" {
        return Err(StoreError::Other("a rollout is halted with halt_rollout, which records the halt".into()));
    }
    let mut tx = store.write_transaction().await?;
    let (candidate_kind, candidate) = candidate_columns(rollout.candidate());
    let change = &stored.last_change;
    let updated = sqlx::query(
        "UPDATE rollouts SET state = $1, percent_bps = $2, candidate_kind = $3, candidate = $4, covers = $5,
            max_failure_rate = $6, min_devices = $7, health_since = $8, completed_at = $9, changed_action = $10,
            changed_by = $11, changed_at = $12, change_reason = $13
         WHERE id = $14 AND app_id = $15 AND channel = $16 AND state = $17 AND changed_at = $18",
    )
    .bind(rollout.state().as_str())
    .bind(i64::from(rollout.percent().basis_points()))
    .bind(candidate_kind)
    .bind(candidate)
    .bind(covers_column(stored))
    .bind(rollout.policy().max_failure_rate().to_string())
    .bind(db_integer(rollout.policy().min_devices()))
    .bind(to_db(rollout.health_since()))
    .bind(completed_at(rollout.state()))
    .bind(&change.action)
    .bind(&change.by)
    .bind(to_db(change.at))
    .bind(&change.reason)
    .bind(rollout.id().as_str())
    .bind(rollout.app_id().as_str())
    .bind(rollout.channel().as_str())
    .bind(expected_state)
    .bind(to_db(seen.last_change.at))
    .execute(&mut *tx)
    .await
    .map_err(map_error)?
    .rows_affected()
        == 1;
    if !updated {
        tx.rollback().await.map_err(map_error)?;
        return Ok(false);
    }
    if let Some(bundle_id) = channel_bundle_id {
        bundles::keep_live(&mut tx, store.backend, rollout.app_id(), BundleRef::Id(bundle_id)).await?;
        sqlx::query("UPDATE channels SET bundle_id = $1, updated_at = $2 WHERE app_id = $3 AND name = $4")
            .bind(bundle_id)
            .bind(to_db(Utc::now()))
            .bind(rollout.app_id().as_str())
            .bind(rollout.channel().as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
    }
    expo::insert_expo_releases_in(&mut tx, releases).await?;
    store.announce(&mut tx, rollout.app_id()).await?;
    tx.commit().await.map_err(map_error)?;
    Ok(true)
}

pub(super) async fn rollouts(store: &SqlStore, app_id: &AppId) -> StoreResult<Vec<StoredRollout>> {
    let mut tx = store.pool.begin().await.map_err(map_error)?;
    let found = load_rollouts(&mut tx, app_id).await?;
    tx.commit().await.map_err(map_error)?;
    Ok(found)
}

/// An app's rollouts, for its catalog.
pub(super) async fn load_rollouts(tx: &mut Transaction<'_, Any>, app_id: &AppId) -> StoreResult<Vec<StoredRollout>> {
    let rows = sqlx::query("SELECT * FROM rollouts WHERE app_id = $1 ORDER BY channel")
        .bind(app_id.as_str())
        .fetch_all(&mut **tx)
        .await
        .map_err(map_error)?;
    rows.iter().map(rows::rollout).collect()
}
