//! Directive bodies (protocol 1): `noUpdateAvailable` and `rollBackToEmbedded`.

use chrono::{DateTime, Utc};
use updraft_core::expo_time;

/// `{"type":"noUpdateAvailable"}`.
pub fn no_update_available() -> Vec<u8> {
    br#"{"type":"noUpdateAvailable"}"#.to_vec()
}

/// `{"type":"rollBackToEmbedded","parameters":{"commitTime":"…"}}`, with the commit time stored with the rollback
/// (the same value on every request, or devices would roll back again on every launch).
pub fn roll_back_to_embedded(commit_time: DateTime<Utc>) -> Vec<u8> {
    format!(r#"{{"type":"rollBackToEmbedded","parameters":{{"commitTime":"{}"}}}}"#, expo_time(commit_time))
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_bodies() {
        let rollback = roll_back_to_embedded(DateTime::from_timestamp_millis(1_000).unwrap());
        let value: serde_json::Value = serde_json::from_slice(&rollback).unwrap();
        assert_eq!(value["type"], "rollBackToEmbedded");
        assert_eq!(value["parameters"]["commitTime"], "1970-01-01T00:00:01.000Z");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&no_update_available()).unwrap()["type"],
            "noUpdateAvailable"
        );
    }
}
