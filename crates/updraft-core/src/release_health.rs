//! Release health: per release and channel, which devices were offered it, which run it, and which failed on it.
//!
//! Three signals, the same for both protocols (how each protocol's requests become signals is the server's and the
//! protocol crates' business, documented in `docs/compatibility.md`):
//! - **offered**: an update check answered the release to the device;
//! - **running**: the device says it runs the release (Capgo: a check naming it as the current bundle, or a `set`
//!   report; Expo: `Expo-Current-Update-ID`);
//! - **failed**: the device says the release failed on it (Capgo: the failure reports that block a version for a
//!   device, [`crate::failed_version`]; Expo: `Expo-Recent-Failed-Update-IDs`).
//!
//! A check's signals travel from the request to the database packed with its device report
//! ([`crate::HealthSignals`], at most one per signal and release). The writer merges the signals of one device and
//! release into one [`ReleaseDeviceRow`]; the database keeps one row per (app, release, device), so the counts are
//! counts of distinct devices, exact whichever instance a device reported through and however often it did.
//!
//! What is kept per row: when the device was first offered the release, when it last ran it, when it first failed
//! on it (and how). First failure, last run: the health window of a rollout ([`crate::Rollout::health_since`])
//! counts a device that ran the candidate since the window opened, and a failure only when it happened since, so a
//! device that keeps listing an old failure (Expo sends its five most recent ones on every check) does not halt a
//! resumed rollout again.

use chrono::{DateTime, Utc};

use crate::health::HealthFigures;
use crate::ids::{AppId, DeviceId};

/// What a device's request said about a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthSignal {
    /// The check answered the release to the device.
    Offered,
    /// The device runs it.
    Running,
    /// It failed on the device.
    Failed,
}

/// Which protocol a release belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthProtocol {
    /// A Capgo bundle (the release id is its version name).
    Capgo,
    /// An Expo update (the release id is the manifest id; the group is its publish group).
    Expo,
}

impl HealthProtocol {
    /// `capgo` or `expo`, as stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Capgo => "capgo",
            Self::Expo => "expo",
        }
    }

    /// The protocol of a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "capgo" => Some(Self::Capgo),
            "expo" => Some(Self::Expo),
            _ => None,
        }
    }
}

/// The longest failure text kept (bytes, cut at a character boundary): Expo clients send at most 1024 characters
/// of the fatal error, Capgo an action name.
pub const FAILURE_DETAIL_MAX_BYTES: usize = 1024;

/// One signal of a device about a release, as the writer merges it ([`crate::HealthSignals`] packs them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthObservation {
    /// What it says.
    pub signal: HealthSignal,
    /// The release's protocol.
    pub protocol: HealthProtocol,
    /// App.
    pub app_id: AppId,
    /// Device (Capgo `device_id`, Expo `EAS-Client-ID` lowercased).
    pub device_id: DeviceId,
    /// Release: a Capgo version name, or an Expo update id.
    pub release: String,
    /// The channel the check resolved (empty when the request did not say).
    pub channel: String,
    /// For a failure: how it failed (a Capgo action, an Expo fatal error), possibly empty.
    pub detail: String,
    /// When the gateway received it.
    pub at: DateTime<Utc>,
}

/// What the gateway knows of a release a signal names: its group (an Expo publish group; a Capgo bundle is its own
/// group) and, for Expo, the channel it was published on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownRelease {
    /// The release id as stored (an Expo id in its canonical case).
    pub release_id: String,
    /// The group.
    pub group_id: String,
    /// The channel to count it under when the signal names none (or, for Expo, always: a release belongs to one
    /// channel).
    pub channel: Option<String>,
}

/// One device's record of one release, as the store upserts it: times of the signals seen (first offer, last run,
/// first failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseDeviceRow {
    /// App.
    pub app_id: AppId,
    /// Release id.
    pub release_id: String,
    /// Device.
    pub device_id: DeviceId,
    /// Protocol.
    pub protocol: HealthProtocol,
    /// Group (the rollout candidate's id: an Expo group, or the Capgo version again).
    pub group_id: String,
    /// Channel, empty when unknown (the store then keeps the one it has).
    pub channel: String,
    /// First offered.
    pub offered_at: Option<DateTime<Utc>>,
    /// Last seen running it.
    pub running_at: Option<DateTime<Utc>>,
    /// First failed on it.
    pub failed_at: Option<DateTime<Utc>>,
    /// How it failed first (empty when not failed, or not said).
    pub failure: String,
    /// The newest signal's time.
    pub seen_at: DateTime<Utc>,
}

impl ReleaseDeviceRow {
    /// A row holding one observation of a known release.
    pub fn from_observation(observation: &HealthObservation, release: &KnownRelease) -> Self {
        let at = Some(observation.at);
        let channel = match (&release.channel, observation.protocol) {
            (Some(channel), HealthProtocol::Expo) => channel.clone(),
            (Some(channel), _) if observation.channel.is_empty() => channel.clone(),
            _ => observation.channel.clone(),
        };
        Self {
            app_id: observation.app_id.clone(),
            release_id: release.release_id.clone(),
            device_id: observation.device_id.clone(),
            protocol: observation.protocol,
            group_id: release.group_id.clone(),
            channel,
            offered_at: at.filter(|_| observation.signal == HealthSignal::Offered),
            running_at: at.filter(|_| observation.signal == HealthSignal::Running),
            failed_at: at.filter(|_| observation.signal == HealthSignal::Failed),
            failure: if observation.signal == HealthSignal::Failed {
                observation.detail.clone()
            } else {
                String::new()
            },
            seen_at: observation.at,
        }
    }

    /// Folds another row of the same (app, release, device) in, as the store's upsert folds rows: first offer, last
    /// run, first failure (with its text), the newest non-empty channel, the newest time.
    pub fn absorb(&mut self, other: Self) {
        fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        self.offered_at = earliest(self.offered_at, other.offered_at);
        self.running_at = self.running_at.max(other.running_at);
        let other_failed_first = match (self.failed_at, other.failed_at) {
            (None, Some(_)) => true,
            (Some(mine), Some(theirs)) => theirs < mine,
            _ => false,
        };
        if other_failed_first {
            self.failed_at = other.failed_at;
            self.failure = other.failure;
        }
        if !other.channel.is_empty() && (other.seen_at >= self.seen_at || self.channel.is_empty()) {
            self.channel = other.channel;
        }
        self.seen_at = self.seen_at.max(other.seen_at);
    }
}

/// Merges observations into one row per (app, release, device), sorted by (app, device, release): the table's key
/// order, which is the one order every writer locks rows in (observations that come in device order are then
/// already nearly in it, and the store's own sort finds them sorted). `known` names the release a signal is about;
/// signals of releases it does not know (an Expo embedded update, a bundle deleted since) are left out.
pub fn merge_observations(
    observations: impl IntoIterator<Item = HealthObservation>,
    known: impl Fn(&HealthObservation) -> Option<KnownRelease>,
) -> Vec<ReleaseDeviceRow> {
    let observations = observations.into_iter();
    // Sized once (a batch holds tens of thousands): a vector grown row by row is copied a dozen times.
    let mut rows: Vec<ReleaseDeviceRow> = Vec::with_capacity(observations.size_hint().0);
    rows.extend(observations.filter_map(|observation| {
        known(&observation).map(|release| ReleaseDeviceRow::from_observation(&observation, &release))
    }));
    rows.sort_by(|a, b| {
        (a.app_id.as_str(), a.device_id.as_str(), a.release_id.as_str()).cmp(&(
            b.app_id.as_str(),
            b.device_id.as_str(),
            b.release_id.as_str(),
        ))
    });
    let mut merged: Vec<ReleaseDeviceRow> = Vec::with_capacity(rows.len());
    for row in rows {
        match merged.last_mut() {
            Some(last)
                if last.app_id == row.app_id
                    && last.release_id == row.release_id
                    && last.device_id == row.device_id =>
            {
                last.absorb(row);
            }
            _ => merged.push(row),
        }
    }
    merged
}

/// The health of one release on one channel, counted in distinct devices.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseHealth {
    /// Channel (empty when devices reported it without a known channel).
    pub channel: String,
    /// Release id.
    pub release_id: String,
    /// Group id.
    pub group_id: String,
    /// Protocol.
    pub protocol: HealthProtocol,
    /// Devices a check offered it to.
    pub offered: u64,
    /// Devices that ran it.
    pub running: u64,
    /// Devices it failed on.
    pub failed: u64,
    /// Devices that ran it or failed on it: the failure rate's denominator.
    pub devices: u64,
    /// When it was first offered.
    pub first_offered_at: Option<DateTime<Utc>>,
    /// When it last failed first on a device.
    pub last_failed_at: Option<DateTime<Utc>>,
    /// The newest signal about it.
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl ReleaseHealth {
    /// The figures the halt rule reads.
    pub fn figures(&self) -> HealthFigures {
        HealthFigures { devices: self.devices, failures: self.failed }
    }

    /// Devices running it / devices offered it (0 without offers; above 1 when devices run it without having been
    /// offered it here, so it is capped at 1).
    pub fn adoption_rate(&self) -> f64 {
        if self.offered == 0 { 0.0 } else { (self.running as f64 / self.offered as f64).min(1.0) }
    }
}

/// A halt of a rollout as recorded: who or what halted it, when, why, and the figures the decision saw (zero for an
/// operator's halt, which needs none).
#[derive(Debug, Clone, PartialEq)]
pub struct HaltRecord {
    /// App.
    pub app_id: AppId,
    /// Channel.
    pub channel: String,
    /// The rollout halted.
    pub rollout_id: String,
    /// Its candidate (a Capgo version or an Expo group).
    pub candidate: String,
    /// When.
    pub halted_at: DateTime<Utc>,
    /// `automatic` (the health rule, [`HALTED_BY_HEALTH_RULE`]) or the operator as the API key shows it
    /// ([`crate::HaltCause::label`]).
    pub halted_by: String,
    /// The instance that decided (its id, logged at start-up).
    pub instance: String,
    /// Why, in words (the rule's figures, or the operator's note).
    pub reason: String,
    /// The figures.
    pub figures: HealthFigures,
    /// Their failure rate.
    pub failure_rate: f64,
    /// The lower bound of its 95 % Wilson interval.
    pub lower_bound: f64,
    /// The rollout's maximum failure rate.
    pub max_failure_rate: f64,
    /// The rollout's minimum number of devices.
    pub min_devices: u64,
}

/// `halted_by` of a halt the health rule decided.
pub const HALTED_BY_HEALTH_RULE: &str = "automatic";

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn observe(signal: HealthSignal, device: &str, release: &str, channel: &str, seconds: i64) -> HealthObservation {
        HealthObservation {
            signal,
            protocol: HealthProtocol::Capgo,
            app_id: AppId::parse("com.example.app").unwrap(),
            device_id: DeviceId::parse(device).unwrap(),
            release: release.to_owned(),
            channel: channel.to_owned(),
            detail: if signal == HealthSignal::Failed { "update_fail" } else { "" }.to_owned(),
            at: at(seconds),
        }
    }

    fn capgo(observation: &HealthObservation) -> Option<KnownRelease> {
        (observation.release != "unknown").then(|| KnownRelease {
            release_id: observation.release.clone(),
            group_id: observation.release.clone(),
            channel: None,
        })
    }

    #[test]
    fn observations_merge_into_one_row_per_device_and_release() {
        use HealthSignal::{Failed, Offered, Running};
        let rows = merge_observations(
            [
                observe(Running, "d1", "1.0.1", "", 30),
                observe(Offered, "d1", "1.0.1", "production", 10),
                observe(Failed, "d1", "1.0.1", "", 40),
                observe(Running, "d1", "1.0.1", "production", 20),
                observe(Failed, "d1", "1.0.1", "", 50),
                observe(Offered, "d2", "1.0.1", "beta", 5),
                observe(Offered, "d1", "1.0.0", "production", 1),
                observe(Offered, "d1", "unknown", "production", 1),
            ],
            capgo,
        );
        let keys: Vec<(&str, &str)> = rows.iter().map(|r| (r.release_id.as_str(), r.device_id.as_str())).collect();
        assert_eq!(keys, [("1.0.0", "d1"), ("1.0.1", "d1"), ("1.0.1", "d2")], "sorted, unknown releases left out");
        let d1 = &rows[1];
        assert_eq!(
            (d1.offered_at, d1.running_at, d1.failed_at, d1.seen_at),
            (Some(at(10)), Some(at(30)), Some(at(40)), at(50)),
            "first offer, last run, first failure, newest time"
        );
        assert_eq!((d1.channel.as_str(), d1.failure.as_str()), ("production", "update_fail"));
        assert_eq!((rows[2].offered_at, rows[2].running_at, rows[2].failed_at), (Some(at(5)), None, None));
    }

    #[test]
    fn an_expo_release_counts_under_its_own_channel() {
        let mut observation = observe(HealthSignal::Failed, "d1", "id-1", "", 0);
        observation.protocol = HealthProtocol::Expo;
        let release =
            KnownRelease { release_id: "id-1".into(), group_id: "g".into(), channel: Some("production".into()) };
        let row = ReleaseDeviceRow::from_observation(&observation, &release);
        assert_eq!((row.channel.as_str(), row.group_id.as_str()), ("production", "g"));
        observation.channel = "other".into();
        assert_eq!(ReleaseDeviceRow::from_observation(&observation, &release).channel, "production");
    }

    #[test]
    fn health_rates() {
        let health = ReleaseHealth {
            channel: "production".into(),
            release_id: "1.0.1".into(),
            group_id: "1.0.1".into(),
            protocol: HealthProtocol::Capgo,
            offered: 200,
            running: 100,
            failed: 10,
            devices: 110,
            first_offered_at: None,
            last_failed_at: None,
            last_seen_at: None,
        };
        assert_eq!(health.adoption_rate(), 0.5);
        assert_eq!(health.figures(), HealthFigures { devices: 110, failures: 10 });
        assert_eq!(ReleaseHealth { offered: 0, ..health.clone() }.adoption_rate(), 0.0);
        assert_eq!(ReleaseHealth { offered: 50, ..health }.adoption_rate(), 1.0);
    }
}
