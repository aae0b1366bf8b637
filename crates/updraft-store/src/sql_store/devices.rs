//! Devices: the latest report of each device (upserted in batches by the write-behind queue, listed by offset or
//! cursor) and the operator's per-device overrides (a channel or bundle pin).

use chrono::Utc;
use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use tracing::instrument;
use updraft_core::{
    AppId, BundlePin, DeviceCursor, DeviceId, DeviceReport, DeviceReportView, OverrideTarget, StoreResult,
};

use super::bundles::{BundleRef, keep_live};
use super::{SqlStore, arguments_for, db_integer, map_error};
use crate::backend::Backend;
use crate::rows;
use crate::time::to_db;

#[instrument(skip_all, fields(app.id = %app_id))]
pub(super) async fn set_device_override(
    store: &SqlStore,
    app_id: &AppId,
    device_id: &DeviceId,
    target: &OverrideTarget,
) -> StoreResult<()> {
    let mut tx = store.write_transaction().await?;
    if let Some(BundlePin::Bundle(bundle_id)) = target.bundle {
        keep_live(&mut tx, store.backend, app_id, BundleRef::Id(bundle_id)).await?;
    }
    sqlx::query(
        "INSERT INTO device_overrides (app_id, device_id, channel_id, bundle_id, pin_builtin, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (app_id, device_id) DO UPDATE SET channel_id = excluded.channel_id,
            bundle_id = excluded.bundle_id, pin_builtin = excluded.pin_builtin, updated_at = excluded.updated_at",
    )
    .bind(app_id.as_str())
    .bind(device_id.as_str())
    .bind(target.channel_id)
    .bind(match target.bundle {
        Some(BundlePin::Bundle(bundle_id)) => Some(bundle_id),
        _ => None,
    })
    .bind(matches!(target.bundle, Some(BundlePin::Builtin)))
    .bind(to_db(Utc::now()))
    .execute(&mut *tx)
    .await
    .map_err(map_error)?;
    store.announce(&mut tx, app_id).await?;
    tx.commit().await.map_err(map_error)
}

#[instrument(skip_all, fields(app.id = %app_id))]
pub(super) async fn delete_device_override(
    store: &SqlStore,
    app_id: &AppId,
    device_id: &DeviceId,
) -> StoreResult<bool> {
    let mut tx = store.write_transaction().await?;
    let done = sqlx::query("DELETE FROM device_overrides WHERE app_id = $1 AND device_id = $2")
        .bind(app_id.as_str())
        .bind(device_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
    store.announce(&mut tx, app_id).await?;
    tx.commit().await.map_err(map_error)?;
    Ok(done.rows_affected() > 0)
}

#[instrument(skip_all, fields(n_devices = reports.len()))]
pub(super) async fn upsert_devices(store: &SqlStore, reports: &[DeviceReportView<'_>]) -> StoreResult<()> {
    // One order for every writer: two instances upserting overlapping batches lock rows in the same order, so
    // PostgreSQL never has to break a deadlock. One row per device: a statement may not change a row twice, so
    // of several reports of a device only the newest (the last given, between equal times) is written.
    let mut ordered: Vec<&DeviceReportView<'_>> = reports.iter().rev().collect();
    ordered.sort_by(|a, b| (a.app_id, a.device_id).cmp(&(b.app_id, b.device_id)).then(b.seen_at.cmp(&a.seen_at)));
    ordered.dedup_by(|later, kept| later.app_id == kept.app_id && later.device_id == kept.device_id);
    let mut tx = store.device_transaction().await?;
    let mut rest = ordered.as_slice();
    while !rest.is_empty() {
        // Many rows per statement (a few sizes, so each connection prepares at most a handful of statements).
        let n = rows_per_statement(store.backend).min(1 << rest.len().ilog2());
        let (rows, after) = rest.split_at(n);
        rest = after;
        let mut query = sqlx::query_with(upsert_devices_sql(store.backend, n), arguments_for(n * COLUMNS));
        // Bound as &str: the Any driver copies a bound String, but borrows a &str.
        let times: Vec<String> = rows.iter().map(|report| to_db(report.seen_at)).collect();
        for (report, seen) in rows.iter().zip(&times) {
            query = query
                .bind(report.app_id)
                .bind(report.device_id)
                .bind(report.platform.as_str())
                .bind(report.version_name)
                .bind(report.version_build)
                .bind(report.version_code)
                .bind(report.version_os)
                .bind(report.plugin_version)
                .bind(report.custom_id)
                .bind(report.is_prod)
                .bind(report.is_emulator)
                .bind(report.install_source)
                .bind(report.default_channel)
                .bind(report.key_id)
                .bind(seen.as_str())
                .bind(seen.as_str());
        }
        query.execute(&mut *tx).await.map_err(map_error)?;
    }
    tx.commit().await.map_err(map_error)
}

pub(super) async fn get_device(
    store: &SqlStore,
    app_id: &AppId,
    device_id: &DeviceId,
) -> StoreResult<Option<DeviceReport>> {
    sqlx::query("SELECT * FROM devices WHERE app_id = $1 AND device_id = $2")
        .bind(app_id.as_str())
        .bind(device_id.as_str())
        .fetch_optional(&store.pool)
        .await
        .map_err(map_error)?
        .as_ref()
        .map(rows::device)
        .transpose()
}

pub(super) async fn list_devices(
    store: &SqlStore,
    app_id: &AppId,
    offset: u64,
    limit: u64,
) -> StoreResult<Vec<DeviceReport>> {
    let query = sqlx::query(
        "SELECT * FROM devices WHERE app_id = $1 ORDER BY updated_at DESC, device_id DESC LIMIT $2 OFFSET $3",
    )
    .bind(app_id.as_str())
    .bind(db_integer(limit))
    .bind(db_integer(offset));
    fetch_devices(store, query).await
}

pub(super) async fn list_devices_after(
    store: &SqlStore,
    app_id: &AppId,
    after: Option<&DeviceCursor>,
    limit: u64,
    descending: bool,
) -> StoreResult<Vec<DeviceReport>> {
    let (comparison, order) = if descending { ("<", "DESC") } else { (">", "ASC") };
    let query = format!(
        "SELECT * FROM devices WHERE app_id = $1 AND ($2 IS NULL OR (updated_at, device_id) {comparison} ($3, $4))
         ORDER BY updated_at {order}, device_id {order} LIMIT $5"
    );
    let cursor_time = after.map(|c| to_db(c.updated_at));
    let query = sqlx::query(&query)
        .bind(app_id.as_str())
        .bind(cursor_time.clone())
        .bind(cursor_time)
        .bind(after.map(|c| c.device_id.as_str().to_owned()))
        .bind(db_integer(limit));
    fetch_devices(store, query).await
}

/// The device reports a query over `devices` returns.
async fn fetch_devices<'q>(
    store: &SqlStore,
    query: Query<'q, Any, AnyArguments<'q>>,
) -> StoreResult<Vec<DeviceReport>> {
    query.fetch_all(&store.pool).await.map_err(map_error)?.iter().map(rows::device).collect()
}

/// Parameters per device row of the upsert.
const COLUMNS: usize = 16;

/// Device rows upserted by one statement, at most (16 parameters each). On SQLite every statement is a hand-off to
/// the connection's own thread and back (two thread wake-ups): with 64 rows, futex wake-ups were 16 % of the writer's
/// samples, so SQLite takes 512 rows (8 192 parameters, a quarter of its 32 766 limit). Each PostgreSQL statement is
/// a round trip to another process, and on a busy machine every round trip also waits to be scheduled: with 64 rows,
/// draining 100 000 pending devices took 7–13 s at load 11–14, so PostgreSQL takes 1 024 rows (16 384 parameters, a
/// quarter of its 65 535 limit).
fn rows_per_statement(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 512,
        Backend::Postgres => 1024,
    }
}

/// The upsert of `n` device reports (`n` a power of two up to [`rows_per_statement`]), built once per size: a
/// report older than the stored one changes nothing. SQLite gets `?` parameters: the SQLite driver looks each
/// `$N` parameter up by name, which made binding a 64-row statement cost more than executing it.
fn upsert_devices_sql(backend: Backend, n: usize) -> &'static str {
    static SQL: std::sync::LazyLock<[Vec<String>; 2]> = std::sync::LazyLock::new(|| {
        let sizes = |backend| (0..=rows_per_statement(backend).ilog2()).map(|power| 1usize << power);
        [
            sizes(Backend::Sqlite).map(|n| build_upsert_devices_sql(false, n)).collect(),
            sizes(Backend::Postgres).map(|n| build_upsert_devices_sql(true, n)).collect(),
        ]
    });
    &SQL[usize::from(backend == Backend::Postgres)][n.ilog2() as usize]
}

fn build_upsert_devices_sql(numbered: bool, n: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO devices (app_id, device_id, platform, version_name, version_build, version_code, version_os,
            plugin_version, custom_id, is_prod, is_emulator, install_source, default_channel, key_id, created_at,
            updated_at) VALUES ",
    );
    for row in 0..n {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..COLUMNS {
            if column > 0 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push_str(&format!("${}", row * COLUMNS + column + 1));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql.push_str(
        " ON CONFLICT (app_id, device_id) DO UPDATE SET platform = excluded.platform,
            version_name = excluded.version_name, version_build = excluded.version_build,
            version_code = excluded.version_code, version_os = excluded.version_os,
            plugin_version = excluded.plugin_version, custom_id = excluded.custom_id,
            is_prod = excluded.is_prod, is_emulator = excluded.is_emulator,
            install_source = excluded.install_source, default_channel = excluded.default_channel,
            key_id = excluded.key_id, updated_at = excluded.updated_at
         WHERE excluded.updated_at >= devices.updated_at",
    );
    sql
}
