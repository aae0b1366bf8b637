//! Rows any device can create without a key (it only has to invent a device id), and how many of them an app keeps.
//!
//! The gateway ages these rows out (a row not seen for the retention is deleted) and caps them per app (past the
//! cap the least recently seen rows go first), in a background task that deletes in bounded batches
//! (`updraft-server`'s `device_ageing`). Failed versions and device-made channel overrides have caps of their own
//! (`MAX_FAILED_VERSIONS_PER_APP`, `MAX_DEVICE_OVERRIDES_PER_APP`) and are not listed here.

use chrono::{DateTime, SubsecRound, Utc};

/// How fresh a last-seen time is kept: a device that checks in again saying nothing new is written again only once
/// this long has passed since it was last written (its device row), and a release-health row whose only change would
/// be its last-seen time is not rewritten within it. A device's last-seen time is therefore at most this old while
/// it keeps checking in, and the database's write load follows what devices change, not how often they launch or
/// resume (the Capgo plugin checks on every resume). What a row records (first offer, last run, first failure, its
/// channel) is always written at once.
pub const LAST_SEEN_RESOLUTION: std::time::Duration = std::time::Duration::from_secs(300);

/// The time a device's check is recorded at: the end of the current second (now, rounded up to the whole second).
/// Device rows and release-health rows are indexed by their last-seen time, and the write-behind writer writes a
/// second's checks in one batch in device order: with the times in whole seconds, the batch's new index entries go
/// in as one or two ordered runs instead of each landing on a page of its own (in SQLite, 100 000 changed device rows
/// took 0.89–0.98 s instead of 1.10–1.58 s). Rounded up, not down, so that a check is never recorded before
/// something that happened earlier in its second: a rollout started at 12:00:00.500 counts the failure a device
/// reports at 12:00:00.700 (recorded at 12:00:01). A second is far finer than a last-seen time is kept fresh anyway
/// ([`LAST_SEEN_RESOLUTION`]).
#[must_use]
pub fn check_time() -> DateTime<Utc> {
    end_of_second(Utc::now())
}

/// `time` rounded up to the whole second.
fn end_of_second(time: DateTime<Utc>) -> DateTime<Utc> {
    let whole = time.trunc_subsecs(0);
    if whole == time { whole } else { whole + chrono::TimeDelta::seconds(1) }
}

/// A table of rows devices create, each row stamped with when it was last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceTable {
    /// The latest report of each device (Capgo `/updates`, Expo manifest requests with an `EAS-Client-ID`).
    Devices,
    /// The bundle each device runs, from `/stats` `set` events.
    DeviceInstalls,
    /// Release health: one row per release a device was offered, ran or failed on.
    ReleaseDevices,
    /// The stats events themselves.
    StatsEvents,
}

impl DeviceTable {
    /// Every table, in the order the ageing task visits them.
    pub const ALL: [DeviceTable; 4] =
        [DeviceTable::Devices, DeviceTable::DeviceInstalls, DeviceTable::ReleaseDevices, DeviceTable::StatsEvents];

    /// The table's name (also its `/metrics` label).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            DeviceTable::Devices => "devices",
            DeviceTable::DeviceInstalls => "device_installs",
            DeviceTable::ReleaseDevices => "release_devices",
            DeviceTable::StatsEvents => "stats_events",
        }
    }

    /// Rows of this table an app keeps per device it may keep: one report and one install per device; a device
    /// holds a release-health row per release it met (4: the running, the offered and a couple kept from earlier
    /// releases within the retention) and a handful of stats events per update (16: two updates' worth of the
    /// plugin's download, set and failure events).
    #[must_use]
    pub fn rows_per_device(self) -> u64 {
        match self {
            DeviceTable::Devices | DeviceTable::DeviceInstalls => 1,
            DeviceTable::ReleaseDevices => 4,
            DeviceTable::StatsEvents => 16,
        }
    }

    /// The most rows of this table one app keeps when it may keep `max_devices` devices (`None`: no cap).
    #[must_use]
    pub fn cap(self, max_devices: u64) -> Option<u64> {
        (max_devices > 0).then(|| max_devices.saturating_mul(self.rows_per_device()))
    }
}

/// A place in the order an app's rows of a table age in (by last-seen time, then by key): the rows at or before it
/// are the ones a delete through it removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRowMark {
    /// When the row was last seen.
    pub seen_at: DateTime<Utc>,
    /// The row's key after `app_id` as text (the store knows each table's columns): rows seen at `seen_at`
    /// itself are cut between keys. Empty: every row seen at or before `seen_at`.
    pub key: Vec<String>,
}

impl DeviceRowMark {
    /// Every row seen at or before `seen_at`.
    #[must_use]
    pub fn at(seen_at: DateTime<Utc>) -> Self {
        Self { seen_at, key: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_is_recorded_at_the_end_of_its_second() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
        assert_eq!(end_of_second(at("2026-12-02T12:00:00.700Z")), at("2026-12-02T12:00:01Z"));
        assert_eq!(end_of_second(at("2026-12-02T12:00:00.000001Z")), at("2026-12-02T12:00:01Z"));
        assert_eq!(end_of_second(at("2026-12-02T12:00:59.999Z")), at("2026-12-02T12:01:00Z"));
        assert_eq!(end_of_second(at("2026-12-02T12:00:00Z")), at("2026-12-02T12:00:00Z"));
        let before = Utc::now();
        let recorded = check_time();
        assert_eq!(recorded.timestamp_subsec_nanos(), 0, "{recorded}");
        assert!(recorded >= before && recorded <= before + chrono::TimeDelta::seconds(2), "{recorded}");
    }

    #[test]
    fn caps_scale_with_the_rows_a_device_holds_and_zero_means_none() {
        assert_eq!(DeviceTable::Devices.cap(10), Some(10));
        assert_eq!(DeviceTable::DeviceInstalls.cap(10), Some(10));
        assert_eq!(DeviceTable::ReleaseDevices.cap(10), Some(40));
        assert_eq!(DeviceTable::StatsEvents.cap(10), Some(160));
        assert_eq!(DeviceTable::StatsEvents.cap(u64::MAX), Some(u64::MAX));
        assert!(DeviceTable::ALL.iter().all(|table| table.cap(0).is_none()));
        let names: Vec<&str> = DeviceTable::ALL.iter().map(|table| table.name()).collect();
        assert_eq!(names, ["devices", "device_installs", "release_devices", "stats_events"]);
    }
}
