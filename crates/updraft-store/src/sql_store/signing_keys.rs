//! Expo code-signing keys: an app's private keys (PKCS#8 PEM) and the certificates generated with them, by key id.
//!
//! They live only here; the server loads them into its cache and never logs them. Replacing a key is explicit,
//! because shipped binaries hold its certificate.

use tracing::instrument;
use updraft_core::{AppId, SigningKeyRecord, StoreError, StoreResult};

use super::{SqlStore, map_error};
use crate::rows;
use crate::time::to_db;

#[instrument(skip_all, fields(app.id = %app_id, key.id = %key.key_id, replace))]
pub(super) async fn put_signing_key(
    store: &SqlStore,
    app_id: &AppId,
    key: &SigningKeyRecord,
    replace: bool,
) -> StoreResult<bool> {
    let mut tx = store.write_transaction().await?;
    let existing = sqlx::query("SELECT key_id FROM signing_keys WHERE app_id = $1 AND key_id = $2")
        .bind(app_id.as_str())
        .bind(&key.key_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_error)?
        .is_some();
    if existing && !replace {
        return Err(StoreError::Conflict(format!("signing key {:?} of app {app_id}", key.key_id)));
    }
    // A concurrent insert of the same id (another instance) hits the primary key: a conflict, never a silent
    // overwrite, unless replacing was asked for.
    let conflict = if replace {
        "ON CONFLICT (app_id, key_id) DO UPDATE SET private_key_pem = excluded.private_key_pem,
            certificate_pem = excluded.certificate_pem, created_at = excluded.created_at"
    } else {
        ""
    };
    sqlx::query(&format!(
        "INSERT INTO signing_keys (app_id, key_id, private_key_pem, certificate_pem, created_at)
         VALUES ($1, $2, $3, $4, $5) {conflict}"
    ))
    .bind(app_id.as_str())
    .bind(&key.key_id)
    .bind(&key.private_key_pem)
    .bind(key.certificate_pem.as_deref())
    .bind(to_db(key.created_at))
    .execute(&mut *tx)
    .await
    .map_err(map_error)?;
    // Other instances reload the app's keys on this notification, so none keeps signing with the old key.
    store.announce(&mut tx, app_id).await?;
    tx.commit().await.map_err(map_error)?;
    Ok(existing)
}

pub(super) async fn signing_keys(store: &SqlStore, app_id: &AppId) -> StoreResult<Vec<SigningKeyRecord>> {
    let rows = sqlx::query("SELECT * FROM signing_keys WHERE app_id = $1 ORDER BY key_id")
        .bind(app_id.as_str())
        .fetch_all(&store.pool)
        .await
        .map_err(map_error)?;
    rows.iter().map(rows::signing_key).collect()
}
