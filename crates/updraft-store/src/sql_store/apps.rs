//! Apps: creating one, listing their ids, and setting an app's own columns (encryption key, default channel).
//!
//! Loading everything an app holds is `catalog.rs`; its channels, bundles and releases have modules of their own.

use tracing::instrument;
use updraft_core::{App, AppId, StoreError, StoreResult};

use super::{SqlStore, map_error};
use crate::time::to_db;

#[instrument(skip_all, fields(app.id = %app.id))]
pub(super) async fn create_app(store: &SqlStore, app: &App) -> StoreResult<()> {
    let mut tx = store.write_transaction().await?;
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
    store.announce(&mut tx, &app.id).await?;
    tx.commit().await.map_err(map_error)
}

pub(super) async fn list_app_ids(store: &SqlStore) -> StoreResult<Vec<AppId>> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM apps ORDER BY id").fetch_all(&store.pool).await.map_err(map_error)?;
    ids.iter().map(|id| AppId::parse(id).map_err(|e| StoreError::Other(e.to_string()))).collect()
}

#[instrument(skip_all, fields(app.id = %app_id))]
pub(super) async fn set_app_public_key(store: &SqlStore, app_id: &AppId, public_key: Option<&str>) -> StoreResult<()> {
    update_app(store, "UPDATE apps SET public_key = $1 WHERE id = $2", app_id, public_key).await
}

pub(super) async fn set_app_default_channel(store: &SqlStore, app_id: &AppId, channel: &str) -> StoreResult<()> {
    update_app(store, "UPDATE apps SET default_channel = $1 WHERE id = $2", app_id, Some(channel)).await
}

/// Sets one column of an app (`sql` binds the value as `$1` and the app id as `$2`).
async fn update_app(store: &SqlStore, sql: &str, app_id: &AppId, value: Option<&str>) -> StoreResult<()> {
    let mut tx = store.write_transaction().await?;
    let done = sqlx::query(sql).bind(value).bind(app_id.as_str()).execute(&mut *tx).await.map_err(map_error)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("app {app_id}")));
    }
    store.announce(&mut tx, app_id).await?;
    tx.commit().await.map_err(map_error)
}
