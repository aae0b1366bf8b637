//! Ageing and capping the rows devices create ([`DeviceTable`]): the cut-off time of an app's newest rows, and
//! deleting an app's rows seen before a time in bounded batches, least recently seen first.
//!
//! Each table is read through an index that starts with `app_id` and its last-seen time (`devices_app_updated`,
//! `stats_events_app_time`, and the two of migration 0013 / 0011), so a batch costs its own rows, not the table's.
//! Deletes run on the device writer's connection (on SQLite the one that writes device reports, so the batches
//! take turns with the write-behind batches instead of waiting for the write lock). On PostgreSQL the batch skips
//! rows another transaction holds (`FOR UPDATE SKIP LOCKED`): instances ageing at once, or a write-behind batch
//! upserting the same devices, never wait on each other or deadlock; a skipped row is deleted by a later batch.

use chrono::{DateTime, Utc};
use tracing::instrument;
use updraft_core::{AppId, DeviceTable, StoreResult};

use super::{SqlStore, db_integer, map_error};
use crate::backend::Backend;
use crate::time::{from_db, to_db};

/// The column that says when a row was last seen, and the columns of its primary key.
fn columns(table: DeviceTable) -> (&'static str, &'static str) {
    match table {
        DeviceTable::Devices => ("updated_at", "app_id, device_id"),
        DeviceTable::DeviceInstalls => ("installed_at", "app_id, device_id"),
        DeviceTable::ReleaseDevices => ("seen_at", "app_id, release_id, device_id"),
        DeviceTable::StatsEvents => ("received_at", "id"),
    }
}

pub(super) async fn device_rows_cutoff(
    store: &SqlStore,
    table: DeviceTable,
    app_id: &AppId,
    keep: u64,
) -> StoreResult<Option<DateTime<Utc>>> {
    let (seen, _) = columns(table);
    let name = table.name();
    let sql = format!("SELECT {seen} FROM {name} WHERE app_id = $1 ORDER BY {seen} DESC LIMIT 1 OFFSET $2");
    let cutoff: Option<String> = sqlx::query_scalar(&sql)
        .bind(app_id.as_str())
        .bind(db_integer(keep))
        .fetch_optional(&store.pool)
        .await
        .map_err(map_error)?;
    cutoff.as_deref().map(from_db).transpose()
}

#[instrument(skip_all, fields(app.id = %app_id, table = table.name()))]
pub(super) async fn delete_device_rows(
    store: &SqlStore,
    table: DeviceTable,
    app_id: &AppId,
    through: DateTime<Utc>,
    limit: u64,
) -> StoreResult<u64> {
    let (seen, key) = columns(table);
    let name = table.name();
    let oldest = format!("FROM {name} WHERE app_id = $1 AND {seen} <= $2 ORDER BY {seen} LIMIT $3");
    let sql = match store.backend {
        // Every one of these tables has a rowid; SQLite has one writer, so nothing is locked to skip.
        Backend::Sqlite => format!("DELETE FROM {name} WHERE rowid IN (SELECT rowid {oldest})"),
        Backend::Postgres => {
            format!("DELETE FROM {name} WHERE ({key}) IN (SELECT {key} {oldest} FOR UPDATE SKIP LOCKED)")
        }
    };
    let mut tx = store.device_transaction().await?;
    let done = sqlx::query(&sql)
        .bind(app_id.as_str())
        .bind(to_db(through))
        .bind(db_integer(limit))
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
    tx.commit().await.map_err(map_error)?;
    Ok(done.rows_affected())
}
