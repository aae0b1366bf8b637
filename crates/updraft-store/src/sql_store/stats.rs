//! Stats events: appending what devices report and applying what it means (a version that failed on a device is
//! recorded as failed for it; `device_installs` follows the bundle each device runs), and summing them per bundle
//! for `GET /stats`.
//!
//! Which events are installs, failures or rollbacks, and what changes a device's install, is `updraft_core::stats`.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{Any, Transaction};
use tracing::instrument;
use updraft_core::{AppId, BundleCounts, InstallChange, StatsEvent, StatsSummary, StoreResult};

use super::{SqlStore, db_integer, map_error};
use crate::rows;
use crate::time::to_db;

#[instrument(skip_all, fields(n_events = events.len()))]
pub(super) async fn insert_stats(store: &SqlStore, events: &[StatsEvent]) -> StoreResult<Vec<AppId>> {
    let mut tx = store.write_transaction().await?;
    let mut changed: BTreeSet<&AppId> = Default::default();
    for event in events {
        let received = to_db(event.received_at);
        let occurred = to_db(event.occurred_at);
        sqlx::query(
            "INSERT INTO stats_events (app_id, device_id, action, version_name, old_version_name, platform,
                plugin_version, received_at, occurred_at, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(event.app_id.as_str())
        .bind(event.device_id.as_str())
        .bind(&event.action)
        .bind(&event.version_name)
        .bind(&event.old_version_name)
        .bind(&event.platform)
        .bind(&event.plugin_version)
        .bind(&received)
        .bind(&occurred)
        .bind(rows::metadata_to_db(&event.metadata))
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        if record_failed_version(&mut tx, event, &received).await? {
            changed.insert(&event.app_id);
        }
        record_install_change(&mut tx, event, &occurred).await?;
        if event.action == "set" {
            super::release_health::record_stats_event(&mut tx, event, None, &occurred).await?;
        }
    }
    // A failed version changes what that device is offered.
    for app_id in &changed {
        store.announce(&mut tx, app_id).await?;
    }
    tx.commit().await.map_err(map_error)?;
    Ok(changed.into_iter().cloned().collect())
}

pub(super) async fn stats_summary(store: &SqlStore, app_id: &AppId, n_recent: u64) -> StoreResult<StatsSummary> {
    let recent = sqlx::query("SELECT * FROM stats_events WHERE app_id = $1 ORDER BY id DESC LIMIT $2")
        .bind(app_id.as_str())
        .bind(db_integer(n_recent))
        .fetch_all(&store.pool)
        .await
        .map_err(map_error)?
        .iter()
        .map(rows::stats_event)
        .collect::<StoreResult<Vec<_>>>()?;
    let devices: Vec<(String, i64)> =
        sqlx::query_as("SELECT version_name, count(*) FROM device_installs WHERE app_id = $1 GROUP BY version_name")
            .bind(app_id.as_str())
            .fetch_all(&store.pool)
            .await
            .map_err(map_error)?;
    let events: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT version_name, action, count(*) FROM stats_events WHERE app_id = $1 GROUP BY version_name, action",
    )
    .bind(app_id.as_str())
    .fetch_all(&store.pool)
    .await
    .map_err(map_error)?;
    let mut per_bundle: BTreeMap<String, BundleCounts> = Default::default();
    for (version, n) in devices {
        entry(&mut per_bundle, &version).devices += u64::try_from(n).unwrap_or(0);
    }
    for (version, action, n) in events {
        let n = u64::try_from(n).unwrap_or(0);
        match updraft_core::action_kind(&action) {
            updraft_core::ActionKind::Install => entry(&mut per_bundle, &version).installs += n,
            updraft_core::ActionKind::Failure => entry(&mut per_bundle, &version).failures += n,
            updraft_core::ActionKind::Other => {}
        }
    }
    Ok(StatsSummary { recent, per_bundle: per_bundle.into_values().collect() })
}

fn entry<'a>(per_bundle: &'a mut BTreeMap<String, BundleCounts>, version: &str) -> &'a mut BundleCounts {
    per_bundle.entry(version.to_owned()).or_insert_with(|| BundleCounts {
        version_name: version.to_owned(),
        devices: 0,
        installs: 0,
        failures: 0,
    })
}

/// Records the version a stats event says failed on its device (see [`updraft_core::failed_version`]); returns
/// whether it was new.
async fn record_failed_version(tx: &mut Transaction<'_, Any>, event: &StatsEvent, received: &str) -> StoreResult<bool> {
    if !updraft_core::is_rollback(&event.action) && !updraft_core::is_install_failure(&event.action) {
        return Ok(false);
    }
    let running: Option<String> =
        sqlx::query_scalar("SELECT version_name FROM devices WHERE app_id = $1 AND device_id = $2")
            .bind(event.app_id.as_str())
            .bind(event.device_id.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(map_error)?;
    let Some(version) = updraft_core::failed_version(event, running.as_deref()) else { return Ok(false) };
    // The same rule counts the failure in the release's health.
    super::release_health::record_stats_event(tx, event, Some(version), &to_db(event.occurred_at)).await?;
    let inserted = sqlx::query(
        "INSERT INTO device_failed_versions (app_id, device_id, version_name, failed_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (app_id, device_id, version_name) DO NOTHING",
    )
    .bind(event.app_id.as_str())
    .bind(event.device_id.as_str())
    .bind(version)
    .bind(received)
    .execute(&mut **tx)
    .await
    .map_err(map_error)?;
    Ok(inserted.rows_affected() > 0)
}

/// Keeps `device_installs` (the bundle each device runs) in step with a stats event.
async fn record_install_change(tx: &mut Transaction<'_, Any>, event: &StatsEvent, occurred: &str) -> StoreResult<()> {
    let (app_id, device_id) = (event.app_id.as_str(), event.device_id.as_str());
    let query = match updraft_core::install_change(event) {
        None => return Ok(()),
        Some(InstallChange::Installed(version)) => sqlx::query(
            "INSERT INTO device_installs (app_id, device_id, version_name, installed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (app_id, device_id) DO UPDATE SET version_name = excluded.version_name,
                installed_at = excluded.installed_at",
        )
        .bind(app_id)
        .bind(device_id)
        .bind(version)
        .bind(occurred),
        Some(InstallChange::Left(version)) => {
            sqlx::query("DELETE FROM device_installs WHERE app_id = $1 AND device_id = $2 AND version_name = $3")
                .bind(app_id)
                .bind(device_id)
                .bind(version)
        }
        Some(InstallChange::Reset) => {
            sqlx::query("DELETE FROM device_installs WHERE app_id = $1 AND device_id = $2").bind(app_id).bind(device_id)
        }
    };
    query.execute(&mut **tx).await.map_err(map_error)?;
    Ok(())
}
