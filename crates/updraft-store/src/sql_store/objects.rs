//! What storage objects are in use, for garbage collection: the object keys of live bundles and their delta files,
//! and the Expo assets a release names.
//!
//! Deleting is the caller's (`updraft storage gc`), which then forgets deleted Expo assets (`expo.rs`).

use updraft_core::{AppId, ReferencedObjects, StoreError, StoreResult};

use super::{SqlStore, map_error};

pub(super) async fn referenced_objects(store: &SqlStore) -> StoreResult<ReferencedObjects> {
    let bundles: Vec<String> =
        sqlx::query_scalar("SELECT object_key FROM bundles WHERE deleted = 0 AND object_key IS NOT NULL")
            .fetch_all(&store.pool)
            .await
            .map_err(map_error)?;
    let files: Vec<String> = sqlx::query_scalar(
        "SELECT f.object_key FROM bundle_files f JOIN bundles b ON b.id = f.bundle_id WHERE b.deleted = 0",
    )
    .fetch_all(&store.pool)
    .await
    .map_err(map_error)?;
    let assets: Vec<(String, String)> = sqlx::query_as(
        "SELECT app_id, launch_sha256 FROM expo_releases WHERE launch_sha256 IS NOT NULL
         UNION SELECT r.app_id, a.sha256 FROM expo_release_assets a JOIN expo_releases r ON r.id = a.release_id",
    )
    .fetch_all(&store.pool)
    .await
    .map_err(map_error)?;
    let mut referenced = ReferencedObjects::default();
    referenced.object_keys.extend(bundles);
    referenced.object_keys.extend(files);
    for (app_id, sha256) in assets {
        let app_id = AppId::parse(&app_id).map_err(|e| StoreError::Other(e.to_string()))?;
        referenced.expo_assets.insert((app_id, sha256));
    }
    Ok(referenced)
}
