//! Stats: the events devices report to `statsUrl`, and what they mean for delivery (a version that failed on a
//! device must not be offered to it again) and for the per-bundle counts operators read.

use chrono::{DateTime, TimeDelta, Utc};

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
    /// When it happened, by the device's clock, kept within bounds of `received_at` (see [`event_time`]).
    pub occurred_at: DateTime<Utc>,
    /// The event's `metadata` (exit reasons, memory figures…), bounded by [`bound_metadata`].
    pub metadata: Vec<(String, String)>,
}

/// Strips the `:<file>` suffix that per-file (delta) download events carry: `1.0.1:assets/a.js` → `1.0.1`.
pub fn strip_file_suffix(version_name: &str) -> &str {
    version_name.split_once(':').map_or(version_name, |(version, _)| version)
}

/// How far before its receipt an event may have happened. The plugin keeps up to 200 unsent events on disk
/// across app kills, and holds them for up to 24 h when the server answers 429, so a week covers a device that
/// stayed offline for days.
pub const EVENT_TIME_PAST: TimeDelta = TimeDelta::days(7);

/// How far after its receipt an event may claim to have happened (a device clock running a little fast).
pub const EVENT_TIME_FUTURE: TimeDelta = TimeDelta::minutes(5);

/// When an event happened: the device's `timestamp` (epoch milliseconds) clamped to [`received_at` − 7 days,
/// `received_at` + 5 minutes], so that a device whose clock is years off cannot place events in history where
/// they never happened. Without a timestamp (plugins before 8.42.0 / x.50.1, Android's download worker) it is the
/// receive time.
pub fn event_time(device_millis: Option<i64>, received_at: DateTime<Utc>) -> DateTime<Utc> {
    let Some(claimed) = device_millis.and_then(DateTime::from_timestamp_millis) else { return received_at };
    claimed.clamp(received_at - EVENT_TIME_PAST, received_at + EVENT_TIME_FUTURE)
}

/// At most this many metadata entries are kept (as Capgo).
pub const METADATA_MAX_ENTRIES: usize = 30;
/// Keys are cut to this many characters (as Capgo).
pub const METADATA_MAX_KEY_CHARS: usize = 64;
/// Values are cut to this many characters (as Capgo).
pub const METADATA_MAX_VALUE_CHARS: usize = 2048;
/// Keys and values together take at most this many bytes; entries past it are dropped.
pub const METADATA_MAX_BYTES: usize = 4096;

/// Bounds an event's metadata: entries in the order sent, empty keys dropped, keys cut to 64 characters and values
/// to 2048, at most 30 entries, and entries dropped once keys and values together would pass 4 KiB. The event
/// itself is always kept: refusing it would make the device drop its whole batch.
pub fn bound_metadata(entries: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut bytes = 0usize;
    for (key, value) in entries {
        if kept.len() == METADATA_MAX_ENTRIES {
            break;
        }
        let key: String = key.chars().take(METADATA_MAX_KEY_CHARS).collect();
        if key.is_empty() || kept.iter().any(|(k, _)| *k == key) {
            continue;
        }
        let value: String = value.chars().take(METADATA_MAX_VALUE_CHARS).collect();
        if bytes + key.len() + value.len() > METADATA_MAX_BYTES {
            continue;
        }
        bytes += key.len() + value.len();
        kept.push((key, value));
    }
    kept
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

/// Whether the action says the device could not download, verify, unpack or decrypt the version it names. Such a
/// version would fail again on every launch: a refused bundle is deleted from the device, so the plugin's own
/// "already in error state" guard (which looks only at bundles on disk) does not stop the next download.
///
/// Left out are conditions of the device rather than of the bundle (`low_mem_fail`, `insufficient_disk_space`),
/// which may pass.
pub fn is_install_failure(action: &str) -> bool {
    matches!(
        action,
        "download_fail"
            | "finish_download_fail"
            | "checksum_fail"
            | "checksum_required"
            | "decrypt_fail"
            | "unzip_fail"
            | "windows_path_fail"
            | "canonical_path_fail"
            | "directory_path_fail"
            | "manifest_path_fail"
            | "download_manifest_file_fail"
            | "download_manifest_checksum_fail"
            | "download_manifest_brotli_fail"
            | "set_fail"
    )
}

/// The most failed versions kept per device: a device that failed more than this many bundles has the oldest
/// forgotten (offered again at worst, and refused again by the device).
pub const MAX_FAILED_VERSIONS_PER_DEVICE: u64 = 16;

/// The most failed-version rows kept per app, oldest aged out first. Every catalog load reads them all, and any
/// unauthenticated caller can report a failure for a made-up device id, so the count is bounded.
pub const MAX_FAILED_VERSIONS_PER_APP: u64 = 20_000;

/// The version an event says must not be offered to that device again, if any: a rollback (`update_fail`), or an
/// install failure ([`is_install_failure`]) of a version other than the one the device runs.
///
/// `running` is the bundle the device reported in its latest update check. Several failure reports name the
/// device's *current* bundle, not the one that failed: Android's `checksum_fail`, `unzip_fail` and the
/// `download_fail` after them (`CapgoUpdater.java` `finishDownload`, whose `finish_download_fail` names the failed
/// version), iOS's `unzip_fail`, and every `download_fail` a plugin sends when an update check itself is refused
/// or fails (`backgroundDownload`). Those must not block the version the device is happily running.
pub fn failed_version<'a>(event: &'a StatsEvent, running: Option<&str>) -> Option<&'a str> {
    let version = event.version_name.as_str();
    if version.is_empty() || version == "builtin" || version == "unknown" {
        return None;
    }
    if is_rollback(&event.action) {
        return Some(version);
    }
    (is_install_failure(&event.action) && running != Some(version)).then_some(version)
}

/// What an event says about the bundle a device runs, for counting devices per bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallChange<'a> {
    /// The device switched to this bundle (`set`).
    Installed(&'a str),
    /// The device left this bundle: it rolled back from it (`update_fail`).
    Left(&'a str),
    /// The device went back to its builtin bundle (`reset`).
    Reset,
}

/// How an event changes what the device runs, if it does.
pub fn install_change(event: &StatsEvent) -> Option<InstallChange<'_>> {
    let version = event.version_name.as_str();
    match event.action.as_str() {
        "set" if !version.is_empty() => Some(InstallChange::Installed(version)),
        "update_fail" if !version.is_empty() => Some(InstallChange::Left(version)),
        "reset" => Some(InstallChange::Reset),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, version: &str) -> StatsEvent {
        let now = Utc::now();
        StatsEvent {
            app_id: AppId::parse("com.example.app").unwrap(),
            device_id: DeviceId::parse("d").unwrap(),
            action: action.into(),
            version_name: version.into(),
            old_version_name: String::new(),
            platform: "android".into(),
            plugin_version: "8.51.14".into(),
            received_at: now,
            occurred_at: now,
            metadata: vec![],
        }
    }

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

    #[test]
    fn event_time_is_the_device_time_within_bounds() {
        let received = DateTime::from_timestamp_millis(1_755_600_000_000).unwrap();
        let at = |millis: Option<i64>| event_time(millis, received);
        assert_eq!(at(None), received);
        // A batch held back for a day keeps its time.
        let a_day_ago = received - TimeDelta::days(1);
        assert_eq!(at(Some(a_day_ago.timestamp_millis())), a_day_ago);
        // A clock years behind or ahead is held to the bounds.
        assert_eq!(at(Some(0)), received - EVENT_TIME_PAST);
        assert_eq!(at(Some(received.timestamp_millis() + 3 * 365 * 86_400_000)), received + EVENT_TIME_FUTURE);
        assert_eq!(at(Some(i64::MAX)), received, "not a time at all");
        assert_eq!(at(Some(-5)), received - EVENT_TIME_PAST);
    }

    #[test]
    fn metadata_is_bounded_never_refused() {
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            bound_metadata([pair("exit_reason", "crash"), pair("", "x"), pair("exit_reason", "dup")]),
            [pair("exit_reason", "crash")]
        );
        let long = bound_metadata([pair(&"k".repeat(100), &"v".repeat(5000))]);
        assert_eq!((long[0].0.len(), long[0].1.len()), (64, 2048));
        let many = bound_metadata((0..50).map(|n| pair(&format!("k{n}"), "v")));
        assert_eq!(many.len(), METADATA_MAX_ENTRIES);
        // Three values of 2000 bytes: the third would pass 4 KiB and is dropped, a small one after it still fits.
        let big = bound_metadata([
            pair("a", &"x".repeat(2000)),
            pair("b", &"x".repeat(2000)),
            pair("c", &"x".repeat(2000)),
            pair("d", "small"),
        ]);
        let keys: Vec<&str> = big.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "d"]);
        assert!(big.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() <= METADATA_MAX_BYTES);
    }

    #[test]
    fn failed_versions_are_not_offered_again() {
        // (action, version named, version the device runs) → version blocked for that device
        for (action, version, running, blocked) in [
            ("update_fail", "1.0.2", Some("1.0.2"), Some("1.0.2")),
            ("update_fail", "1.0.2", None, Some("1.0.2")),
            ("checksum_fail", "1.0.2", Some("1.0.1"), Some("1.0.2")),
            ("finish_download_fail", "1.0.2", Some("1.0.1"), Some("1.0.2")),
            ("download_fail", "1.0.2", Some("1.0.1"), Some("1.0.2")),
            ("decrypt_fail", "1.0.2", None, Some("1.0.2")),
            ("unzip_fail", "1.0.2", Some("1.0.0"), Some("1.0.2")),
            ("download_manifest_checksum_fail", "1.0.2", Some("1.0.1"), Some("1.0.2")),
            ("manifest_path_fail", "1.0.2", Some("1.0.1"), Some("1.0.2")),
            // Android names the running bundle in checksum_fail and download_fail; a refused check sends
            // download_fail for the running bundle too.
            ("checksum_fail", "1.0.1", Some("1.0.1"), None),
            ("download_fail", "1.0.1", Some("1.0.1"), None),
            ("download_fail", "builtin", None, None),
            ("download_fail", "", None, None),
            // Device conditions, not bundle faults.
            ("low_mem_fail", "1.0.2", Some("1.0.1"), None),
            ("insufficient_disk_space", "1.0.2", Some("1.0.1"), None),
            ("download_complete", "1.0.2", Some("1.0.1"), None),
            ("set", "1.0.2", Some("1.0.1"), None),
        ] {
            assert_eq!(failed_version(&event(action, version), running), blocked, "{action} {version} {running:?}");
        }
    }

    #[test]
    fn installs_follow_set_rollback_and_reset() {
        assert_eq!(install_change(&event("set", "1.0.2")), Some(InstallChange::Installed("1.0.2")));
        assert_eq!(install_change(&event("update_fail", "1.0.2")), Some(InstallChange::Left("1.0.2")));
        assert_eq!(install_change(&event("reset", "1.0.0")), Some(InstallChange::Reset));
        assert_eq!(install_change(&event("download_complete", "1.0.2")), None);
        assert_eq!(install_change(&event("set", "")), None);
    }
}
