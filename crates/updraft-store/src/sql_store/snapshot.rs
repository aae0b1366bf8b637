//! Read transactions that see one snapshot of the database: what the catalog load and the export read together.

use sqlx::{Any, Transaction};
use updraft_core::StoreResult;

use super::{SqlStore, map_error};
use crate::backend::Backend;

impl SqlStore {
    /// Starts a read transaction whose statements all see one snapshot of the database. SQLite's deferred read
    /// transaction does that by itself (in WAL mode, from its first read); PostgreSQL's default isolation, READ
    /// COMMITTED, takes a new snapshot for every statement, so a catalog read while a publish commits could see the
    /// publish's channel change and not its bundle's files, or an export hold rows that reference rows it lacks.
    pub(crate) async fn snapshot_transaction(&self) -> StoreResult<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => self.pool.begin().await.map_err(map_error),
            Backend::Postgres => {
                self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await.map_err(map_error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use updraft_core::{App, AppId, MetadataStore};

    use super::*;

    async fn create_app(store: &SqlStore, id: &str) {
        let app = App {
            id: AppId::parse(id).unwrap(),
            name: "x".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        };
        store.create_app(&app).await.unwrap();
    }

    async fn apps_seen(tx: &mut Transaction<'static, Any>) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM apps").fetch_one(&mut **tx).await.unwrap()
    }

    /// A write committed between two reads of one snapshot transaction is seen by neither.
    async fn a_snapshot_does_not_see_a_write_committed_after_its_first_read(store: &SqlStore) {
        create_app(store, "com.example.first").await;
        let mut tx = store.snapshot_transaction().await.unwrap();
        assert_eq!(apps_seen(&mut tx).await, 1);
        create_app(store, "com.example.second").await;
        assert_eq!(apps_seen(&mut tx).await, 1, "the second read sees the first read's snapshot");
        drop(tx);
        let mut tx = store.snapshot_transaction().await.unwrap();
        assert_eq!(apps_seen(&mut tx).await, 2, "a later snapshot sees the write");
    }

    #[tokio::test]
    async fn sqlite_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::connect(&format!("sqlite://{}", dir.path().join("updraft.db").display())).await.unwrap();
        store.migrate().await.unwrap();
        a_snapshot_does_not_see_a_write_committed_after_its_first_read(&store).await;
    }

    /// On the PostgreSQL server of `UPDRAFT_TEST_DATABASE_URL` (started by `tests/run.sh`), in a new database.
    #[tokio::test]
    async fn postgres_snapshot() {
        let admin = std::env::var("UPDRAFT_TEST_DATABASE_URL")
            .expect("UPDRAFT_TEST_DATABASE_URL is not set: run the tests with tests/run.sh, which starts PostgreSQL");
        let name = format!("t_snapshot_{}_{}", std::process::id(), Utc::now().timestamp_nanos_opt().unwrap_or(0));
        let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap();
        sqlx::Executor::execute(&mut connection, format!("CREATE DATABASE {name}").as_str()).await.unwrap();
        let (base, _) = admin.rsplit_once('/').expect("UPDRAFT_TEST_DATABASE_URL ends with /<database>");
        let store = SqlStore::connect(&format!("{base}/{name}")).await.unwrap();
        store.migrate().await.unwrap();
        a_snapshot_does_not_see_a_write_committed_after_its_first_read(&store).await;
    }
}
