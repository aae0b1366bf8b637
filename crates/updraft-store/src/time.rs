//! How times are written to and read from text columns: RFC 3339 UTC with milliseconds, which sorts as text.

use chrono::{DateTime, SecondsFormat, Utc};
use updraft_core::StoreError;

/// Formats a time for storage.
pub(crate) fn to_db(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a stored time.
pub(crate) fn from_db(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Other(format!("bad stored time {text:?}: {e}")))
}
