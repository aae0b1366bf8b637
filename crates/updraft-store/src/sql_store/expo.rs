//! Expo assets and releases: recording stored assets (content-addressed, with the MD5 the manifest names them by),
//! recording the per-platform releases of one publish in one transaction, and reading an app's releases back for
//! its catalog.
//!
//! Signing keys are `signing_keys.rs`; which assets garbage collection must keep is `objects.rs`.

use std::collections::{BTreeSet, HashMap};

use chrono::Utc;
use sqlx::{Any, Transaction};
use tracing::instrument;
use updraft_core::{AppId, ExpoAsset, ExpoRelease, ExpoReleaseKind, StoreError, StoreResult};

use super::{SqlStore, db_integer, map_error};
use crate::rows;
use crate::time::to_db;

pub(super) async fn insert_expo_asset(
    store: &SqlStore,
    app_id: &AppId,
    sha256: &str,
    md5: &str,
    size_bytes: u64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO expo_assets (app_id, sha256, md5, size_bytes, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (app_id, sha256) DO NOTHING",
    )
    .bind(app_id.as_str())
    .bind(sha256)
    .bind(md5)
    .bind(db_integer(size_bytes))
    .bind(to_db(Utc::now()))
    .execute(&store.pool)
    .await
    .map_err(map_error)?;
    Ok(())
}

pub(super) async fn expo_asset_md5s(
    store: &SqlStore,
    app_id: &AppId,
    sha256s: &[String],
) -> StoreResult<HashMap<String, String>> {
    let mut found = HashMap::new();
    for chunk in sha256s.chunks(500) {
        let placeholders = (2..chunk.len() + 2).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
        let query = format!("SELECT sha256, md5 FROM expo_assets WHERE app_id = $1 AND sha256 IN ({placeholders})");
        let mut statement = sqlx::query_as::<_, (String, String)>(&query).bind(app_id.as_str());
        for sha in chunk {
            statement = statement.bind(sha);
        }
        found.extend(statement.fetch_all(&store.pool).await.map_err(map_error)?);
    }
    Ok(found)
}

pub(super) async fn delete_expo_asset(store: &SqlStore, app_id: &AppId, sha256: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM expo_assets WHERE app_id = $1 AND sha256 = $2")
        .bind(app_id.as_str())
        .bind(sha256)
        .execute(&store.pool)
        .await
        .map_err(map_error)?;
    Ok(())
}

#[instrument(skip_all, fields(n_releases = releases.len()))]
pub(super) async fn insert_expo_releases(store: &SqlStore, releases: &[ExpoRelease]) -> StoreResult<()> {
    let mut tx = store.write_transaction().await?;
    insert_expo_releases_in(&mut tx, releases).await?;
    let apps: BTreeSet<&AppId> = releases.iter().map(|r| &r.app_id).collect();
    for app_id in apps {
        store.announce(&mut tx, app_id).await?;
    }
    tx.commit().await.map_err(map_error)
}

/// Records releases inside a transaction (a publish, or the releases a rollout's change mints with it); the caller
/// announces and commits.
pub(super) async fn insert_expo_releases_in(
    tx: &mut Transaction<'_, Any>,
    releases: &[ExpoRelease],
) -> StoreResult<()> {
    for release in releases {
        let (kind, launch, expo_client, assets) = match &release.kind {
            ExpoReleaseKind::Update { launch_asset, assets, expo_client } => {
                ("update", Some(launch_asset), Some(expo_client.as_str()), assets.as_slice())
            }
            ExpoReleaseKind::RollBackToEmbedded => ("rollback", None, None, &[][..]),
        };
        sqlx::query(
            "INSERT INTO expo_releases (id, group_id, app_id, channel, runtime_version, platform, created_at,
                message, kind, launch_sha256, launch_ext, expo_client)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&release.id)
        .bind(&release.group_id)
        .bind(release.app_id.as_str())
        .bind(&release.channel)
        .bind(&release.runtime_version)
        .bind(release.platform.as_str())
        .bind(to_db(release.created_at))
        .bind(&release.message)
        .bind(kind)
        .bind(launch.map(|a| a.sha256.clone()))
        .bind(launch.map(|a| a.ext.clone()))
        .bind(expo_client)
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
        for (position, asset) in assets.iter().enumerate() {
            sqlx::query("INSERT INTO expo_release_assets (release_id, position, sha256, ext) VALUES ($1, $2, $3, $4)")
                .bind(&release.id)
                .bind(position as i64)
                .bind(&asset.sha256)
                .bind(&asset.ext)
                .execute(&mut **tx)
                .await
                .map_err(map_error)?;
        }
    }
    Ok(())
}

/// An app's Expo releases with their assets' MD5 keys.
pub(super) async fn load_expo_releases(tx: &mut Transaction<'_, Any>, app_id: &AppId) -> StoreResult<Vec<ExpoRelease>> {
    let md5s: HashMap<String, String> = sqlx::query_as("SELECT sha256, md5 FROM expo_assets WHERE app_id = $1")
        .bind(app_id.as_str())
        .fetch_all(&mut **tx)
        .await
        .map_err(map_error)?
        .into_iter()
        .collect();
    let asset = |sha256: String, ext: String| -> StoreResult<ExpoAsset> {
        let md5 =
            md5s.get(&sha256).cloned().ok_or_else(|| StoreError::Other(format!("expo asset {sha256} missing")))?;
        Ok(ExpoAsset { sha256, md5, ext })
    };
    let mut assets_by_release: HashMap<String, Vec<ExpoAsset>> = Default::default();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT a.release_id, a.sha256, a.ext FROM expo_release_assets a JOIN expo_releases r ON r.id = a.release_id
         WHERE r.app_id = $1 ORDER BY a.release_id, a.position",
    )
    .bind(app_id.as_str())
    .fetch_all(&mut **tx)
    .await
    .map_err(map_error)?;
    for (release_id, sha256, ext) in rows {
        assets_by_release.entry(release_id).or_default().push(asset(sha256, ext)?);
    }
    let rows = sqlx::query("SELECT * FROM expo_releases WHERE app_id = $1 ORDER BY created_at")
        .bind(app_id.as_str())
        .fetch_all(&mut **tx)
        .await
        .map_err(map_error)?;
    let mut releases = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut release = rows::expo_release(row)?;
        if let ExpoReleaseKind::Update { launch_asset, assets, .. } = &mut release.kind {
            *launch_asset = asset(launch_asset.sha256.clone(), launch_asset.ext.clone())?;
            *assets = assets_by_release.remove(&release.id).unwrap_or_default();
        }
        releases.push(release);
    }
    Ok(releases)
}
