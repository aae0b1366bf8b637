//! Release health: one row per (app, release, device) with the first offer, the last run and the first failure
//! (upserted in batches by the write-behind queue, and by stats events in their own transaction), counted per
//! release and channel; and the record of every rollout halt.
//!
//! Which requests are which signals is `updraft_core::release_health` and the server's; this module only keeps
//! and counts rows. Counts are `count(DISTINCT device_id)` over rows, so they are exact whichever instance wrote.

use chrono::{DateTime, Utc};
use sqlx::{Any, Row, Transaction};
use tracing::instrument;
use updraft_core::{
    AppId, HaltRecord, HealthFigures, HealthProtocol, ReleaseDeviceRow, ReleaseHealth, StatsEvent, StoreError,
    StoreResult,
};

use super::{SqlStore, arguments_for, db_integer, map_error};
use crate::backend::Backend;
use crate::time::{from_db, to_db};

/// What an upsert does to a row that exists: first offer and first failure kept (with the failure's text), last run
/// and newest time win, an empty channel keeps the stored one.
const ON_CONFLICT: &str = " ON CONFLICT (app_id, device_id, release_id) DO UPDATE SET
    channel = CASE WHEN excluded.channel = '' THEN release_devices.channel ELSE excluded.channel END,
    offered_at = COALESCE(release_devices.offered_at, excluded.offered_at),
    running_at = CASE WHEN excluded.running_at IS NULL THEN release_devices.running_at
        WHEN release_devices.running_at IS NULL OR excluded.running_at > release_devices.running_at
        THEN excluded.running_at ELSE release_devices.running_at END,
    failure = CASE WHEN release_devices.failed_at IS NULL THEN excluded.failure ELSE release_devices.failure END,
    failed_at = COALESCE(release_devices.failed_at, excluded.failed_at),
    seen_at = CASE WHEN excluded.seen_at > release_devices.seen_at THEN excluded.seen_at
        ELSE release_devices.seen_at END";

/// What the write-behind batch adds to [`ON_CONFLICT`]: a row that exists is left alone when the only change would
/// be its last-seen time and that time is newer than the statement's last parameter (the batch's newest time less
/// [`updraft_core::LAST_SEEN_RESOLUTION`]): a device offered the same release on every launch then costs a key
/// lookup, not a rewrite of the row and its indexes. A first offer, a run, a first failure or a new channel is
/// always written.
const UNLESS_ONLY_SEEN: &str = "
    WHERE release_devices.seen_at < {fresh}
        OR excluded.running_at IS NOT NULL
        OR (excluded.offered_at IS NOT NULL AND release_devices.offered_at IS NULL)
        OR (excluded.failed_at IS NOT NULL AND release_devices.failed_at IS NULL)
        OR (excluded.channel <> '' AND excluded.channel <> release_devices.channel)";

/// Columns of one row.
const COLUMNS: usize = 11;

/// Rows upserted by one statement, at most: 5 633 parameters, within both databases' limits (see `devices.rs` for
/// why more rows per statement cost less).
const ROWS_PER_STATEMENT: usize = 512;

#[instrument(skip_all, fields(n_rows = rows.len()))]
pub(super) async fn upsert_release_devices(store: &SqlStore, rows: &[ReleaseDeviceRow]) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // One order for every writer (PostgreSQL never has to break a deadlock between two instances' batches), the
    // table's key order (a device's rows are neighbours, so they are written together), and one row per key per
    // statement (a statement may not change a row twice).
    let mut ordered: Vec<&ReleaseDeviceRow> = rows.iter().collect();
    ordered.sort_by(|a, b| {
        (a.app_id.as_str(), a.device_id.as_str(), a.release_id.as_str()).cmp(&(
            b.app_id.as_str(),
            b.device_id.as_str(),
            b.release_id.as_str(),
        ))
    });
    ordered.dedup_by(|later, kept| {
        later.app_id == kept.app_id && later.release_id == kept.release_id && later.device_id == kept.device_id
    });
    let mut tx = store.device_transaction().await?;
    let mut rest = ordered.as_slice();
    while !rest.is_empty() {
        let n = ROWS_PER_STATEMENT.min(1 << rest.len().ilog2());
        let (chunk, after) = rest.split_at(n);
        rest = after;
        let newest = chunk.iter().map(|row| row.seen_at).max().unwrap_or_default();
        let fresh = to_db(newest - updraft_core::LAST_SEEN_RESOLUTION);
        let mut query = sqlx::query_with(upsert_sql(store.backend, n), arguments_for(n * COLUMNS + 1));
        // Formatted first and bound as &str (the Any driver copies a bound String, but borrows a &str).
        let times: Vec<(String, [Option<String>; 3])> = chunk
            .iter()
            .map(|row| (to_db(row.seen_at), [row.offered_at, row.running_at, row.failed_at].map(|t| t.map(to_db))))
            .collect();
        for (row, (seen, [offered, running, failed])) in chunk.iter().zip(&times) {
            query = query
                .bind(row.app_id.as_str())
                .bind(row.release_id.as_str())
                .bind(row.device_id.as_str())
                .bind(row.protocol.as_str())
                .bind(row.group_id.as_str())
                .bind(row.channel.as_str())
                .bind(offered.as_deref())
                .bind(running.as_deref())
                .bind(failed.as_deref())
                .bind(row.failure.as_str())
                .bind(seen.as_str());
        }
        query.bind(fresh).execute(&mut *tx).await.map_err(map_error)?;
    }
    tx.commit().await.map_err(map_error)
}

/// The upsert of `n` rows (`n` a power of two up to [`ROWS_PER_STATEMENT`]), built once per size; SQLite gets `?`
/// parameters (see `devices.rs`).
fn upsert_sql(backend: Backend, n: usize) -> &'static str {
    static SQL: std::sync::LazyLock<[Vec<String>; 2]> = std::sync::LazyLock::new(|| {
        let sizes = || (0..=ROWS_PER_STATEMENT.ilog2()).map(|power| 1usize << power);
        [sizes().map(|n| build_upsert_sql(false, n)).collect(), sizes().map(|n| build_upsert_sql(true, n)).collect()]
    });
    &SQL[usize::from(backend == Backend::Postgres)][n.ilog2() as usize]
}

fn build_upsert_sql(numbered: bool, n: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO release_devices (app_id, release_id, device_id, protocol, group_id, channel, offered_at,
            running_at, failed_at, failure, seen_at) VALUES ",
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
    sql.push_str(ON_CONFLICT);
    let fresh = if numbered { format!("${}", n * COLUMNS + 1) } else { "?".to_owned() };
    sql.push_str(&UNLESS_ONLY_SEEN.replace("{fresh}", &fresh));
    sql
}

/// The channel of the device's newest row that names one (`$5` the app, `$6` the device). The device's rows are a range
/// of the primary key (app, device, release); ordered by `seen_at` itself, SQLite's planner would rather walk
/// release_devices_app_seen, already in that order, through every row of the app, so it is ordered by an expression
/// and the device's few rows are sorted.
const DEVICE_CHANNEL: &str = "SELECT r.channel FROM release_devices r
    WHERE r.app_id = $5 AND r.device_id = $6 AND r.channel <> '' ORDER BY r.seen_at || '' DESC LIMIT 1";

/// Records what a Capgo stats event says about a release, in the stats transaction: `set` means the device runs
/// it; `failed` is the version [`updraft_core::failed_version`] says failed on the device (the rule that also
/// blocks it for that device). The row's channel is the device's newest known one (the check that offered it).
pub(super) async fn record_stats_event(
    tx: &mut Transaction<'_, Any>,
    event: &StatsEvent,
    failed: Option<&str>,
    occurred: &str,
) -> StoreResult<()> {
    let (release, running_at, failed_at) = match (failed, event.action.as_str()) {
        (Some(version), _) => (version, None, Some(occurred)),
        (None, "set") if !event.version_name.is_empty() && event.version_name != "builtin" => {
            (event.version_name.as_str(), Some(occurred), None)
        }
        _ => return Ok(()),
    };
    let failure = if failed_at.is_some() { event.action.as_str() } else { "" };
    let sql = format!(
        "INSERT INTO release_devices (app_id, release_id, device_id, protocol, group_id, channel, offered_at,
            running_at, failed_at, failure, seen_at)
         VALUES ($1, $2, $3, 'capgo', $4, COALESCE(({DEVICE_CHANNEL}), ''), NULL, $7, $8, $9, $10){ON_CONFLICT}"
    );
    sqlx::query(&sql)
        .bind(event.app_id.as_str())
        .bind(release)
        .bind(event.device_id.as_str())
        .bind(release)
        .bind(event.app_id.as_str())
        .bind(event.device_id.as_str())
        .bind(running_at)
        .bind(failed_at)
        .bind(failure)
        .bind(to_db(event.received_at))
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
    Ok(())
}

pub(super) async fn release_health(
    store: &SqlStore,
    app_id: &AppId,
    channel: Option<&str>,
) -> StoreResult<Vec<ReleaseHealth>> {
    let rows = sqlx::query(
        "SELECT channel, release_id, max(group_id) AS group_id, max(protocol) AS protocol,
            count(offered_at) AS offered, count(running_at) AS running, count(failed_at) AS failed,
            count(CASE WHEN running_at IS NOT NULL OR failed_at IS NOT NULL THEN 1 END) AS devices,
            min(offered_at) AS first_offered_at, max(failed_at) AS last_failed_at, max(seen_at) AS last_seen_at
         FROM release_devices WHERE app_id = $1 AND ($2 IS NULL OR channel = $3)
         GROUP BY channel, release_id ORDER BY channel, max(seen_at) DESC, release_id",
    )
    .bind(app_id.as_str())
    .bind(channel)
    .bind(channel)
    .fetch_all(&store.pool)
    .await
    .map_err(map_error)?;
    rows.iter()
        .map(|row| {
            let count = |column: &str| -> StoreResult<u64> {
                Ok(u64::try_from(row.try_get::<i64, _>(column).map_err(map_error)?).unwrap_or(0))
            };
            let time = |column: &str| -> StoreResult<Option<DateTime<Utc>>> {
                row.try_get::<Option<String>, _>(column).map_err(map_error)?.as_deref().map(from_db).transpose()
            };
            let protocol: String = row.try_get("protocol").map_err(map_error)?;
            Ok(ReleaseHealth {
                channel: row.try_get("channel").map_err(map_error)?,
                release_id: row.try_get("release_id").map_err(map_error)?,
                group_id: row.try_get("group_id").map_err(map_error)?,
                protocol: HealthProtocol::parse(&protocol)
                    .ok_or_else(|| StoreError::Other(format!("bad stored protocol {protocol:?}")))?,
                offered: count("offered")?,
                running: count("running")?,
                failed: count("failed")?,
                devices: count("devices")?,
                first_offered_at: time("first_offered_at")?,
                last_failed_at: time("last_failed_at")?,
                last_seen_at: time("last_seen_at")?,
            })
        })
        .collect()
}

pub(super) async fn rollout_figures(
    store: &SqlStore,
    app_id: &AppId,
    channel: &str,
    group_id: &str,
    since: DateTime<Utc>,
) -> StoreResult<HealthFigures> {
    let since = to_db(since);
    let (devices, failures): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT CASE WHEN running_at >= $1 OR failed_at >= $2 THEN device_id END),
                count(DISTINCT CASE WHEN failed_at >= $3 THEN device_id END)
         FROM release_devices WHERE app_id = $4 AND channel = $5 AND group_id = $6",
    )
    .bind(&since)
    .bind(&since)
    .bind(&since)
    .bind(app_id.as_str())
    .bind(channel)
    .bind(group_id)
    .fetch_one(&store.pool)
    .await
    .map_err(map_error)?;
    Ok(HealthFigures { devices: u64::try_from(devices).unwrap_or(0), failures: u64::try_from(failures).unwrap_or(0) })
}

/// A rate in parts per million, as stored.
fn ppm(rate: f64) -> i64 {
    (rate.clamp(0.0, 1.0) * 1_000_000.0).round() as i64
}

#[instrument(skip_all, fields(app.id = %halt.app_id))]
pub(super) async fn insert_rollout_halt(store: &SqlStore, halt: &HaltRecord) -> StoreResult<()> {
    let mut tx = store.write_transaction().await?;
    sqlx::query(
        "INSERT INTO rollout_halts (app_id, channel, rollout_id, candidate, halted_at, halted_by, instance, reason,
            devices, failures, failure_rate_ppm, lower_bound_ppm, max_failure_rate_ppm, min_devices)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(halt.app_id.as_str())
    .bind(&halt.channel)
    .bind(&halt.rollout_id)
    .bind(&halt.candidate)
    .bind(to_db(halt.halted_at))
    .bind(&halt.halted_by)
    .bind(&halt.instance)
    .bind(&halt.reason)
    .bind(db_integer(halt.figures.devices))
    .bind(db_integer(halt.figures.failures))
    .bind(ppm(halt.failure_rate))
    .bind(ppm(halt.lower_bound))
    .bind(ppm(halt.max_failure_rate))
    .bind(db_integer(halt.min_devices))
    .execute(&mut *tx)
    .await
    .map_err(map_error)?;
    tx.commit().await.map_err(map_error)
}

pub(super) async fn rollout_halts(
    store: &SqlStore,
    app_id: &AppId,
    channel: Option<&str>,
) -> StoreResult<Vec<HaltRecord>> {
    let rows = sqlx::query(
        "SELECT * FROM rollout_halts WHERE app_id = $1 AND ($2 IS NULL OR channel = $3) ORDER BY halted_at DESC, id DESC",
    )
    .bind(app_id.as_str())
    .bind(channel)
    .bind(channel)
    .fetch_all(&store.pool)
    .await
    .map_err(map_error)?;
    rows.iter()
        .map(|row| {
            let text = |column: &str| -> StoreResult<String> { row.try_get(column).map_err(map_error) };
            let int = |column: &str| -> StoreResult<i64> { row.try_get(column).map_err(map_error) };
            let rate = |column: &str| -> StoreResult<f64> { Ok(int(column)? as f64 / 1_000_000.0) };
            let count = |column: &str| -> StoreResult<u64> { Ok(u64::try_from(int(column)?).unwrap_or(0)) };
            Ok(HaltRecord {
                app_id: AppId::parse(&text("app_id")?).map_err(|e| StoreError::Other(e.to_string()))?,
                channel: text("channel")?,
                rollout_id: text("rollout_id")?,
                candidate: text("candidate")?,
                halted_at: from_db(&text("halted_at")?)?,
                halted_by: text("halted_by")?,
                instance: text("instance")?,
                reason: text("reason")?,
                figures: HealthFigures { devices: count("devices")?, failures: count("failures")? },
                failure_rate: rate("failure_rate_ppm")?,
                lower_bound: rate("lower_bound_ppm")?,
                max_failure_rate: rate("max_failure_rate_ppm")?,
                min_devices: count("min_devices")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::DEVICE_CHANNEL;
    use crate::SqlStore;

    /// SQLite answers the stats path's "the device's newest channel" from the device's own rows, not by walking
    /// every row of the app through release_devices_app_seen (which made a store story 25 times slower).
    #[tokio::test]
    async fn the_device_channel_lookup_reads_only_the_devices_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::connect(&format!("sqlite://{}", dir.path().join("plan.db").display())).await.unwrap();
        store.migrate().await.unwrap();
        // `$5` and `$6` are the only parameters; SQLite numbers the four before them as unused.
        let plan = sqlx::query(&format!("EXPLAIN QUERY PLAN {DEVICE_CHANNEL}"))
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind("com.example.app")
            .bind("device-1")
            .fetch_all(store.pool())
            .await
            .unwrap();
        let details: Vec<String> = plan.iter().map(|row| row.get::<String, _>("detail")).collect();
        assert!(
            details.iter().any(|detail| detail.contains("USING PRIMARY KEY (app_id=? AND device_id=?)")),
            "{details:?}"
        );
        assert!(!details.iter().any(|detail| detail.contains("release_devices_app_seen")), "{details:?}");
    }
}
