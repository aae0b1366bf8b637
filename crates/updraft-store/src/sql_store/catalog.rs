//! The whole in-memory view of one app (`AppCatalog`), read in one transaction so the release index never sees half
//! a write: the app, its channels, live bundles with their delta manifests, device overrides, the versions each
//! device rolled back from, and its Expo releases.
//!
//! Writes to each of these live in their concern modules; this module only reads them together.

use std::collections::HashMap;

use sqlx::{Any, Transaction};
use tracing::instrument;
use updraft_core::{AppCatalog, AppId, DeviceId, ManifestEntry, StoreResult};

use super::{SqlStore, expo, map_error, rollouts};
use crate::rows;

#[instrument(skip_all, fields(app.id = %app_id))]
pub(super) async fn load_catalog(store: &SqlStore, app_id: &AppId) -> StoreResult<Option<AppCatalog>> {
    let mut tx = store.snapshot_transaction().await?;
    let Some(app_row) = sqlx::query("SELECT * FROM apps WHERE id = $1")
        .bind(app_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_error)?
    else {
        return Ok(None);
    };
    let app = rows::app(&app_row)?;
    let channels = app_rows(&mut tx, "SELECT * FROM channels WHERE app_id = $1", app_id, rows::channel).await?;
    let bundles =
        app_rows(&mut tx, "SELECT * FROM bundles WHERE app_id = $1 AND deleted = 0", app_id, rows::bundle).await?;
    let overrides =
        app_rows(&mut tx, "SELECT * FROM device_overrides WHERE app_id = $1", app_id, rows::device_override).await?;
    let mut manifests: HashMap<i64, Vec<ManifestEntry>> = Default::default();
    let files = sqlx::query(
        "SELECT f.* FROM bundle_files f JOIN bundles b ON b.id = f.bundle_id
         WHERE b.app_id = $1 AND b.deleted = 0 ORDER BY f.bundle_id, f.file_name",
    )
    .bind(app_id.as_str())
    .fetch_all(&mut *tx)
    .await
    .map_err(map_error)?;
    for row in &files {
        let (bundle_id, entry) = rows::manifest_entry(row)?;
        manifests.entry(bundle_id).or_default().push(entry);
    }
    let bundles = bundles
        .into_iter()
        .map(|mut bundle| {
            bundle.manifest = manifests.remove(&bundle.id).unwrap_or_default();
            bundle
        })
        .collect();
    let failed: Vec<(String, String)> =
        sqlx::query_as("SELECT device_id, version_name FROM device_failed_versions WHERE app_id = $1")
            .bind(app_id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
    let expo_releases = expo::load_expo_releases(&mut tx, app_id).await?;
    let rollouts = rollouts::load_rollouts(&mut tx, app_id).await?;
    tx.commit().await.map_err(map_error)?;
    let mut catalog = AppCatalog::new(app, channels, bundles, overrides);
    catalog.set_expo_releases(expo_releases);
    catalog.set_rollouts(rollouts);
    for (device_id, version_name) in failed {
        if let Ok(device_id) = DeviceId::parse(&device_id) {
            catalog.record_failure(&device_id, &version_name);
        }
    }
    Ok(Some(catalog))
}

/// Every row `sql` returns for an app (its only parameter is the app id), converted by `convert`.
async fn app_rows<T>(
    tx: &mut Transaction<'_, Any>,
    sql: &str,
    app_id: &AppId,
    convert: fn(&sqlx::any::AnyRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let rows = sqlx::query(sql).bind(app_id.as_str()).fetch_all(&mut **tx).await.map_err(map_error)?;
    rows.iter().map(convert).collect()
}
