//! Expo code-signing keys: an app's private keys, as PKCS#8 PEM, by key id.
//!
//! They live only here; the server loads them into its cache and never sends or logs them.

use chrono::Utc;
use updraft_core::{AppId, StoreResult};

use super::{SqlStore, map_error};
use crate::time::to_db;

pub(super) async fn put_signing_key(
    store: &SqlStore,
    app_id: &AppId,
    key_id: &str,
    private_key_pem: &str,
) -> StoreResult<()> {
    let mut tx = store.write_transaction().await?;
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
    store.announce(&mut tx, app_id).await?;
    tx.commit().await.map_err(map_error)
}

pub(super) async fn signing_keys(store: &SqlStore, app_id: &AppId) -> StoreResult<Vec<(String, String)>> {
    sqlx::query_as("SELECT key_id, private_key_pem FROM signing_keys WHERE app_id = $1 ORDER BY key_id")
        .bind(app_id.as_str())
        .fetch_all(&store.pool)
        .await
        .map_err(map_error)
}
