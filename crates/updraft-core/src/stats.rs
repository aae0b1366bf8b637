//! Stats: the events devices report to `statsUrl`, and what they mean for delivery (a rolled-back version must not
//! be offered again) and for the per-bundle counts operators read.

use chrono::{DateTime, Utc};

use crate::ids::{AppId, DeviceId};

/// One event a device reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsEvent {
    /// App.
    pub app_id: AppId,
    /// Device.
    pub device_id: DeviceId,
    /// The action as sent (unknown actions are kept as they are).
    pub action: String,
    /// The bundle concerned, without any `:<file>` suffix.
    pub version_name: String,
    /// The previous bundle, when the action moves between bundles.
    pub old_version_name: String,
    /// Platform as sent.
    pub platform: String,
    /// Plugin version as sent.
    pub plugin_version: String,
    /// When the gateway received it.
    pub received_at: DateTime<Utc>,
}

/// Strips the `:<file>` suffix that per-file (delta) download events carry: `1.0.1:assets/a.js` → `1.0.1`.
pub fn strip_file_suffix(version_name: &str) -> &str {
    version_name.split_once(':').map_or(version_name, |(version, _)| version)
}

/// What an action says about the bundle it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// The bundle was installed (`set`).
    Install,
    /// The bundle failed on the device: `update_fail` (rolled back) and every other `*_fail` action.
    Failure,
    /// Anything else (progress, lifecycle, health, unknown actions).
    Other,
}

/// Classifies an action, as Capgo does: `set` is an install, `*_fail` a failure of that version.
pub fn action_kind(action: &str) -> ActionKind {
    match action {
        "set" => ActionKind::Install,
        "checksum_required" | "insufficient_disk_space" | "low_mem_fail" => ActionKind::Failure,
        other if other.ends_with("_fail") => ActionKind::Failure,
        _ => ActionKind::Other,
    }
}

/// Whether the device rolled back from the version: it downloaded and applied it, but the new code never called
/// `notifyAppReady()`. Offering that version again would loop download → rollback.
pub fn is_rollback(action: &str) -> bool {
    action == "update_fail"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_suffix_is_stripped() {
        assert_eq!(strip_file_suffix("1.0.1:assets/index.js"), "1.0.1");
        assert_eq!(strip_file_suffix("1.0.1"), "1.0.1");
        assert_eq!(strip_file_suffix(""), "");
    }

    #[test]
    fn actions_are_classified() {
        for (action, kind) in [
            ("set", ActionKind::Install),
            ("update_fail", ActionKind::Failure),
            ("download_fail", ActionKind::Failure),
            ("checksum_fail", ActionKind::Failure),
            ("download_manifest_file_fail", ActionKind::Failure),
            ("checksum_required", ActionKind::Failure),
            ("download_50", ActionKind::Other),
            ("app_moved_to_foreground", ActionKind::Other),
            ("some_future_action", ActionKind::Other),
        ] {
            assert_eq!(action_kind(action), kind, "{action}");
        }
        assert!(is_rollback("update_fail"));
        assert!(!is_rollback("download_fail"));
    }
}
