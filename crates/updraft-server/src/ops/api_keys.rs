//! API keys: look one up (authentication), mint one (only its SHA-256 is stored), list and revoke. Who may do this
//! (an unscoped caller) is checked by the caller of these functions.

use chrono::Utc;
use updraft_core::{ApiKeyRecord, ApiKeyScope, FailureKind, Grant, codes};

use crate::api_error::ApiError;
use crate::api_keys;
use crate::auth::Caller;
use crate::contract::api_keys::ApiKeyView;
use crate::ops::AppState;
use crate::ops::audit::{self, Change};

/// The stored key with this public id.
pub(crate) async fn find(state: &AppState, id: &str) -> Result<Option<ApiKeyRecord>, ApiError> {
    Ok(state.store.find_api_key(id).await?)
}

/// Mints a key named `name` (unique among active keys): returns the key, to show once, and its record.
pub(crate) async fn create(
    state: &AppState,
    by: &Caller,
    name: &str,
    grant: &Grant,
) -> Result<(String, ApiKeyRecord), ApiError> {
    if let Some(app_id) = &grant.app {
        state.catalog(app_id)?;
    }
    let existing = state.store.list_api_keys().await?;
    if existing.iter().any(|key| key.is_active() && key.name == name) {
        return Err(ApiError::client(
            FailureKind::Conflict,
            codes::INVALID_REQUEST,
            format!("an active API key is already named {name:?}; pick another name or revoke that key first"),
        ));
    }
    let (key, record) = api_keys::mint(name, grant);
    state.store.insert_api_key(&record).await?;
    tracing::info!(api_key.id = %record.id, api_key.name = %record.name, "created API key");
    audit::append(state, by.key_name(), key_change(&record, "apikey.create", None, Some(view(&record)))).await?;
    Ok((key, record))
}

/// Every key, revoked ones included.
pub(crate) async fn list(state: &AppState) -> Result<Vec<ApiKeyRecord>, ApiError> {
    Ok(state.store.list_api_keys().await?)
}

/// Which active key to revoke.
pub(crate) enum KeyRef {
    /// By its public id.
    Id(String),
    /// By its name.
    Name(String),
}

/// Revokes the one active key `key` names; returns it as revoked.
pub(crate) async fn revoke(state: &AppState, by: &Caller, key: &KeyRef) -> Result<ApiKeyRecord, ApiError> {
    let active: Vec<ApiKeyRecord> = state.store.list_api_keys().await?.into_iter().filter(|k| k.is_active()).collect();
    let matching: Vec<&ApiKeyRecord> = match key {
        KeyRef::Id(id) => active.iter().filter(|k| &k.id == id).collect(),
        KeyRef::Name(name) => active.iter().filter(|k| &k.name == name).collect(),
    };
    let record = match matching.as_slice() {
        [one] => *one,
        [] => {
            let what = match key {
                KeyRef::Id(id) => format!("with id {id}"),
                KeyRef::Name(name) => format!("named {name:?}"),
            };
            return Err(ApiError::not_found(
                codes::NOT_FOUND,
                format!("no active API key {what}; `updraft apikey list` shows the keys"),
            ));
        }
        several => {
            let ids: Vec<&str> = several.iter().map(|k| k.id.as_str()).collect();
            return Err(ApiError::client(
                FailureKind::Conflict,
                codes::INVALID_REQUEST,
                format!("several active keys share that name (ids {}); revoke one by `id`", ids.join(", ")),
            ));
        }
    };
    let revoked_at = Utc::now();
    if !state.store.revoke_api_key(&record.id, revoked_at).await? {
        return Err(ApiError::not_found(codes::NOT_FOUND, "the key was revoked meanwhile"));
    }
    tracing::info!(api_key.id = %record.id, api_key.name = %record.name, "revoked API key");
    let revoked = ApiKeyRecord { revoked_at: Some(revoked_at), ..record.clone() };
    audit::append(
        state,
        by.key_name(),
        key_change(&revoked, "apikey.revoke", Some(view(record)), Some(view(&revoked))),
    )
    .await?;
    Ok(revoked)
}

fn view(record: &ApiKeyRecord) -> serde_json::Value {
    serde_json::to_value(ApiKeyView::of(record)).unwrap_or_default()
}

/// A key change is recorded under the key's app, when it has one, so that app's log shows who got access to it.
fn key_change<'a>(
    record: &'a ApiKeyRecord,
    action: &'static str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Change<'a> {
    let app_id = match &record.scope {
        ApiKeyScope::All => None,
        ApiKeyScope::App(app_id) => Some(app_id),
    };
    Change { app_id, channel: record.channel.as_ref().map(|c| c.as_str()), action, before, after }
}
