//! One round of ageing the rows devices create (`crate::device_ageing` runs it): for every app and table, the rows
//! not seen for the retention, then the least recently seen past the app's cap, deleted a batch at a time.

use chrono::{DateTime, Utc};
use updraft_core::{AppId, DeviceRowMark, DeviceTable, StoreResult};

use crate::device_ageing::{AgeingPolicy, Reason};
use crate::ops::AppState;

/// Rows one delete statement removes at most: a few milliseconds of the device writer's connection, so the
/// write-behind batches never wait long for it.
pub(crate) const BATCH: u64 = 1000;

/// Runs one round at `now`; returns how many rows it deleted. Stops at the first store error (counting what it
/// deleted until then); the next round starts over.
pub(crate) async fn age_out(state: &AppState, policy: &AgeingPolicy, now: DateTime<Utc>) -> StoreResult<u64> {
    let mut deleted = 0;
    for app_id in state.store.list_app_ids().await? {
        for table in DeviceTable::ALL {
            if let Some(retention) = policy.retention {
                let through = DeviceRowMark::at(now - retention);
                deleted += delete_through(state, table, &app_id, &through, Reason::Retention).await?;
            }
            let Some(cap) = table.cap(policy.max_devices) else { continue };
            if let Some(cutoff) = state.store.device_rows_cutoff(table, &app_id, cap).await? {
                deleted += delete_through(state, table, &app_id, &cutoff, Reason::Cap).await?;
            }
        }
    }
    Ok(deleted)
}

/// Deletes the app's rows of `table` at or before `through`, a batch at a time, counting each batch.
async fn delete_through(
    state: &AppState,
    table: DeviceTable,
    app_id: &AppId,
    through: &DeviceRowMark,
    reason: Reason,
) -> StoreResult<u64> {
    let mut total = 0;
    loop {
        let started = std::time::Instant::now();
        let n = state.store.delete_device_rows(table, app_id, through, BATCH).await?;
        state.device_ageing.add(table, reason, n);
        total += n;
        if n < BATCH {
            return Ok(total);
        }
        // As long again before the next batch: a big backlog (a cap lowered by millions) takes at most about half
        // of one core and half of the device writer's connection, leaving the rest to checks and the write-behind.
        tokio::time::sleep(started.elapsed()).await;
    }
}
