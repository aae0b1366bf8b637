//! Sizes of delta files recorded before brotli copies existed: which files lack them, and filling them in
//! (`updraft storage encode` does, after it made the copies). A delta file is content-addressed, so every bundle row
//! naming its object key gets the same sizes.

use tracing::instrument;
use updraft_core::{AppId, StoreResult};

use super::{SqlStore, db_integer, map_error};

#[instrument(skip_all)]
pub(super) async fn delta_files_without_br_size(store: &SqlStore, after: &str, limit: u64) -> StoreResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT DISTINCT object_key FROM bundle_files WHERE br_size_bytes IS NULL AND object_key > $1
         ORDER BY object_key LIMIT $2",
    )
    .bind(after)
    .bind(db_integer(limit))
    .fetch_all(store.pool())
    .await
    .map_err(map_error)
}

#[instrument(skip_all, fields(object.key = %object_key))]
pub(super) async fn set_delta_file_sizes(
    store: &SqlStore,
    object_key: &str,
    size_bytes: u64,
    br_size_bytes: u64,
) -> StoreResult<u64> {
    let mut tx = store.write_transaction().await?;
    let apps: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT b.app_id FROM bundle_files f JOIN bundles b ON b.id = f.bundle_id
         WHERE f.object_key = $1 AND f.br_size_bytes IS NULL ORDER BY b.app_id",
    )
    .bind(object_key)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_error)?;
    let changed = sqlx::query(
        "UPDATE bundle_files SET br_size_bytes = $1, size_bytes = COALESCE(size_bytes, $2)
         WHERE object_key = $3 AND br_size_bytes IS NULL",
    )
    .bind(db_integer(br_size_bytes))
    .bind(db_integer(size_bytes))
    .bind(object_key)
    .execute(&mut *tx)
    .await
    .map_err(map_error)?
    .rows_affected();
    for app in apps {
        if let Ok(app_id) = AppId::parse(&app) {
            store.announce(&mut tx, &app_id).await?;
        }
    }
    tx.commit().await.map_err(map_error)?;
    Ok(changed)
}
