//! `SqlStore`: the metadata store over `sqlx`'s `Any` driver, one implementation for both backends: SQLite (the
//! embedded default, one file in WAL mode) and PostgreSQL (shared by several gateway instances).
//!
//! Every statement is written once with `$N` parameters, which both databases accept. Types are limited to text,
//! 64-bit integers and booleans (times are RFC 3339 text), the set both backends store alike. On PostgreSQL every
//! write that changes what devices are served also sends a `NOTIFY` in its transaction (see [`crate::changes`]).
//!
//! # How the store is cut
//! This module owns the pool: connecting, migrating, write transactions, change announcements and error mapping.
//! The SQL lives in one module per concern, each a set of `pub(super) async fn`s taking the store:
//! - `apps.rs`: apps and their settings; `catalog.rs`: the whole view of one app the release index loads;
//! - `channels.rs`, `bundles.rs`, `devices.rs` (reports and overrides), `stats.rs`, `api_keys.rs`;
//! - `expo.rs` (Expo assets and releases), `signing_keys.rs`, `objects.rs` (what garbage collection must keep);
//! - `rollouts.rs`: each channel's current rollout, every change conditional on the state the caller saw;
//! - `device_rows.rs`: ageing and capping the rows devices create (devices, installs, release health, stats events).
//!
//! `metadata_store.rs` holds the one `impl MetadataStore for SqlStore`, which a Rust trait impl must be: a table of
//! contents with one line per method that counts the call ([`StoreCalls`]) and hands it to its concern module.
//! The trait stays whole in `updraft-core` (rather than split into concern traits under a supertrait) so callers
//! keep one `Arc<dyn MetadataStore>` and one import, and a new method is added in one place of the trait.

mod api_keys;
mod apps;
mod audit;
mod bundles;
mod calls;
mod catalog;
mod channels;
mod delta_sizes;
mod device_rows;
mod devices;
mod expo;
mod expo_patches;
mod metadata_store;
mod objects;
mod release_health;
mod rollouts;
mod signing_keys;
mod snapshot;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Executor, Transaction};
use updraft_core::{AppId, StoreError, StoreResult};

use crate::backend::Backend;

pub use calls::{StoreCalls, answering_a_check};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Settings every SQLite connection gets: WAL (readers never wait for the writer), foreign keys, and a generous
/// wait for the write lock instead of failing at once.
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";

/// The device writer's SQLite connection:
/// - caches up to 16 MB of pages (the default is 2 MB; 64 MB saved little CPU and added its size to the peak RSS of
///   a million devices checking in);
/// - keeps statement journals in memory: each multi-row upsert records the pages it changes so it can be undone
///   alone, and on disk those copies were half of all bytes the writer wrote;
/// - checkpoints the WAL when it reaches 64 MB instead of 4 MB: a page the next batches change again is then copied
///   into the database once, not after every batch. The pool's connections (management writes, stats batches) keep
///   the default, so a commit of theirs checkpoints whatever the WAL holds past 4 MB; readers are not slowed by a
///   longer WAL (its index is a hash table).
const SQLITE_DEVICE_WRITER_PRAGMAS: &str =
    "PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 16384;";

/// Metadata in SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// Where device reports are written: on SQLite one connection of its own with a larger page cache, so the
    /// write-behind batches find the devices table's pages cached instead of cycling through the pool's
    /// connections (each with a cold 2 MB cache); on PostgreSQL the same pool.
    devices: AnyPool,
    /// Shared by every clone, so the counts are the whole process's.
    calls: Arc<StoreCalls>,
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
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(|connection, _| {
                        Box::pin(async move { connection.execute(SQLITE_PRAGMAS).await.map(drop) })
                    })
                    .connect(&sqlite_url)
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
        Ok(Self { pool, backend, devices, calls: Arc::default() })
    }

    /// Which database this is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How many reads and writes this store (and every clone of it) has served.
    #[must_use]
    pub fn calls(&self) -> Arc<StoreCalls> {
        self.calls.clone()
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

    /// Starts the transaction that writes a batch of device reports, on the device writer's own connection.
    async fn device_transaction(&self) -> StoreResult<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => self.devices.begin_with("BEGIN IMMEDIATE").await.map_err(map_error),
            Backend::Postgres => self.devices.begin().await.map_err(map_error),
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

/// An empty argument list with room for `n` parameters. A multi-row upsert binds thousands, and a list that grows as
/// they are bound is copied into a larger buffer a dozen times a statement.
fn arguments_for<'q>(n: usize) -> sqlx::any::AnyArguments<'q> {
    let mut arguments = sqlx::any::AnyArguments::default();
    sqlx::Arguments::reserve(&mut arguments, n, 0);
    arguments
}

/// A count or size as the signed 64-bit integer both databases store, saturating (no real count gets there).
fn db_integer(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
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
