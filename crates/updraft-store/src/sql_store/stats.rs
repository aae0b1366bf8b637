//! Stats events: appending what devices report (a rollback also marks the version failed for that device) and
//! summing them per bundle for `GET /stats`.
//!
//! Which actions are installs, failures or rollbacks is `updraft_core::stats`.

use std::collections::{BTreeMap, BTreeSet};

use tracing::instrument;
use updraft_core::{AppId, BundleCounts, StatsEvent, StatsSummary, StoreResult};

use super::{SqlStore, map_error};
use crate::rows;
use crate::time::to_db;

#[instrument(skip_all, fields(n_events = events.len()))]
pub(super) async fn insert_stats(store: &SqlStore, events: &[StatsEvent]) -> StoreResult<()> {
    let mut tx = store.write_transaction().await?;
    for event in events {
        let received = to_db(event.received_at);
        sqlx::query(
            "INSERT INTO stats_events (app_id, device_id, action, version_name, old_version_name, platform,
                plugin_version, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(event.app_id.as_str())
        .bind(event.device_id.as_str())
        .bind(&event.action)
        .bind(&event.version_name)
        .bind(&event.old_version_name)
        .bind(&event.platform)
        .bind(&event.plugin_version)
        .bind(&received)
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        if updraft_core::is_rollback(&event.action) && !event.version_name.is_empty() {
            sqlx::query(
                "INSERT INTO device_failed_versions (app_id, device_id, version_name, failed_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (app_id, device_id, version_name) DO NOTHING",
            )
            .bind(event.app_id.as_str())
            .bind(event.device_id.as_str())
            .bind(&event.version_name)
            .bind(&received)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        }
    }
    // A rollback changes what that device is offered.
    let rolled_back: BTreeSet<&AppId> =
        events.iter().filter(|e| updraft_core::is_rollback(&e.action)).map(|e| &e.app_id).collect();
    for app_id in rolled_back {
        store.announce(&mut tx, app_id).await?;
    }
    tx.commit().await.map_err(map_error)
}

pub(super) async fn stats_summary(store: &SqlStore, app_id: &AppId, n_recent: u64) -> StoreResult<StatsSummary> {
    let recent = sqlx::query("SELECT * FROM stats_events WHERE app_id = $1 ORDER BY id DESC LIMIT $2")
        .bind(app_id.as_str())
        .bind(i64::try_from(n_recent).unwrap_or(i64::MAX))
        .fetch_all(&store.pool)
        .await
        .map_err(map_error)?
        .iter()
        .map(rows::stats_event)
        .collect::<StoreResult<Vec<_>>>()?;
    let devices: Vec<(String, i64)> =
        sqlx::query_as("SELECT version_name, count(*) FROM devices WHERE app_id = $1 GROUP BY version_name")
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
