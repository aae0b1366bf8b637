//! The audit log: appending a record and reading the newest ones. Records are only ever appended.

use tracing::instrument;
use updraft_core::{AppId, AuditRecord, NewAuditRecord, StoreResult};

use super::{SqlStore, map_error};
use crate::rows;
use crate::time::to_db;

#[instrument(skip_all, fields(audit.action = %record.action, api_key.name = %record.key_name))]
pub(super) async fn insert_audit(store: &SqlStore, record: &NewAuditRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, key_name, app_id, channel, action, before_json, after_json)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(to_db(record.at))
    .bind(&record.key_name)
    .bind(record.app_id.as_ref().map(|app_id| app_id.as_str().to_owned()))
    .bind(&record.channel)
    .bind(&record.action)
    .bind(&record.before)
    .bind(&record.after)
    .execute(&store.pool)
    .await
    .map_err(map_error)?;
    Ok(())
}

pub(super) async fn list_audit(store: &SqlStore, app_id: Option<&AppId>, limit: u64) -> StoreResult<Vec<AuditRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = match app_id {
        Some(app_id) => {
            sqlx::query("SELECT * FROM audit_log WHERE app_id = $1 ORDER BY id DESC LIMIT $2")
                .bind(app_id.as_str().to_owned())
                .bind(limit)
                .fetch_all(&store.pool)
                .await
        }
        None => {
            sqlx::query("SELECT * FROM audit_log ORDER BY id DESC LIMIT $1").bind(limit).fetch_all(&store.pool).await
        }
    }
    .map_err(map_error)?;
    rows.iter().map(rows::audit).collect()
}
