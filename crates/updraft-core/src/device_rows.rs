//! Rows any device can create without a key (it only has to invent a device id), and how many of them an app keeps.
//!
//! The gateway ages these rows out (a row not seen for the retention is deleted) and caps them per app (past the
//! cap the least recently seen rows go first), in a background task that deletes in bounded batches
//! (`updraft-server`'s `device_ageing`). Failed versions and device-made channel overrides have caps of their own
//! (`MAX_FAILED_VERSIONS_PER_APP`, `MAX_DEVICE_OVERRIDES_PER_APP`) and are not listed here.

use chrono::{DateTime, Utc};

/// How fresh a last-seen time is kept: a device that checks in again saying nothing new is written again only once
/// this long has passed since it was last written (its device row), and a release-health row whose only change would
/// be its last-seen time is not rewritten within it. A device's last-seen time is therefore at most this old while
/// it keeps checking in, and the database's write load follows what devices change, not how often they launch or
/// resume (the Capgo plugin checks on every resume). What a row records (first offer, last run, first failure, its
/// channel) is always written at once.
pub const LAST_SEEN_RESOLUTION: std::time::Duration = std::time::Duration::from_secs(300);

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
