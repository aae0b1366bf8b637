//! `updraft export` / `updraft import`: an installation's whole metadata as JSON Lines, the same for SQLite and
//! PostgreSQL, so a team can move from one to the other.
//!
//! The file is a header line, one line per row (`{"t":"apps","r":[...]}`, values in the table's column order), and
//! a trailer line with the row count of every table. Import refuses a non-empty database, inserts everything in one
//! transaction (ids kept, so references stay intact), checks the trailer against what it read and against a fresh
//! count of the database, and only then commits.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;
use updraft_core::{StoreError, StoreResult};

use crate::backend::Backend;
use crate::sql_store::{SqlStore, map_error};

/// The `format` of the header line.
const FORMAT: &str = "updraft-metadata";
/// The version of the format this build writes and reads.
const VERSION: u32 = 1;

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Flag,
}

struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// Ordering for a stable file.
    order_by: &'static str,
    /// Serial id column, whose sequence PostgreSQL must move past the imported ids.
    serial: Option<&'static str>,
}

use Kind::{Flag, Int, Text};

/// Every table, parents before children.
const TABLES: &[Table] = &[
    Table {
        name: "apps",
        columns: &[("id", Text), ("name", Text), ("created_at", Text), ("public_key", Text), ("default_channel", Text)],
        order_by: "id",
        serial: None,
    },
    Table {
        name: "bundles",
        columns: &[
            ("id", Int),
            ("app_id", Text),
            ("version", Text),
            ("checksum", Text),
            ("crc32", Text),
            ("session_key", Text),
            ("key_id", Text),
            ("min_update_version", Text),
            ("object_key", Text),
            ("size_bytes", Int),
            ("sha256", Text),
            ("external_url", Text),
            ("created_at", Text),
            ("updated_at", Text),
            ("deleted", Int),
            ("link", Text),
            ("comment", Text),
        ],
        order_by: "id",
        serial: Some("id"),
    },
    Table {
        name: "bundle_files",
        columns: &[
            ("bundle_id", Int),
            ("file_name", Text),
            ("file_hash", Text),
            ("object_key", Text),
            ("size_bytes", Int),
            ("br_size_bytes", Int),
        ],
        order_by: "bundle_id, file_name",
        serial: None,
    },
    Table {
        name: "channels",
        columns: &[
            ("id", Int),
            ("app_id", Text),
            ("name", Text),
            ("bundle_id", Int),
            ("public", Flag),
            ("disable_auto_update", Text),
            ("disable_auto_update_under_native", Flag),
            ("ios", Flag),
            ("android", Flag),
            ("electron", Flag),
            ("allow_device_self_set", Flag),
            ("allow_emulator", Flag),
            ("allow_device", Flag),
            ("allow_dev", Flag),
            ("allow_prod", Flag),
            ("created_at", Text),
            ("updated_at", Text),
        ],
        order_by: "id",
        serial: Some("id"),
    },
    Table {
        name: "device_overrides",
        columns: &[
            ("app_id", Text),
            ("device_id", Text),
            ("channel_id", Int),
            ("bundle_id", Int),
            ("updated_at", Text),
            ("pin_builtin", Flag),
        ],
        order_by: "app_id, device_id",
        serial: None,
    },
    Table {
        name: "devices",
        columns: &[
            ("app_id", Text),
            ("device_id", Text),
            ("platform", Text),
            ("version_name", Text),
            ("version_build", Text),
            ("version_code", Text),
            ("version_os", Text),
            ("plugin_version", Text),
            ("custom_id", Text),
            ("is_prod", Flag),
            ("is_emulator", Flag),
            ("install_source", Text),
            ("default_channel", Text),
            ("key_id", Text),
            ("created_at", Text),
            ("updated_at", Text),
        ],
        order_by: "app_id, device_id",
        serial: None,
    },
    Table {
        name: "api_keys",
        columns: &[
            ("id", Text),
            ("name", Text),
            ("secret_sha256", Text),
            ("app_id", Text),
            ("created_at", Text),
            ("revoked_at", Text),
            ("role", Text),
            ("channel", Text),
        ],
        order_by: "id",
        serial: None,
    },
    Table {
        name: "stats_events",
        columns: &[
            ("id", Int),
            ("app_id", Text),
            ("device_id", Text),
            ("action", Text),
            ("version_name", Text),
            ("old_version_name", Text),
            ("platform", Text),
            ("plugin_version", Text),
            ("received_at", Text),
            ("occurred_at", Text),
            ("metadata", Text),
        ],
        order_by: "id",
        serial: Some("id"),
    },
    Table {
        name: "device_failed_versions",
        columns: &[("app_id", Text), ("device_id", Text), ("version_name", Text), ("failed_at", Text)],
        order_by: "app_id, device_id, version_name",
        serial: None,
    },
    Table {
        name: "device_installs",
        columns: &[("app_id", Text), ("device_id", Text), ("version_name", Text), ("installed_at", Text)],
        order_by: "app_id, device_id",
        serial: None,
    },
    Table {
        name: "expo_assets",
        columns: &[("app_id", Text), ("sha256", Text), ("md5", Text), ("size_bytes", Int), ("created_at", Text)],
        order_by: "app_id, sha256",
        serial: None,
    },
    Table {
        name: "expo_releases",
        columns: &[
            ("id", Text),
            ("group_id", Text),
            ("app_id", Text),
            ("channel", Text),
            ("runtime_version", Text),
            ("platform", Text),
            ("created_at", Text),
            ("message", Text),
            ("kind", Text),
            ("launch_sha256", Text),
            ("launch_ext", Text),
            ("expo_client", Text),
        ],
        order_by: "created_at, id",
        serial: None,
    },
    Table {
        name: "expo_release_assets",
        columns: &[("release_id", Text), ("position", Int), ("sha256", Text), ("ext", Text)],
        order_by: "release_id, position",
        serial: None,
    },
    Table {
        name: "expo_patches",
        columns: &[
            ("app_id", Text),
            ("base_sha256", Text),
            ("target_sha256", Text),
            ("patch_sha256", Text),
            ("patch_size", Int),
            ("created_at", Text),
        ],
        order_by: "app_id, base_sha256, target_sha256",
        serial: None,
    },
    Table {
        name: "signing_keys",
        columns: &[
            ("app_id", Text),
            ("key_id", Text),
            ("private_key_pem", Text),
            ("created_at", Text),
            ("certificate_pem", Text),
        ],
        order_by: "app_id, key_id",
        serial: None,
    },
    Table {
        name: "audit_log",
        columns: &[
            ("id", Int),
            ("at", Text),
            ("key_name", Text),
            ("app_id", Text),
            ("channel", Text),
            ("action", Text),
            ("before_json", Text),
            ("after_json", Text),
        ],
        order_by: "id",
        serial: Some("id"),
    },
    Table {
        name: "rollouts",
        columns: &[
            ("id", Text),
            ("app_id", Text),
            ("channel", Text),
            ("state", Text),
            ("percent_bps", Int),
            ("candidate_kind", Text),
            ("candidate", Text),
            ("stable_kind", Text),
            ("stable", Text),
            ("covers", Text),
            ("max_failure_rate", Text),
            ("min_devices", Int),
            ("started_at", Text),
            ("health_since", Text),
            ("completed_at", Text),
            ("halted_at", Text),
            ("halted_by", Text),
            ("halt_automatic", Flag),
            ("halt_reason", Text),
            ("halt_devices", Int),
            ("halt_failures", Int),
            ("changed_action", Text),
            ("changed_by", Text),
            ("changed_at", Text),
            ("change_reason", Text),
        ],
        order_by: "app_id, channel",
        serial: None,
    },
    // Release health and halt records (issue #14, part B).
    Table {
        name: "release_devices",
        columns: &[
            ("app_id", Text),
            ("release_id", Text),
            ("device_id", Text),
            ("protocol", Text),
            ("group_id", Text),
            ("channel", Text),
            ("offered_at", Text),
            ("running_at", Text),
            ("failed_at", Text),
            ("failure", Text),
            ("seen_at", Text),
        ],
        order_by: "app_id, release_id, device_id",
        serial: None,
    },
    Table {
        name: "rollout_halts",
        columns: &[
            ("id", Int),
            ("app_id", Text),
            ("channel", Text),
            ("rollout_id", Text),
            ("candidate", Text),
            ("halted_at", Text),
            ("halted_by", Text),
            ("instance", Text),
            ("reason", Text),
            ("devices", Int),
            ("failures", Int),
            ("failure_rate_ppm", Int),
            ("lower_bound_ppm", Int),
            ("max_failure_rate_ppm", Int),
            ("min_devices", Int),
        ],
        order_by: "id",
        serial: Some("id"),
    },
];

/// Rows of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCount {
    /// Table name.
    pub table: String,
    /// Rows.
    pub rows: u64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    source: String,
    tables: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct RowLine {
    t: String,
    r: Vec<Value>,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    counts: Vec<TableCount>,
}

/// What an export wrote or an import loaded and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// Rows per table, in file order.
    pub counts: Vec<TableCount>,
}

fn io_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("writing or reading the export file: {error}"))
}

fn bad_file(line: usize, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("export file line {line}: {detail}"))
}

fn value_of(row: &AnyRow, column: &str, kind: Kind) -> StoreResult<Value> {
    let read = |e: sqlx::Error| StoreError::Other(format!("reading column {column}: {e}"));
    Ok(match kind {
        Kind::Text => row.try_get::<Option<String>, _>(column).map_err(read)?.map_or(Value::Null, Value::String),
        Kind::Int => row.try_get::<Option<i64>, _>(column).map_err(read)?.map_or(Value::Null, Value::from),
        Kind::Flag => Value::Bool(crate::rows::flag(row, column)?),
    })
}

impl SqlStore {
    /// Writes every table to `out` as JSON Lines and returns the row counts written.
    ///
    /// # Errors
    /// [`StoreError`] when the database cannot be read or `out` cannot be written.
    pub async fn export(&self, out: &mut dyn Write) -> StoreResult<Dump> {
        let header = Header {
            format: FORMAT.into(),
            version: VERSION,
            source: self.backend().name().into(),
            tables: TABLES.iter().map(|t| t.name.to_owned()).collect(),
        };
        writeln!(out, "{}", serde_json::to_string(&header).map_err(io_error)?).map_err(io_error)?;
        // One read transaction: a consistent snapshot even while the gateway keeps writing.
        let mut tx = self.snapshot_transaction().await?;
        self.check_schema(&mut tx).await?;
        let mut counts = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            let columns: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
            let sql = format!("SELECT {} FROM {} ORDER BY {}", columns.join(", "), table.name, table.order_by);
            let mut rows = sqlx::query(&sql).fetch(&mut *tx);
            let mut n = 0u64;
            while let Some(row) = rows.try_next().await.map_err(map_error)? {
                let values = table
                    .columns
                    .iter()
                    .map(|(name, kind)| value_of(&row, name, *kind))
                    .collect::<StoreResult<Vec<_>>>()?;
                let line = RowLine { t: table.name.to_owned(), r: values };
                writeln!(out, "{}", serde_json::to_string(&line).map_err(io_error)?).map_err(io_error)?;
                n += 1;
            }
            counts.push(TableCount { table: table.name.to_owned(), rows: n });
        }
        drop(tx);
        writeln!(out, "{}", serde_json::to_string(&Trailer { counts: counts.clone() }).map_err(io_error)?)
            .map_err(io_error)?;
        out.flush().map_err(io_error)?;
        Ok(Dump { counts })
    }

    /// Loads an export into this (migrated, empty) database, verifying every table's row count before committing.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the database already holds metadata; [`StoreError::Other`] for a damaged or
    /// truncated file or counts that do not match (nothing is written then).
    pub async fn import(&self, input: &mut dyn BufRead) -> StoreResult<Dump> {
        let existing = self.counts().await?;
        if let Some(busy) = existing.iter().find(|c| c.rows > 0) {
            return Err(StoreError::Conflict(format!(
                "the target database is not empty ({} rows in {}); import only into a new database",
                busy.rows, busy.table
            )));
        }
        let mut lines = input.lines().enumerate().map(|(i, line)| (i + 1, line));
        let (_, first) = lines.next().ok_or_else(|| bad_file(1, "the file is empty"))?;
        let header: Header = serde_json::from_str(&first.map_err(io_error)?)
            .map_err(|e| bad_file(1, format!("not an updraft export header ({e})")))?;
        if header.format != FORMAT || header.version != VERSION {
            return Err(bad_file(
                1,
                format!("format {} version {} is not {FORMAT} version {VERSION}", header.format, header.version),
            ));
        }
        let mut tx = self.pool().begin().await.map_err(map_error)?;
        self.check_schema(&mut tx).await?;
        let mut read: BTreeMap<String, u64> = BTreeMap::new();
        let mut trailer = None;
        let mut statements: BTreeMap<&str, String> = BTreeMap::new();
        for (number, line) in lines {
            let line = line.map_err(io_error)?;
            if trailer.is_some() {
                return Err(bad_file(number, "data after the trailer"));
            }
            if line.starts_with("{\"counts\"") {
                trailer = Some(serde_json::from_str::<Trailer>(&line).map_err(|e| bad_file(number, e))?);
                continue;
            }
            let row: RowLine = serde_json::from_str(&line).map_err(|e| bad_file(number, e))?;
            let table = TABLES
                .iter()
                .find(|t| t.name == row.t)
                .ok_or_else(|| bad_file(number, format!("unknown table {:?}", row.t)))?;
            if row.r.len() != table.columns.len() {
                return Err(bad_file(number, format!("{} values for {} columns", row.r.len(), table.columns.len())));
            }
            let sql = statements.entry(table.name).or_insert_with(|| insert_statement(table));
            let mut query = sqlx::query(sql.as_str());
            for ((column, kind), value) in table.columns.iter().zip(row.r) {
                query = bind(query, *kind, value).map_err(|detail| bad_file(number, format!("{column}: {detail}")))?;
            }
            query.execute(&mut *tx).await.map_err(|e| match map_error(e) {
                StoreError::Other(detail) => bad_file(number, detail),
                other => other,
            })?;
            *read.entry(row.t).or_default() += 1;
        }
        let trailer = trailer.ok_or_else(|| StoreError::Other("the export file is truncated (no trailer)".into()))?;
        for expected in &trailer.counts {
            let got = read.get(&expected.table).copied().unwrap_or(0);
            if got != expected.rows {
                return Err(StoreError::Other(format!(
                    "the export file is damaged: {} holds {got} rows of {}, its trailer says {}",
                    expected.table, expected.table, expected.rows
                )));
            }
        }
        if self.backend() == Backend::Postgres {
            for table in TABLES {
                if let Some(column) = table.serial {
                    let sql = format!(
                        "SELECT setval(pg_get_serial_sequence('{0}', '{column}'), COALESCE(MAX({column}), 0) + 1, false) FROM {0}",
                        table.name
                    );
                    sqlx::query(&sql).execute(&mut *tx).await.map_err(map_error)?;
                }
            }
        }
        let counts = counts_in(&mut tx).await?;
        for count in &counts {
            let expected = trailer.counts.iter().find(|c| c.table == count.table).map_or(0, |c| c.rows);
            if count.rows != expected {
                return Err(StoreError::Other(format!(
                    "import check failed: {} has {} rows after loading, the file has {expected}",
                    count.table, count.rows
                )));
            }
        }
        tx.commit().await.map_err(map_error)?;
        Ok(Dump { counts })
    }

    /// Checks that the database has exactly the tables and columns this build moves, so a column added by a later
    /// migration can never be silently left out of an export.
    async fn check_schema(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> StoreResult<()> {
        let (tables_sql, columns_sql) = match self.backend() {
            Backend::Sqlite => (
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
                   AND name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
                "SELECT name FROM pragma_table_info($1)",
            ),
            Backend::Postgres => (
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1",
            ),
        };
        let mismatch = |what: String| {
            StoreError::Other(format!(
                "{what}: this database was made by another version of updraft; export and import with the version \
                 that matches its migrations (`updraft migrate` first)"
            ))
        };
        let tables: BTreeSet<String> =
            sqlx::query_scalar(tables_sql).fetch_all(&mut **tx).await.map_err(map_error)?.into_iter().collect();
        let known: BTreeSet<String> = TABLES.iter().map(|t| t.name.to_owned()).collect();
        if tables != known {
            return Err(mismatch(format!("the database has tables {tables:?}, this build moves {known:?}")));
        }
        for table in TABLES {
            let columns: BTreeSet<String> = sqlx::query_scalar(columns_sql)
                .bind(table.name)
                .fetch_all(&mut **tx)
                .await
                .map_err(map_error)?
                .into_iter()
                .collect();
            let known: BTreeSet<String> = table.columns.iter().map(|(name, _)| (*name).to_owned()).collect();
            if columns != known {
                return Err(mismatch(format!(
                    "table {} has columns {columns:?}, this build moves {known:?}",
                    table.name
                )));
            }
        }
        Ok(())
    }

    /// Rows per table.
    ///
    /// # Errors
    /// [`StoreError`] when the database cannot be read.
    pub async fn counts(&self) -> StoreResult<Vec<TableCount>> {
        let mut tx = self.snapshot_transaction().await?;
        let counts = counts_in(&mut tx).await?;
        drop(tx);
        Ok(counts)
    }
}

async fn counts_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> StoreResult<Vec<TableCount>> {
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", table.name))
            .fetch_one(&mut **tx)
            .await
            .map_err(map_error)?;
        counts.push(TableCount { table: table.name.to_owned(), rows: u64::try_from(n).unwrap_or(0) });
    }
    Ok(counts)
}

fn insert_statement(table: &Table) -> String {
    let columns: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let parameters: Vec<String> = (1..=columns.len()).map(|n| format!("${n}")).collect();
    format!("INSERT INTO {} ({}) VALUES ({})", table.name, columns.join(", "), parameters.join(", "))
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind(query: AnyQuery<'_>, kind: Kind, value: Value) -> Result<AnyQuery<'_>, String> {
    Ok(match (kind, value) {
        (Kind::Text, Value::Null) => query.bind(None::<String>),
        (Kind::Int, Value::Null) => query.bind(None::<i64>),
        (Kind::Text, Value::String(text)) => query.bind(text),
        (Kind::Int, Value::Number(n)) => query.bind(n.as_i64().ok_or_else(|| format!("{n} is not a 64-bit integer"))?),
        (Kind::Flag, Value::Bool(flag)) => query.bind(flag),
        (_, other) => return Err(format!("unexpected value {other}")),
    })
}
