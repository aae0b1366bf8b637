//! bsdiff patches between Expo launch assets: recorded once computed and verified (idempotent: several instances
//! may compute the same pair), and looked up by (app, base, target) when a device asks for a patch.

use chrono::Utc;
use tracing::instrument;
use updraft_core::{AppId, ExpoPatch, StoreResult};

use super::{SqlStore, db_integer, map_error};
use crate::time::to_db;

#[instrument(skip_all, fields(app.id = %app_id))]
pub(super) async fn record_expo_patch(store: &SqlStore, app_id: &AppId, patch: &ExpoPatch) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO expo_patches (app_id, base_sha256, target_sha256, patch_sha256, patch_size, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (app_id, base_sha256, target_sha256) DO NOTHING",
    )
    .bind(app_id.as_str())
    .bind(&patch.base_sha256)
    .bind(&patch.target_sha256)
    .bind(patch.patch_sha256.as_deref().unwrap_or(""))
    .bind(db_integer(patch.patch_size))
    .bind(to_db(Utc::now()))
    .execute(&store.pool)
    .await
    .map_err(map_error)?;
    Ok(())
}

#[instrument(skip_all, fields(app.id = %app_id))]
pub(super) async fn expo_patch(
    store: &SqlStore,
    app_id: &AppId,
    base_sha256: &str,
    target_sha256: &str,
) -> StoreResult<Option<ExpoPatch>> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT patch_sha256, patch_size FROM expo_patches WHERE app_id = $1 AND base_sha256 = $2 AND target_sha256 = $3",
    )
    .bind(app_id.as_str())
    .bind(base_sha256)
    .bind(target_sha256)
    .fetch_optional(&store.pool)
    .await
    .map_err(map_error)?;
    Ok(row.map(|(patch_sha256, patch_size)| ExpoPatch {
        base_sha256: base_sha256.to_owned(),
        target_sha256: target_sha256.to_owned(),
        patch_sha256: (!patch_sha256.is_empty()).then_some(patch_sha256),
        patch_size: u64::try_from(patch_size).unwrap_or(0),
    }))
}
