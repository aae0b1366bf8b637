//! The audit log: one record per management write, saying when, which key (its name, never its secret), on which
//! app and channel, what was done, and what the thing looked like before and after (as JSON text, shaped by the
//! use case that made the change).

use chrono::{DateTime, Utc};

use crate::ids::AppId;

/// One management write, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Increasing id (the order records were written in).
    pub id: i64,
    /// When the write was made.
    pub at: DateTime<Utc>,
    /// The name of the API key that made it (`admin` for the bootstrap admin key).
    pub key_name: String,
    /// The app it changed (`None` for installation-wide changes, such as API keys).
    pub app_id: Option<AppId>,
    /// The channel it changed, when it was about one.
    pub channel: Option<String>,
    /// What was done, such as `channel.set` or `rollout.halt`.
    pub action: String,
    /// The state before, as JSON text (`None` when the thing did not exist).
    pub before: Option<String>,
    /// The state after, as JSON text (`None` when the thing is gone).
    pub after: Option<String>,
}

/// A record to append (the store gives it its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditRecord {
    /// When the write was made.
    pub at: DateTime<Utc>,
    /// The name of the API key that made it.
    pub key_name: String,
    /// The app it changed.
    pub app_id: Option<AppId>,
    /// The channel it changed.
    pub channel: Option<String>,
    /// What was done.
    pub action: String,
    /// The state before, as JSON text.
    pub before: Option<String>,
    /// The state after, as JSON text.
    pub after: Option<String>,
}
