//! Ageing and capping the rows devices create ([`DeviceTable`]): the mark past an app's newest rows, and deleting
//! an app's rows at or before a mark in bounded batches, least recently seen first.
//!
//! Rows age in the order (last-seen time, key): rows seen at the same moment (a stats batch is received at one
//! instant) are still cut exactly. Each table is read through an index on `app_id`, that time and the key
//! (`devices_app_updated`, `stats_events_app_time` with the rowid, and the two of migration 0013 / 0011), so a batch
//! costs its own rows, not the table's. Deletes run on the device writer's connection (on SQLite the one that writes
//! device reports, so the batches take turns with the write-behind batches instead of waiting for the write lock).
//! On PostgreSQL a batch skips rows another transaction holds (`FOR UPDATE SKIP LOCKED`): instances ageing at once,
//! or a write-behind batch upserting the same devices, never wait on each other or deadlock; a skipped row is
//! deleted by a later batch.

use sqlx::Row;
use tracing::instrument;
use updraft_core::{AppId, DeviceRowMark, DeviceTable, StoreError, StoreResult};

use super::{SqlStore, db_integer, map_error};
use crate::backend::Backend;
use crate::time::{from_db, to_db};

/// How a table's rows age: the column that says when a row was last seen, the key columns after `app_id` that
/// order rows seen at the same time (`id` is the one integer), and the primary key.
struct Ageing {
    seen: &'static str,
    key: &'static [&'static str],
    primary_key: &'static str,
}

fn ageing(table: DeviceTable) -> Ageing {
    match table {
        DeviceTable::Devices => Ageing { seen: "updated_at", key: &["device_id"], primary_key: "app_id, device_id" },
        DeviceTable::DeviceInstalls => {
            Ageing { seen: "installed_at", key: &["device_id"], primary_key: "app_id, device_id" }
        }
        DeviceTable::ReleaseDevices => {
            Ageing { seen: "seen_at", key: &["device_id", "release_id"], primary_key: "app_id, device_id, release_id" }
        }
        DeviceTable::StatsEvents => Ageing { seen: "received_at", key: &["id"], primary_key: "id" },
    }
}

impl Ageing {
    /// The order rows age in, oldest first (`DESC`: newest first).
    fn order(&self, direction: &str) -> String {
        std::iter::once(self.seen)
            .chain(self.key.iter().copied())
            .map(|c| format!("{c} {direction}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub(super) async fn device_rows_cutoff(
    store: &SqlStore,
    table: DeviceTable,
    app_id: &AppId,
    keep: u64,
) -> StoreResult<Option<DeviceRowMark>> {
    let ageing = ageing(table);
    let sql = format!(
        "SELECT {}, {} FROM {} WHERE app_id = $1 ORDER BY {} LIMIT 1 OFFSET $2",
        ageing.seen,
        ageing.key.join(", "),
        table.name(),
        ageing.order("DESC")
    );
    let row = sqlx::query(&sql)
        .bind(app_id.as_str())
        .bind(db_integer(keep))
        .fetch_optional(&store.pool)
        .await
        .map_err(map_error)?;
    let Some(row) = row else { return Ok(None) };
    let seen: String = row.try_get(ageing.seen).map_err(map_error)?;
    let key = ageing
        .key
        .iter()
        .map(|column| match *column {
            "id" => row.try_get::<i64, _>(*column).map(|id| id.to_string()),
            _ => row.try_get::<String, _>(*column),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_error)?;
    Ok(Some(DeviceRowMark { seen_at: from_db(&seen)?, key }))
}

#[instrument(skip_all, fields(app.id = %app_id, table = table.name()))]
pub(super) async fn delete_device_rows(
    store: &SqlStore,
    table: DeviceTable,
    app_id: &AppId,
    through: &DeviceRowMark,
    limit: u64,
) -> StoreResult<u64> {
    let ageing = ageing(table);
    let name = table.name();
    let n_key = through.key.len();
    if n_key != 0 && n_key != ageing.key.len() {
        return Err(StoreError::Other(format!("a mark of {name} has {} key parts, not {n_key}", ageing.key.len())));
    }
    // `$2` is the time; a mark with a key cuts between the rows seen at that time by `$3`, `$4`, ...
    let at_or_before = if n_key == 0 {
        format!("{} <= $2", ageing.seen)
    } else {
        let columns = std::iter::once(ageing.seen).chain(ageing.key.iter().copied()).collect::<Vec<_>>().join(", ");
        let values = (2..=2 + n_key).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
        format!("({columns}) <= ({values})")
    };
    let oldest = format!(
        "FROM {name} WHERE app_id = $1 AND {at_or_before} ORDER BY {} LIMIT ${}",
        ageing.order("ASC"),
        n_key + 3
    );
    // By primary key: on SQLite `devices` and `release_devices` are WITHOUT ROWID tables (migration 0014).
    let key = ageing.primary_key;
    let sql = match store.backend {
        // SQLite has one writer, so nothing is locked to skip.
        Backend::Sqlite => format!("DELETE FROM {name} WHERE ({key}) IN (SELECT {key} {oldest})"),
        Backend::Postgres => {
            format!("DELETE FROM {name} WHERE ({key}) IN (SELECT {key} {oldest} FOR UPDATE SKIP LOCKED)")
        }
    };
    let mut query = sqlx::query(&sql).bind(app_id.as_str()).bind(to_db(through.seen_at));
    for (column, value) in ageing.key.iter().zip(&through.key) {
        query = match *column {
            "id" => query.bind(
                value.parse::<i64>().map_err(|_| StoreError::Other(format!("a mark of {name} has id {value:?}")))?,
            ),
            _ => query.bind(value.clone()),
        };
    }
    let mut tx = store.device_transaction().await?;
    let done = query.bind(db_integer(limit)).execute(&mut *tx).await.map_err(map_error)?;
    tx.commit().await.map_err(map_error)?;
    Ok(done.rows_affected())
}
