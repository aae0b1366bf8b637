//! API keys: storing, finding, listing and revoking them. Only a key's SHA-256 is stored, never the secret; a
//! revoked key keeps its row for the audit trail.

use chrono::{DateTime, Utc};
use tracing::instrument;
use updraft_core::{ApiKeyRecord, ApiKeyScope, StoreResult};

use super::{SqlStore, map_error};
use crate::rows;
use crate::time::to_db;

#[instrument(skip_all, fields(api_key.id = %key.id, api_key.name = %key.name))]
pub(super) async fn insert_api_key(store: &SqlStore, key: &ApiKeyRecord) -> StoreResult<()> {
    let app_id = match &key.scope {
        ApiKeyScope::All => None,
        ApiKeyScope::App(app_id) => Some(app_id.as_str().to_owned()),
    };
    sqlx::query(
        "INSERT INTO api_keys (id, name, secret_sha256, app_id, created_at, revoked_at, role, channel)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&key.id)
    .bind(&key.name)
    .bind(&key.secret_sha256)
    .bind(app_id)
    .bind(to_db(key.created_at))
    .bind(key.revoked_at.map(to_db))
    .bind(key.role.as_str())
    .bind(key.channel.as_ref().map(|channel| channel.as_str().to_owned()))
    .execute(&store.pool)
    .await
    .map_err(map_error)?;
    Ok(())
}

pub(super) async fn find_api_key(store: &SqlStore, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
    sqlx::query("SELECT * FROM api_keys WHERE id = $1")
        .bind(id)
        .fetch_optional(&store.pool)
        .await
        .map_err(map_error)?
        .as_ref()
        .map(rows::api_key)
        .transpose()
}

pub(super) async fn list_api_keys(store: &SqlStore) -> StoreResult<Vec<ApiKeyRecord>> {
    let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
        .fetch_all(&store.pool)
        .await
        .map_err(map_error)?;
    rows.iter().map(rows::api_key).collect()
}

#[instrument(skip_all, fields(api_key.id = %id))]
pub(super) async fn revoke_api_key(store: &SqlStore, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(to_db(at))
        .bind(id)
        .execute(&store.pool)
        .await
        .map_err(map_error)?;
    Ok(done.rows_affected() > 0)
}
