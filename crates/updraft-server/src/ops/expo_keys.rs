//! An app's Expo code-signing keys: store one (replacing a key id only when forced) and reload this instance's
//! keys at once, and list them. Generating and parsing keys is the handler's (RSA work, off the runtime threads).

use updraft_core::{AppId, FailureKind, SigningKeyRecord, StoreError};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::ops::AppState;
use crate::ops::audit::{self, Change};

/// Stores a signing key; returns whether it replaced one under the same id.
pub(crate) async fn store(
    state: &AppState,
    by: &Caller,
    app_id: &AppId,
    record: &SigningKeyRecord,
    force: bool,
) -> Result<bool, ApiError> {
    let replaced = match state.store.put_signing_key(app_id, record, force).await {
        Ok(replaced) => replaced,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::client(
                FailureKind::Conflict,
                "signing_key_exists",
                format!(
                    "app {app_id} already has signing key {:?}; every binary shipped with its certificate rejects updates signed by another key. To rotate, add a key under another id (`--key-id`, which new binaries name in codeSigningMetadata.keyid) and keep this one for the binaries in the field; to replace it anyway, pass --force (\"force\": true)",
                    record.key_id
                ),
            ));
        }
        Err(other) => return Err(other.into()),
    };
    // This instance signs with the new key from the next request on; other instances reload on the notification.
    // The key is stored: a reload that fails now is retried (`ops::catalogs::retry_stale`), not reported as a failed
    // store, which a retry without --force would then refuse as a key that exists.
    if let Err(error) = state.expo.reload_keys(state.store.as_ref(), app_id).await {
        tracing::warn!(app.id = %app_id, "the signing key is stored; loading it failed and is retried: {error}");
        state.index.mark_stale(app_id);
    }
    // The key id and whether a key was replaced; never the key.
    let after = Some(serde_json::json!({ "key_id": record.key_id, "replaced": replaced }));
    audit::append(
        state,
        by.key_name(),
        Change { app_id: Some(app_id), channel: None, action: "signing_key.store", before: None, after },
    )
    .await?;
    Ok(replaced)
}

/// Every stored signing key of an app.
pub(crate) async fn list(state: &AppState, app_id: &AppId) -> Result<Vec<SigningKeyRecord>, ApiError> {
    state.catalog(app_id)?;
    Ok(state.store.signing_keys(app_id).await?)
}
