//! Updraft's metadata store: the [`updraft_core::MetadataStore`] trait implemented over `sqlx`.
//!
//! [`SqlStore`] serves both backends: SQLite, the embedded default (one file under the data directory, WAL mode),
//! and PostgreSQL, which several gateway instances share; [`ChangeListener`] tells an instance which apps another
//! instance changed. SQL and row shapes stay in this crate; callers only see domain types. [`StoreCalls`] counts the
//! reads and writes a store served (for `/metrics`).
#![warn(missing_docs)]

mod backend;
mod changes;
mod rows;
mod sql_store;
mod time;
mod transfer;

pub use backend::Backend;
pub use changes::{Change, ChangeListener};
pub use sql_store::{SqlStore, StoreCalls, answering_a_check};
pub use transfer::{Dump, TableCount};
