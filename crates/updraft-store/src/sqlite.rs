//! `SqliteStore`: the embedded default metadata store, one SQLite file in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use tracing::instrument;
use updraft_core::{
    ApiKeyRecord, ApiKeyScope, App, AppCatalog, AppId, Bundle, BundleSource, Channel, ChannelName,
    ChannelSettings, ChannelUpdate, DeviceId, DeviceReport, MetadataStore, NewBundle,
    OverrideTarget, StoreError, StoreResult,
};

use crate::rows;
use crate::time::to_db;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Metadata in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if needed) the database at `url` (`sqlite://path` or `sqlite::memory:`), without
    /// migrating.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be opened.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(map_error)?;
        Ok(Self { pool })
    }

    /// Applies pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Other`] when a migration fails or the database is newer than this binary.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    /// Starts a write transaction. `BEGIN IMMEDIATE` takes the write lock up front (waiting on `busy_timeout`);
    /// a deferred transaction that reads first and writes later fails at once with `SQLITE_BUSY` when another
    /// writer (such as the device-report writer) committed in between.
    async fn write_transaction(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_error)
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn map_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(error.to_string())
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        _ => StoreError::Other(error.to_string()),
    }
}

async fn channel_row(
    tx: &mut Transaction<'_, Sqlite>,
    app_id: &AppId,
    name: &ChannelName,
) -> StoreResult<Option<Channel>> {
    sqlx::query("SELECT * FROM channels WHERE app_id = ? AND name = ?")
        .bind(app_id.as_str())
        .bind(name.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_error)?
        .as_ref()
        .map(rows::channel)
        .transpose()
}

/// The upsert of `POST /channel`, inside a transaction.
async fn upsert_channel_in(
    tx: &mut Transaction<'_, Sqlite>,
    app_id: &AppId,
    name: &ChannelName,
    update: &ChannelUpdate,
    bundle_id: Option<Option<i64>>,
) -> StoreResult<(Channel, bool)> {
    let now = to_db(Utc::now());
    let existing = channel_row(tx, app_id, name).await?;
    let created = existing.is_none();
    let (mut settings, current_bundle) = match &existing {
        Some(channel) => (channel.settings.clone(), channel.bundle_id),
        None => (ChannelSettings::default(), None),
    };
    settings.apply(update);
    let bundle_id = bundle_id.unwrap_or(current_bundle);
    // Both statements bind the settings in the same order, then (created_at,) app_id and name.
    let query = if created {
        "INSERT INTO channels (bundle_id, public, disable_auto_update, disable_auto_update_under_native, ios, android,
            electron, allow_device_self_set, allow_emulator, allow_device, allow_dev, allow_prod, updated_at,
            created_at, app_id, name)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    } else {
        "UPDATE channels SET bundle_id = ?, public = ?, disable_auto_update = ?, disable_auto_update_under_native = ?,
            ios = ?, android = ?, electron = ?, allow_device_self_set = ?, allow_emulator = ?, allow_device = ?,
            allow_dev = ?, allow_prod = ?, updated_at = ?
         WHERE app_id = ? AND name = ?"
    };
    let mut statement = sqlx::query(query)
        .bind(bundle_id)
        .bind(settings.public)
        .bind(settings.disable_auto_update.as_str())
        .bind(settings.disable_auto_update_under_native)
        .bind(settings.ios)
        .bind(settings.android)
        .bind(settings.electron)
        .bind(settings.allow_device_self_set)
        .bind(settings.allow_emulator)
        .bind(settings.allow_device)
        .bind(settings.allow_dev)
        .bind(settings.allow_prod)
        .bind(now.clone());
    if created {
        statement = statement.bind(now);
    }
    statement
        .bind(app_id.as_str())
        .bind(name.as_str())
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
    let channel = channel_row(tx, app_id, name)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("channel {name}")))?;
    Ok((channel, created))
}

#[async_trait]
impl MetadataStore for SqliteStore {
    #[instrument(skip_all, fields(app.id = %app.id))]
    async fn create_app(&self, app: &App) -> StoreResult<()> {
        sqlx::query("INSERT INTO apps (id, name, created_at) VALUES (?, ?, ?)")
            .bind(app.id.as_str())
            .bind(&app.name)
            .bind(to_db(app.created_at))
            .execute(&self.pool)
            .await
            .map_err(|e| match map_error(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("app {}", app.id)),
                other => other,
            })?;
        Ok(())
    }

    async fn list_app_ids(&self) -> StoreResult<Vec<AppId>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM apps ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?;
        ids.iter()
            .map(|id| AppId::parse(id).map_err(|e| StoreError::Other(e.to_string())))
            .collect()
    }

    #[instrument(skip_all, fields(app.id = %app_id))]
    async fn load_catalog(&self, app_id: &AppId) -> StoreResult<Option<AppCatalog>> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        let Some(app_row) = sqlx::query("SELECT * FROM apps WHERE id = ?")
            .bind(app_id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_error)?
        else {
            return Ok(None);
        };
        let app = rows::app(&app_row)?;
        let channels = sqlx::query("SELECT * FROM channels WHERE app_id = ?")
            .bind(app_id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?
            .iter()
            .map(rows::channel)
            .collect::<StoreResult<Vec<_>>>()?;
        let bundles = sqlx::query("SELECT * FROM bundles WHERE app_id = ? AND deleted = 0")
            .bind(app_id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?
            .iter()
            .map(rows::bundle)
            .collect::<StoreResult<Vec<_>>>()?;
        let overrides = sqlx::query("SELECT * FROM device_overrides WHERE app_id = ?")
            .bind(app_id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?
            .iter()
            .map(rows::device_override)
            .collect::<StoreResult<Vec<_>>>()?;
        tx.commit().await.map_err(map_error)?;
        Ok(Some(AppCatalog::new(app, channels, bundles, overrides)))
    }

    #[instrument(skip_all, fields(app.id = %app_id, channel.name = %name))]
    async fn upsert_channel(
        &self,
        app_id: &AppId,
        name: &ChannelName,
        update: &ChannelUpdate,
        bundle_id: Option<Option<i64>>,
    ) -> StoreResult<(Channel, bool)> {
        let mut tx = self.write_transaction().await?;
        let result = upsert_channel_in(&mut tx, app_id, name, update, bundle_id).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(result)
    }

    #[instrument(skip_all, fields(app.id = %app_id, channel.name = %name))]
    async fn delete_channel(&self, app_id: &AppId, name: &ChannelName) -> StoreResult<()> {
        let mut tx = self.write_transaction().await?;
        let channel = channel_row(&mut tx, app_id, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("channel {name}")))?;
        sqlx::query("DELETE FROM device_overrides WHERE channel_id = ?")
            .bind(channel.id)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        sqlx::query("DELETE FROM channels WHERE id = ?")
            .bind(channel.id)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)
    }

    #[instrument(skip_all, fields(app.id = %bundle.app_id, bundle.version = %bundle.version))]
    async fn insert_bundle(
        &self,
        bundle: &NewBundle,
        channel: Option<&(ChannelName, ChannelUpdate)>,
    ) -> StoreResult<Bundle> {
        let now = to_db(Utc::now());
        let (object_key, size_bytes, sha256, external_url) = match &bundle.source {
            BundleSource::Stored {
                object_key,
                size_bytes,
                sha256,
            } => (
                Some(object_key.clone()),
                i64::try_from(*size_bytes).ok(),
                Some(sha256.clone()),
                None,
            ),
            BundleSource::External { url } => (None, None, None, Some(url.clone())),
        };
        let mut tx = self.write_transaction().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bundles (app_id, version, checksum, crc32, session_key, key_id, min_update_version,
                object_key, size_bytes, sha256, external_url, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match map_error(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("bundle {} of {}", bundle.version, bundle.app_id)),
            other => other,
        })?;
        if let Some((name, update)) = channel {
            upsert_channel_in(&mut tx, &bundle.app_id, name, update, Some(Some(id))).await?;
        }
        let row = sqlx::query("SELECT * FROM bundles WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_error)?;
        let stored = rows::bundle(&row)?;
        tx.commit().await.map_err(map_error)?;
        Ok(stored)
    }

    #[instrument(skip_all, fields(app.id = %app_id))]
    async fn set_device_override(
        &self,
        app_id: &AppId,
        device_id: &DeviceId,
        target: &OverrideTarget,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO device_overrides (app_id, device_id, channel_id, bundle_id, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (app_id, device_id) DO UPDATE SET channel_id = excluded.channel_id,
                bundle_id = excluded.bundle_id, updated_at = excluded.updated_at",
        )
        .bind(app_id.as_str())
        .bind(device_id.as_str())
        .bind(target.channel_id)
        .bind(target.bundle_id)
        .bind(to_db(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    #[instrument(skip_all, fields(app.id = %app_id))]
    async fn delete_device_override(
        &self,
        app_id: &AppId,
        device_id: &DeviceId,
    ) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM device_overrides WHERE app_id = ? AND device_id = ?")
            .bind(app_id.as_str())
            .bind(device_id.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected() > 0)
    }

    #[instrument(skip_all, fields(n_devices = reports.len()))]
    async fn upsert_devices(&self, reports: &[DeviceReport]) -> StoreResult<()> {
        let mut tx = self.write_transaction().await?;
        for report in reports {
            let seen = to_db(report.seen_at);
            sqlx::query(
                "INSERT INTO devices (app_id, device_id, platform, version_name, version_build, version_code,
                    version_os, plugin_version, custom_id, is_prod, is_emulator, install_source, default_channel,
                    key_id, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (app_id, device_id) DO UPDATE SET platform = excluded.platform,
                    version_name = excluded.version_name, version_build = excluded.version_build,
                    version_code = excluded.version_code, version_os = excluded.version_os,
                    plugin_version = excluded.plugin_version, custom_id = excluded.custom_id,
                    is_prod = excluded.is_prod, is_emulator = excluded.is_emulator,
                    install_source = excluded.install_source, default_channel = excluded.default_channel,
                    key_id = excluded.key_id, updated_at = excluded.updated_at
                 WHERE excluded.updated_at >= devices.updated_at",
            )
            .bind(report.app_id.as_str())
            .bind(report.device_id.as_str())
            .bind(report.platform.as_str())
            .bind(&report.version_name)
            .bind(&report.version_build)
            .bind(&report.version_code)
            .bind(&report.version_os)
            .bind(&report.plugin_version)
            .bind(&report.custom_id)
            .bind(report.is_prod)
            .bind(report.is_emulator)
            .bind(&report.install_source)
            .bind(&report.default_channel)
            .bind(&report.key_id)
            .bind(&seen)
            .bind(&seen)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        }
        tx.commit().await.map_err(map_error)
    }

    async fn get_device(
        &self,
        app_id: &AppId,
        device_id: &DeviceId,
    ) -> StoreResult<Option<DeviceReport>> {
        sqlx::query("SELECT * FROM devices WHERE app_id = ? AND device_id = ?")
            .bind(app_id.as_str())
            .bind(device_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_error)?
            .as_ref()
            .map(rows::device)
            .transpose()
    }

    #[instrument(skip_all, fields(api_key.id = %key.id, api_key.name = %key.name))]
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let app_id = match &key.scope {
            ApiKeyScope::All => None,
            ApiKeyScope::App(app_id) => Some(app_id.as_str().to_owned()),
        };
        sqlx::query("INSERT INTO api_keys (id, name, secret_sha256, app_id, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&key.id)
            .bind(&key.name)
            .bind(&key.secret_sha256)
            .bind(app_id)
            .bind(to_db(key.created_at))
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn find_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        sqlx::query("SELECT * FROM api_keys WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_error)?
            .as_ref()
            .map(rows::api_key)
            .transpose()
    }
}
