//! The audit log: every management write (through the API, the CLI, which calls the API, or the console) appends one
//! record after its store transaction commits, naming the key that made it (never its secret), the app and channel,
//! the action, and the state before and after as JSON. Reading the log is for operators; devices never touch it.

use chrono::Utc;
use serde_json::Value;
use updraft_core::{AppId, AuditRecord, NewAuditRecord};

use crate::api_error::ApiError;
use crate::ops::AppState;

/// What one write changed.
pub(crate) struct Change<'a> {
    /// The app it changed (`None` for installation-wide changes).
    pub(crate) app_id: Option<&'a AppId>,
    /// The channel, when the change is about one.
    pub(crate) channel: Option<&'a str>,
    /// What was done, `noun.verb`.
    pub(crate) action: &'static str,
    /// The state before (`None`: it did not exist).
    pub(crate) before: Option<Value>,
    /// The state after (`None`: it is gone).
    pub(crate) after: Option<Value>,
}

/// Appends the record of a write the key named `key_name` made (`automatic` for the health rule).
pub(crate) async fn append(state: &AppState, key_name: &str, change: Change<'_>) -> Result<(), ApiError> {
    let record = NewAuditRecord {
        at: Utc::now(),
        key_name: key_name.to_owned(),
        app_id: change.app_id.cloned(),
        channel: change.channel.map(str::to_owned),
        action: change.action.to_owned(),
        before: change.before.map(|value| value.to_string()),
        after: change.after.map(|value| value.to_string()),
    };
    state.store.insert_audit(&record).await?;
    tracing::info!(
        audit.action = %record.action,
        api_key.name = %record.key_name,
        app.id = record.app_id.as_ref().map_or("", |app_id| app_id.as_str()),
        "audited {}",
        record.action
    );
    Ok(())
}

/// The newest `limit` records of one app, or of the whole installation.
pub(crate) async fn list(state: &AppState, app_id: Option<&AppId>, limit: u64) -> Result<Vec<AuditRecord>, ApiError> {
    Ok(state.store.list_audit(app_id, limit).await?)
}
