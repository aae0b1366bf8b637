//! The body of `GET /audit`: the newest records of the audit log.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use updraft_core::AuditRecord;

/// One record: when, which key (its name), app, channel, action, and the state before and after.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AuditEntry {
    pub(crate) id: i64,
    pub(crate) at: String,
    pub(crate) key_name: String,
    pub(crate) app_id: Option<String>,
    pub(crate) channel: Option<String>,
    pub(crate) action: String,
    pub(crate) before: Value,
    pub(crate) after: Value,
}

impl AuditEntry {
    pub(crate) fn of(record: &AuditRecord) -> Self {
        let json = |text: &Option<String>| {
            text.as_deref().map_or(Value::Null, |text| serde_json::from_str(text).unwrap_or(Value::String(text.into())))
        };
        Self {
            id: record.id,
            at: record.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            key_name: record.key_name.clone(),
            app_id: record.app_id.as_ref().map(|app_id| app_id.as_str().to_owned()),
            channel: record.channel.clone(),
            action: record.action.clone(),
            before: json(&record.before),
            after: json(&record.after),
        }
    }
}

/// The answer to `GET /audit`, newest first.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AuditLog {
    pub(crate) records: Vec<AuditEntry>,
}
