//! Bundles: recording a fully stored bundle (and pointing a channel at it) in one transaction, and deleting one
//! that nothing links, returning the objects no live bundle references any more.
//!
//! Storing the bytes, and removing orphaned objects afterwards, is the caller's; this module only keeps the rows.

use chrono::Utc;
use sqlx::{Any, Transaction};
use tracing::instrument;
use updraft_core::{AppId, Bundle, BundleSource, ChannelName, ChannelUpdate, NewBundle, StoreError, StoreResult};

use super::channels::upsert_channel_in;
use super::{SqlStore, map_error};
use crate::backend::Backend;
use crate::rows;
use crate::time::to_db;

#[instrument(skip_all, fields(app.id = %bundle.app_id, bundle.version = %bundle.version))]
pub(super) async fn insert_bundle(
    store: &SqlStore,
    bundle: &NewBundle,
    channel: Option<&(ChannelName, ChannelUpdate)>,
) -> StoreResult<Bundle> {
    let now = to_db(Utc::now());
    let (object_key, size_bytes, sha256, external_url) = match &bundle.source {
        BundleSource::Stored { object_key, size_bytes, sha256 } => {
            (Some(object_key.clone()), i64::try_from(*size_bytes).ok(), Some(sha256.clone()), None)
        }
        BundleSource::External { url } => (None, None, None, Some(url.clone())),
    };
    let mut tx = store.write_transaction().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO bundles (app_id, version, checksum, crc32, session_key, key_id, min_update_version,
            object_key, size_bytes, sha256, external_url, created_at, updated_at, link, comment)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
    )
    .bind(bundle.app_id.as_str())
    .bind(bundle.version.as_str())
    .bind(&bundle.checksum)
    .bind(&bundle.crc32)
    .bind(bundle.encryption.as_ref().map(|e| e.session_key.clone()))
    .bind(bundle.encryption.as_ref().and_then(|e| e.key_id.clone()))
    .bind(bundle.min_update_version.as_ref().map(ToString::to_string))
    .bind(object_key)
    .bind(size_bytes)
    .bind(sha256)
    .bind(external_url)
    .bind(&now)
    .bind(&now)
    .bind(&bundle.metadata.link)
    .bind(&bundle.metadata.comment)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match map_error(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("bundle {} of {}", bundle.version, bundle.app_id)),
        other => other,
    })?;
    for entry in &bundle.manifest {
        sqlx::query(
            "INSERT INTO bundle_files (bundle_id, file_name, file_hash, object_key, size_bytes, br_size_bytes)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(&entry.file_name)
        .bind(&entry.file_hash)
        .bind(&entry.object_key)
        .bind(entry.size_bytes.and_then(|size| i64::try_from(size).ok()))
        .bind(entry.br_size_bytes.and_then(|size| i64::try_from(size).ok()))
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
    }
    if let Some((name, update)) = channel {
        upsert_channel_in(&mut tx, store.backend, &bundle.app_id, name, update, Some(Some(id))).await?;
    }
    let row =
        sqlx::query("SELECT * FROM bundles WHERE id = $1").bind(id).fetch_one(&mut *tx).await.map_err(map_error)?;
    let mut stored = rows::bundle(&row)?;
    stored.manifest = bundle.manifest.clone();
    store.announce(&mut tx, &bundle.app_id).await?;
    tx.commit().await.map_err(map_error)?;
    Ok(stored)
}

#[instrument(skip_all, fields(app.id = %app_id, bundle.id = bundle_id))]
pub(super) async fn delete_bundle(store: &SqlStore, app_id: &AppId, bundle_id: i64) -> StoreResult<Vec<String>> {
    let mut tx = store.write_transaction().await?;
    // Locked before counting what points at it: see `keep_live`.
    let select = format!(
        "SELECT * FROM bundles WHERE id = $1 AND app_id = $2 AND deleted = 0{}",
        row_lock(store.backend, "FOR UPDATE")
    );
    let row = sqlx::query(&select)
        .bind(bundle_id)
        .bind(app_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_error)?
        .ok_or_else(|| StoreError::NotFound(format!("bundle {bundle_id}")))?;
    let bundle = rows::bundle(&row)?;
    // A rollout that is not completed may serve its candidate or its stable bundle again (on resume, on halt).
    let links: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM channels WHERE bundle_id = $1)
              + (SELECT count(*) FROM device_overrides WHERE bundle_id = $2)
              + (SELECT count(*) FROM rollouts WHERE app_id = $3 AND state <> 'completed'
                   AND ((candidate_kind = 'capgo_bundle' AND candidate = $4)
                        OR (stable_kind = 'capgo_bundle' AND stable = $5)))",
    )
    .bind(bundle_id)
    .bind(bundle_id)
    .bind(app_id.as_str())
    .bind(bundle.version.as_str())
    .bind(bundle.version.as_str())
    .fetch_one(&mut *tx)
    .await
    .map_err(map_error)?;
    if links > 0 {
        return Err(StoreError::Conflict(format!(
            "bundle {} is linked to a channel, a device or a rollout",
            bundle.version
        )));
    }
    sqlx::query("UPDATE bundles SET deleted = 1, updated_at = $1 WHERE id = $2")
        .bind(to_db(Utc::now()))
        .bind(bundle_id)
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
    let mut candidates: Vec<String> = sqlx::query_scalar("SELECT object_key FROM bundle_files WHERE bundle_id = $1")
        .bind(bundle_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_error)?;
    if let BundleSource::Stored { object_key, .. } = &bundle.source {
        candidates.push(object_key.clone());
    }
    let mut orphaned = Vec::new();
    for key in candidates {
        let still_used: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM bundles WHERE object_key = $1 AND deleted = 0)
                  + (SELECT count(*) FROM bundle_files f JOIN bundles b ON b.id = f.bundle_id
                     WHERE f.object_key = $1 AND b.deleted = 0)",
        )
        .bind(&key)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_error)?;
        if still_used == 0 && !orphaned.contains(&key) {
            orphaned.push(key);
        }
    }
    store.announce(&mut tx, app_id).await?;
    tx.commit().await.map_err(map_error)?;
    Ok(orphaned)
}

/// Which bundle a channel, a device pin or a rollout is about to point at.
pub(super) enum BundleRef<'a> {
    Id(i64),
    Version(&'a str),
}

/// Keeps a bundle of the app live until `tx` ends, or fails with [`StoreError::NotFound`] when it is deleted (or
/// not the app's). Whatever points a channel, a device or a rollout at a bundle goes through this in its own
/// transaction, since the caller's in-memory catalog may be older than a concurrent delete. On PostgreSQL the row
/// is locked `FOR SHARE` and [`delete_bundle`] locks it `FOR UPDATE` before it counts what points at it, so of the
/// two transactions the later sees the other's outcome: the delete then finds the new link and refuses, or the
/// pointing finds the bundle deleted. On SQLite write transactions run one at a time (`BEGIN IMMEDIATE`).
pub(super) async fn keep_live(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    app_id: &AppId,
    bundle: BundleRef<'_>,
) -> StoreResult<i64> {
    let (column, what) = match &bundle {
        BundleRef::Id(id) => ("id", format!("bundle {id}")),
        BundleRef::Version(version) => ("version", format!("bundle {version}")),
    };
    let sql = format!(
        "SELECT id FROM bundles WHERE app_id = $1 AND {column} = $2 AND deleted = 0{}",
        row_lock(backend, "FOR SHARE")
    );
    let query = sqlx::query_scalar(&sql).bind(app_id.as_str());
    let query = match bundle {
        BundleRef::Id(id) => query.bind(id),
        BundleRef::Version(version) => query.bind(version),
    };
    let found: Option<i64> = query.fetch_optional(&mut **tx).await.map_err(map_error)?;
    found.ok_or_else(|| StoreError::NotFound(format!("{what} of {app_id}")))
}

/// A row-lock clause for PostgreSQL; nothing on SQLite, whose write transactions already run one at a time.
pub(super) fn row_lock(backend: Backend, lock: &str) -> String {
    match backend {
        Backend::Postgres => format!(" {lock}"),
        Backend::Sqlite => String::new(),
    }
}
