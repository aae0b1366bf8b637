//! Fresh databases for store tests: a SQLite file in a temporary directory, or a new database on the PostgreSQL
//! server named by `UPDRAFT_TEST_DATABASE_URL`.
#![allow(dead_code)]

use updraft_store::SqlStore;

/// A migrated store on a new SQLite file (kept while the directory lives).
pub(crate) async fn sqlite() -> (SqlStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("updraft.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

/// The URL of a new, empty PostgreSQL database.
pub(crate) async fn postgres_url() -> String {
    let admin = std::env::var("UPDRAFT_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "UPDRAFT_TEST_DATABASE_URL is not set: run the tests with tests/run.sh, which starts a throwaway \
             PostgreSQL (tests/tools/pg-cluster.sh) and sets it"
        )
    });
    let name = format!("t_{}", uuid_like());
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap();
    sqlx::Executor::execute(&mut connection, format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    sqlx::Connection::close(connection).await.unwrap();
    let (base, _) = admin.rsplit_once('/').expect("UPDRAFT_TEST_DATABASE_URL ends with /<database>");
    format!("{base}/{name}")
}

/// A migrated store on a new PostgreSQL database.
pub(crate) async fn postgres() -> SqlStore {
    let store = SqlStore::connect(&postgres_url().await).await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}_{}_{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Owned reports as the store takes them (borrowed views).
pub(crate) fn views(reports: &[updraft_core::DeviceReport]) -> Vec<updraft_core::DeviceReportView<'_>> {
    reports.iter().map(updraft_core::DeviceReport::view).collect()
}
