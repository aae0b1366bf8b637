//! `SqlStore`: the metadata store over `sqlx`'s `Any` driver, one implementation for both backends: SQLite (the
//! embedded default, one file in WAL mode) and PostgreSQL (shared by several gateway instances).
//!
//! Every statement is written once with `$N` parameters, which both databases accept. Types are limited to text,
//! 64-bit integers and booleans (times are RFC 3339 text), the set both backends store alike. On PostgreSQL every
//! write that changes what devices are served also sends a `NOTIFY` in its transaction (see [`crate::changes`]).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Executor, Transaction};
use tracing::instrument;
use updraft_core::{
    ApiKeyRecord, ApiKeyScope, App, AppCatalog, AppId, Bundle, BundleCounts, BundlePin, BundleSource, Channel,
    ChannelName, ChannelSettings, ChannelUpdate, DeviceCursor, DeviceId, DeviceReport, ExpoAsset, ExpoRelease,
    ExpoReleaseKind, MetadataStore, NewBundle, OverrideTarget, StatsEvent, StatsSummary, StoreError, StoreResult,
};

use crate::backend::Backend;
use crate::rows;
use crate::time::to_db;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Settings every SQLite connection gets: WAL (readers never wait for the writer), foreign keys, and a generous
/// wait for the write lock instead of failing at once.
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";

/// The device writer's SQLite connection caches up to 16 MB of pages (the default is 2 MB).
const SQLITE_DEVICE_WRITER_PRAGMAS: &str = "PRAGMA cache_size = -16384;";

/// Metadata in SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// Where device reports are written: on SQLite one connection of its own with a larger page cache, so the
    /// write-behind batches find the devices table's pages cached instead of cycling through the pool's
    /// connections (each with a cold 2 MB cache); on PostgreSQL the same pool.
    devices: AnyPool,
}

impl SqlStore {
    /// Opens the database at `url` without migrating: `sqlite://path` (created if missing) or `postgres://...`.
    ///
    /// # Errors
    /// [`StoreError::Other`] for a URL of another kind; [`StoreError::Unavailable`] when the database cannot be
    /// reached.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let sqlite_url = crate::backend::sqlite_create_url(url);
        let pool = match backend {
            Backend::Sqlite => {
                let url = &sqlite_url;
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(|connection, _| {
                        Box::pin(async move { connection.execute(SQLITE_PRAGMAS).await.map(drop) })
                    })
                    .connect(url)
                    .await
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .min_connections(0)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(url)
                    .await
            }
        }
        .map_err(unavailable)?;
        let devices = match backend {
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(|connection, _| {
                    Box::pin(async move {
                        connection.execute(SQLITE_PRAGMAS).await?;
                        connection.execute(SQLITE_DEVICE_WRITER_PRAGMAS).await.map(drop)
                    })
                })
                .connect_lazy(&sqlite_url)
                .map_err(unavailable)?,
            Backend::Postgres => pool.clone(),
        };
        Ok(Self { pool, backend, devices })
    }

    /// Which database this is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations. On PostgreSQL the migrator holds an advisory lock, so instances starting at once
    /// apply each migration exactly once.
    ///
    /// # Errors
    /// [`StoreError::Other`] when a migration fails or the database is newer than this binary.
    pub async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator.run(&self.pool).await.map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    /// Starts a write transaction. On SQLite `BEGIN IMMEDIATE` takes the write lock up front (waiting on
    /// `busy_timeout`); a deferred transaction that reads first and writes later fails at once with `SQLITE_BUSY`
    /// when another writer (such as the device-report writer) committed in between.
    async fn write_transaction(&self) -> StoreResult<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_error),
            Backend::Postgres => self.pool.begin().await.map_err(map_error),
        }
    }

    /// Tells every other gateway instance, when the transaction commits, that `app_id`'s catalog changed.
    async fn announce(&self, tx: &mut Transaction<'_, Any>, app_id: &AppId) -> StoreResult<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::changes::CHANNEL)
                .bind(app_id.as_str())
                .execute(&mut **tx)
                .await
                .map_err(map_error)?;
        }
        Ok(())
    }

    /// Sets one column of an app (`sql` binds the value as `$1` and the app id as `$2`).
    async fn update_app(&self, sql: &str, app_id: &AppId, value: Option<&str>) -> StoreResult<()> {
        let mut tx = self.write_transaction().await?;
        let done = sqlx::query(sql).bind(value).bind(app_id.as_str()).execute(&mut *tx).await.map_err(map_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("app {app_id}")));
        }
        self.announce(&mut tx, app_id).await?;
        tx.commit().await.map_err(map_error)
    }

    /// The connection pool, for export and import.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pools, waiting for connections to be returned.
    pub async fn close(&self) {
        self.devices.close().await;
        self.pool.close().await;
    }
}

/// A database that cannot be reached at start-up is unavailable, not broken.
fn unavailable(error: sqlx::Error) -> StoreError {
    match map_error(error) {
        StoreError::Other(detail) => StoreError::Unavailable(detail),
        other => other,
    }
}

pub(crate) fn map_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            StoreError::Unavailable(error.to_string())
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_owned()),
        sqlx::Error::Database(db) if db.code().as_deref().is_some_and(is_retryable_code) => {
            StoreError::Unavailable(db.message().to_owned())
        }
        _ => StoreError::Other(error.to_string()),
    }
}

/// Database error codes that mean "try again later", not "this request is wrong".
fn is_retryable_code(code: &str) -> bool {
    // SQLite: SQLITE_BUSY / SQLITE_LOCKED (and extended forms) after busy_timeout: another process holds the file.
    matches!(code, "5" | "6" | "261" | "262" | "517")
        // PostgreSQL: serialization failure, deadlock, connection exceptions (08xxx), shutdown and
        // too-many-connections (57P0x, 53300), cannot-connect-now.
        || matches!(code, "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03")
        || code.starts_with("08")
}

async fn channel_row(
    tx: &mut Transaction<'_, Any>,
    app_id: &AppId,
    name: &ChannelName,
) -> StoreResult<Option<Channel>> {
    sqlx::query("SELECT * FROM channels WHERE app_id = $1 AND name = $2")
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
    tx: &mut Transaction<'_, Any>,
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
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    } else {
        "UPDATE channels SET bundle_id = $1, public = $2, disable_auto_update = $3, disable_auto_update_under_native = $4,
            ios = $5, android = $6, electron = $7, allow_device_self_set = $8, allow_emulator = $9, allow_device = $10,
            allow_dev = $11, allow_prod = $12, updated_at = $13
         WHERE app_id = $14 AND name = $15"
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
    statement.bind(app_id.as_str()).bind(name.as_str()).execute(&mut **tx).await.map_err(map_error)?;
    let channel =
        channel_row(tx, app_id, name).await?.ok_or_else(|| StoreError::NotFound(format!("channel {name}")))?;
    Ok((channel, created))
}

#[async_trait]
impl MetadataStore for SqlStore {
    #[instrument(skip_all, fields(app.id = %app.id))]
    async fn create_app(&self, app: &App) -> StoreResult<()> {
        let mut tx = self.write_transaction().await?;
        sqlx::query("INSERT INTO apps (id, name, public_key, default_channel, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(app.id.as_str())
            .bind(&app.name)
            .bind(&app.public_key)
            .bind(&app.default_channel)
            .bind(to_db(app.created_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| match map_error(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("app {}", app.id)),
                other => other,
            })?;
        self.announce(&mut tx, &app.id).await?;
        tx.commit().await.map_err(map_error)
    }

    async fn list_app_ids(&self) -> StoreResult<Vec<AppId>> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM apps ORDER BY id").fetch_all(&self.pool).await.map_err(map_error)?;
        ids.iter().map(|id| AppId::parse(id).map_err(|e| StoreError::Other(e.to_string()))).collect()
    }

    #[instrument(skip_all, fields(app.id = %app_id))]
    async fn load_catalog(&self, app_id: &AppId) -> StoreResult<Option<AppCatalog>> {
        let mut tx = self.pool.begin().await.map_err(map_error)?;
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
            app_rows(&mut tx, "SELECT * FROM device_overrides WHERE app_id = $1", app_id, rows::device_override)
                .await?;
        let mut manifests: std::collections::HashMap<i64, Vec<updraft_core::ManifestEntry>> = Default::default();
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
        let expo_releases = load_expo_releases(&mut tx, app_id).await?;
        tx.commit().await.map_err(map_error)?;
        let mut catalog = AppCatalog::new(app, channels, bundles, overrides);
        catalog.set_expo_releases(expo_releases);
        for (device_id, version_name) in failed {
            if let Ok(device_id) = DeviceId::parse(&device_id) {
                catalog.record_failure(&device_id, &version_name);
            }
        }
        Ok(Some(catalog))
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
        self.announce(&mut tx, app_id).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(result)
    }

    #[instrument(skip_all, fields(app.id = %app_id, channel.name = %name))]
    async fn delete_channel(&self, app_id: &AppId, name: &ChannelName) -> StoreResult<()> {
        let mut tx = self.write_transaction().await?;
        let channel =
            channel_row(&mut tx, app_id, name).await?.ok_or_else(|| StoreError::NotFound(format!("channel {name}")))?;
        sqlx::query("DELETE FROM device_overrides WHERE channel_id = $1")
            .bind(channel.id)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        sqlx::query("DELETE FROM channels WHERE id = $1")
            .bind(channel.id)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        self.announce(&mut tx, app_id).await?;
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
            BundleSource::Stored { object_key, size_bytes, sha256 } => {
                (Some(object_key.clone()), i64::try_from(*size_bytes).ok(), Some(sha256.clone()), None)
            }
            BundleSource::External { url } => (None, None, None, Some(url.clone())),
        };
        let mut tx = self.write_transaction().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bundles (app_id, version, checksum, crc32, session_key, key_id, min_update_version,
                object_key, size_bytes, sha256, external_url, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
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
        for entry in &bundle.manifest {
            sqlx::query(
                "INSERT INTO bundle_files (bundle_id, file_name, file_hash, object_key) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(&entry.file_name)
            .bind(&entry.file_hash)
            .bind(&entry.object_key)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        }
        if let Some((name, update)) = channel {
            upsert_channel_in(&mut tx, &bundle.app_id, name, update, Some(Some(id))).await?;
        }
        let row =
            sqlx::query("SELECT * FROM bundles WHERE id = $1").bind(id).fetch_one(&mut *tx).await.map_err(map_error)?;
        let mut stored = rows::bundle(&row)?;
        stored.manifest = bundle.manifest.clone();
        self.announce(&mut tx, &bundle.app_id).await?;
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
        let mut tx = self.write_transaction().await?;
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
        self.announce(&mut tx, app_id).await?;
        tx.commit().await.map_err(map_error)
    }

    #[instrument(skip_all, fields(app.id = %app_id))]
    async fn delete_device_override(&self, app_id: &AppId, device_id: &DeviceId) -> StoreResult<bool> {
        let mut tx = self.write_transaction().await?;
        let done = sqlx::query("DELETE FROM device_overrides WHERE app_id = $1 AND device_id = $2")
            .bind(app_id.as_str())
            .bind(device_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        self.announce(&mut tx, app_id).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(done.rows_affected() > 0)
    }

    #[instrument(skip_all, fields(n_devices = reports.len()))]
    async fn upsert_devices(&self, reports: &[DeviceReport]) -> StoreResult<()> {
        // One order for every writer: two instances upserting overlapping batches lock rows in the same order, so
        // PostgreSQL never has to break a deadlock. One row per device: a statement may not change a row twice, so
        // of several reports of a device only the newest (the last given, between equal times) is written.
        let mut ordered: Vec<&DeviceReport> = reports.iter().rev().collect();
        ordered.sort_by(|a, b| {
            (a.app_id.as_str(), a.device_id.as_str())
                .cmp(&(b.app_id.as_str(), b.device_id.as_str()))
                .then(b.seen_at.cmp(&a.seen_at))
        });
        ordered.dedup_by(|later, kept| later.app_id == kept.app_id && later.device_id == kept.device_id);
        let mut tx = match self.backend {
            Backend::Sqlite => self.devices.begin_with("BEGIN IMMEDIATE").await.map_err(map_error)?,
            Backend::Postgres => self.devices.begin().await.map_err(map_error)?,
        };
        let mut rest = ordered.as_slice();
        while !rest.is_empty() {
            // Many rows per statement (a few sizes, so each connection prepares at most a handful of statements).
            let n = DEVICE_ROWS_PER_STATEMENT.min(1 << rest.len().ilog2());
            let (rows, after) = rest.split_at(n);
            rest = after;
            let mut query = sqlx::query(upsert_devices_sql(self.backend, n));
            // Bound as &str: the Any driver copies a bound String, but borrows a &str.
            let times: Vec<String> = rows.iter().map(|report| to_db(report.seen_at)).collect();
            for (report, seen) in rows.iter().zip(&times) {
                query = query
                    .bind(report.app_id.as_str())
                    .bind(report.device_id.as_str())
                    .bind(report.platform.as_str())
                    .bind(report.version_name.as_str())
                    .bind(report.version_build.as_str())
                    .bind(report.version_code.as_str())
                    .bind(report.version_os.as_str())
                    .bind(report.plugin_version.as_str())
                    .bind(report.custom_id.as_str())
                    .bind(report.is_prod)
                    .bind(report.is_emulator)
                    .bind(report.install_source.as_str())
                    .bind(report.default_channel.as_str())
                    .bind(report.key_id.as_str())
                    .bind(seen.as_str())
                    .bind(seen.as_str());
            }
            query.execute(&mut *tx).await.map_err(map_error)?;
        }
        tx.commit().await.map_err(map_error)
    }

    async fn get_device(&self, app_id: &AppId, device_id: &DeviceId) -> StoreResult<Option<DeviceReport>> {
        sqlx::query("SELECT * FROM devices WHERE app_id = $1 AND device_id = $2")
            .bind(app_id.as_str())
            .bind(device_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_error)?
            .as_ref()
            .map(rows::device)
            .transpose()
    }

    async fn list_devices(&self, app_id: &AppId, offset: u64, limit: u64) -> StoreResult<Vec<DeviceReport>> {
        sqlx::query("SELECT * FROM devices WHERE app_id = $1 ORDER BY updated_at DESC, device_id LIMIT $2 OFFSET $3")
            .bind(app_id.as_str())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?
            .iter()
            .map(rows::device)
            .collect()
    }

    async fn list_devices_after(
        &self,
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
        sqlx::query(&query)
            .bind(app_id.as_str())
            .bind(cursor_time.clone())
            .bind(cursor_time)
            .bind(after.map(|c| c.device_id.as_str().to_owned()))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?
            .iter()
            .map(rows::device)
            .collect()
    }

    #[instrument(skip_all, fields(app.id = %app_id))]
    async fn set_app_public_key(&self, app_id: &AppId, public_key: Option<&str>) -> StoreResult<()> {
        self.update_app("UPDATE apps SET public_key = $1 WHERE id = $2", app_id, public_key).await
    }

    async fn set_app_default_channel(&self, app_id: &AppId, channel: &str) -> StoreResult<()> {
        self.update_app("UPDATE apps SET default_channel = $1 WHERE id = $2", app_id, Some(channel)).await
    }

    async fn insert_expo_asset(&self, app_id: &AppId, sha256: &str, md5: &str, size_bytes: u64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO expo_assets (app_id, sha256, md5, size_bytes, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (app_id, sha256) DO NOTHING",
        )
        .bind(app_id.as_str())
        .bind(sha256)
        .bind(md5)
        .bind(i64::try_from(size_bytes).unwrap_or(i64::MAX))
        .bind(to_db(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn expo_asset_md5s(
        &self,
        app_id: &AppId,
        sha256s: &[String],
    ) -> StoreResult<std::collections::HashMap<String, String>> {
        let mut found = std::collections::HashMap::new();
        for chunk in sha256s.chunks(500) {
            let placeholders = (2..chunk.len() + 2).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
            let query = format!("SELECT sha256, md5 FROM expo_assets WHERE app_id = $1 AND sha256 IN ({placeholders})");
            let mut statement = sqlx::query_as::<_, (String, String)>(&query).bind(app_id.as_str());
            for sha in chunk {
                statement = statement.bind(sha);
            }
            found.extend(statement.fetch_all(&self.pool).await.map_err(map_error)?);
        }
        Ok(found)
    }

    async fn delete_expo_asset(&self, app_id: &AppId, sha256: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM expo_assets WHERE app_id = $1 AND sha256 = $2")
            .bind(app_id.as_str())
            .bind(sha256)
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn referenced_objects(&self) -> StoreResult<updraft_core::ReferencedObjects> {
        let bundles: Vec<String> =
            sqlx::query_scalar("SELECT object_key FROM bundles WHERE deleted = 0 AND object_key IS NOT NULL")
                .fetch_all(&self.pool)
                .await
                .map_err(map_error)?;
        let files: Vec<String> = sqlx::query_scalar(
            "SELECT f.object_key FROM bundle_files f JOIN bundles b ON b.id = f.bundle_id WHERE b.deleted = 0",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_error)?;
        let assets: Vec<(String, String)> = sqlx::query_as(
            "SELECT app_id, launch_sha256 FROM expo_releases WHERE launch_sha256 IS NOT NULL
             UNION SELECT r.app_id, a.sha256 FROM expo_release_assets a JOIN expo_releases r ON r.id = a.release_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_error)?;
        let mut referenced = updraft_core::ReferencedObjects::default();
        referenced.object_keys.extend(bundles);
        referenced.object_keys.extend(files);
        for (app_id, sha256) in assets {
            let app_id = AppId::parse(&app_id).map_err(|e| StoreError::Other(e.to_string()))?;
            referenced.expo_assets.insert((app_id, sha256));
        }
        Ok(referenced)
    }

    #[instrument(skip_all, fields(n_releases = releases.len()))]
    async fn insert_expo_releases(&self, releases: &[ExpoRelease]) -> StoreResult<()> {
        let mut tx = self.write_transaction().await?;
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
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            for (position, asset) in assets.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO expo_release_assets (release_id, position, sha256, ext) VALUES ($1, $2, $3, $4)",
                )
                .bind(&release.id)
                .bind(position as i64)
                .bind(&asset.sha256)
                .bind(&asset.ext)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            }
        }
        let apps: std::collections::BTreeSet<&AppId> = releases.iter().map(|r| &r.app_id).collect();
        for app_id in apps {
            self.announce(&mut tx, app_id).await?;
        }
        tx.commit().await.map_err(map_error)
    }

    async fn put_signing_key(&self, app_id: &AppId, key_id: &str, private_key_pem: &str) -> StoreResult<()> {
        let mut tx = self.write_transaction().await?;
        sqlx::query(
            "INSERT INTO signing_keys (app_id, key_id, private_key_pem, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (app_id, key_id) DO UPDATE SET private_key_pem = excluded.private_key_pem,
                created_at = excluded.created_at",
        )
        .bind(app_id.as_str())
        .bind(key_id)
        .bind(private_key_pem)
        .bind(to_db(Utc::now()))
        .execute(&mut *tx)
        .await
        .map_err(map_error)?;
        self.announce(&mut tx, app_id).await?;
        tx.commit().await.map_err(map_error)
    }

    async fn signing_keys(&self, app_id: &AppId) -> StoreResult<Vec<(String, String)>> {
        sqlx::query_as("SELECT key_id, private_key_pem FROM signing_keys WHERE app_id = $1 ORDER BY key_id")
            .bind(app_id.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)
    }

    #[instrument(skip_all, fields(app.id = %app_id, bundle.id = bundle_id))]
    async fn delete_bundle(&self, app_id: &AppId, bundle_id: i64) -> StoreResult<Vec<String>> {
        let mut tx = self.write_transaction().await?;
        let row = sqlx::query("SELECT * FROM bundles WHERE id = $1 AND app_id = $2 AND deleted = 0")
            .bind(bundle_id)
            .bind(app_id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_error)?
            .ok_or_else(|| StoreError::NotFound(format!("bundle {bundle_id}")))?;
        let bundle = rows::bundle(&row)?;
        let links: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM channels WHERE bundle_id = $1)
                  + (SELECT count(*) FROM device_overrides WHERE bundle_id = $1)",
        )
        .bind(bundle_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_error)?;
        if links > 0 {
            return Err(StoreError::Conflict(format!("bundle {} is linked to a channel or device", bundle.version)));
        }
        sqlx::query("UPDATE bundles SET deleted = 1, updated_at = $1 WHERE id = $2")
            .bind(to_db(Utc::now()))
            .bind(bundle_id)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        let mut candidates: Vec<String> =
            sqlx::query_scalar("SELECT object_key FROM bundle_files WHERE bundle_id = $1")
                .bind(bundle_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
        if let updraft_core::BundleSource::Stored { object_key, .. } = &bundle.source {
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
        self.announce(&mut tx, app_id).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(orphaned)
    }

    #[instrument(skip_all, fields(n_events = events.len()))]
    async fn insert_stats(&self, events: &[StatsEvent]) -> StoreResult<()> {
        let mut tx = self.write_transaction().await?;
        for event in events {
            let received = to_db(event.received_at);
            sqlx::query(
                "INSERT INTO stats_events (app_id, device_id, action, version_name, old_version_name, platform,
                    plugin_version, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(event.app_id.as_str())
            .bind(event.device_id.as_str())
            .bind(&event.action)
            .bind(&event.version_name)
            .bind(&event.old_version_name)
            .bind(&event.platform)
            .bind(&event.plugin_version)
            .bind(&received)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            if updraft_core::is_rollback(&event.action) && !event.version_name.is_empty() {
                sqlx::query(
                    "INSERT INTO device_failed_versions (app_id, device_id, version_name, failed_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (app_id, device_id, version_name) DO NOTHING",
                )
                .bind(event.app_id.as_str())
                .bind(event.device_id.as_str())
                .bind(&event.version_name)
                .bind(&received)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            }
        }
        // A rollback changes what that device is offered.
        let rolled_back: std::collections::BTreeSet<&AppId> =
            events.iter().filter(|e| updraft_core::is_rollback(&e.action)).map(|e| &e.app_id).collect();
        for app_id in rolled_back {
            self.announce(&mut tx, app_id).await?;
        }
        tx.commit().await.map_err(map_error)
    }

    async fn stats_summary(&self, app_id: &AppId, n_recent: u64) -> StoreResult<StatsSummary> {
        let recent = sqlx::query("SELECT * FROM stats_events WHERE app_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(app_id.as_str())
            .bind(i64::try_from(n_recent).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?
            .iter()
            .map(rows::stats_event)
            .collect::<StoreResult<Vec<_>>>()?;
        let devices: Vec<(String, i64)> =
            sqlx::query_as("SELECT version_name, count(*) FROM devices WHERE app_id = $1 GROUP BY version_name")
                .bind(app_id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(map_error)?;
        let events: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT version_name, action, count(*) FROM stats_events WHERE app_id = $1 GROUP BY version_name, action",
        )
        .bind(app_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_error)?;
        let mut per_bundle: std::collections::BTreeMap<String, BundleCounts> = Default::default();
        for (version, n) in devices {
            entry(&mut per_bundle, &version).devices += u64::try_from(n).unwrap_or(0);
        }
        for (version, action, n) in events {
            let n = u64::try_from(n).unwrap_or(0);
            match updraft_core::action_kind(&action) {
                updraft_core::ActionKind::Install => entry(&mut per_bundle, &version).installs += n,
                updraft_core::ActionKind::Failure => entry(&mut per_bundle, &version).failures += n,
                updraft_core::ActionKind::Other => {}
            }
        }
        Ok(StatsSummary { recent, per_bundle: per_bundle.into_values().collect() })
    }

    #[instrument(skip_all, fields(api_key.id = %key.id, api_key.name = %key.name))]
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let app_id = match &key.scope {
            ApiKeyScope::All => None,
            ApiKeyScope::App(app_id) => Some(app_id.as_str().to_owned()),
        };
        sqlx::query(
            "INSERT INTO api_keys (id, name, secret_sha256, app_id, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.secret_sha256)
        .bind(app_id)
        .bind(to_db(key.created_at))
        .bind(key.revoked_at.map(to_db))
        .execute(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn find_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        sqlx::query("SELECT * FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_error)?
            .as_ref()
            .map(rows::api_key)
            .transpose()
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?;
        rows.iter().map(rows::api_key).collect()
    }

    #[instrument(skip_all, fields(api_key.id = %id))]
    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(to_db(at))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected() > 0)
    }
}

fn entry<'a>(
    per_bundle: &'a mut std::collections::BTreeMap<String, BundleCounts>,
    version: &str,
) -> &'a mut BundleCounts {
    per_bundle.entry(version.to_owned()).or_insert_with(|| BundleCounts {
        version_name: version.to_owned(),
        devices: 0,
        installs: 0,
        failures: 0,
    })
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

/// An app's Expo releases with their assets' MD5 keys.
async fn load_expo_releases(tx: &mut Transaction<'_, Any>, app_id: &AppId) -> StoreResult<Vec<ExpoRelease>> {
    let md5s: std::collections::HashMap<String, String> =
        sqlx::query_as("SELECT sha256, md5 FROM expo_assets WHERE app_id = $1")
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
    let mut assets_by_release: std::collections::HashMap<String, Vec<ExpoAsset>> = Default::default();
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

/// Device rows upserted by one statement, at most (16 parameters each, far below both databases' limits).
const DEVICE_ROWS_PER_STATEMENT: usize = 64;

/// The upsert of `n` device reports (`n` a power of two up to [`DEVICE_ROWS_PER_STATEMENT`]), built once per size: a
/// report older than the stored one changes nothing. SQLite gets `?` parameters: the SQLite driver looks each
/// `$N` parameter up by name, which made binding a 64-row statement cost more than executing it.
fn upsert_devices_sql(backend: Backend, n: usize) -> &'static str {
    static SQL: std::sync::LazyLock<[Vec<String>; 2]> = std::sync::LazyLock::new(|| {
        let sizes = || (0..=DEVICE_ROWS_PER_STATEMENT.ilog2()).map(|power| 1usize << power);
        [
            sizes().map(|n| build_upsert_devices_sql(false, n)).collect(),
            sizes().map(|n| build_upsert_devices_sql(true, n)).collect(),
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
        for column in 0..16 {
            if column > 0 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push_str(&format!("${}", row * 16 + column + 1));
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
