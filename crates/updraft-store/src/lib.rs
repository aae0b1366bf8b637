//! Updraft's metadata store: the [`updraft_core::MetadataStore`] trait implemented over `sqlx`.
//!
//! [`SqliteStore`] is the embedded default (one file under the data directory, WAL mode). SQL and row shapes stay in
//! this crate; callers only see domain types.
#![warn(missing_docs)]

mod rows;
mod sqlite;
mod time;

pub use sqlite::SqliteStore;
