//! `GET /release_health`: per release and channel, the devices offered it, running it and failed on it, and the
//! halts recorded on the app's rollouts. `updraft release health` reads the same types.

use serde::{Deserialize, Serialize};
use updraft_core::{HaltRecord, ReleaseHealth};

/// The answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ReleaseHealthAnswer {
    /// App.
    pub(crate) app_id: String,
    /// The channel asked for, if any.
    pub(crate) channel: Option<String>,
    /// One entry per release and channel, channels in name order, newest activity first within each.
    pub(crate) releases: Vec<ReleaseHealthEntry>,
    /// Rollout halts, newest first.
    pub(crate) halts: Vec<HaltEntry>,
}

/// One release on one channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ReleaseHealthEntry {
    /// Channel.
    pub(crate) channel: String,
    /// A Capgo version name or an Expo update id.
    pub(crate) release_id: String,
    /// The Expo publish group (the Capgo version again).
    pub(crate) group_id: String,
    /// `capgo` or `expo`.
    pub(crate) protocol: String,
    /// Devices a check offered it to.
    pub(crate) offered: u64,
    /// Devices that ran it.
    pub(crate) running: u64,
    /// Devices it failed on.
    pub(crate) failed: u64,
    /// Devices that ran it or failed on it.
    pub(crate) devices: u64,
    /// `failed / devices` (0 without devices).
    pub(crate) failure_rate: f64,
    /// The lower bound of the 95 % Wilson interval of the failure rate (what the halt rule compares).
    pub(crate) failure_rate_lower_bound: f64,
    /// `running / offered`, at most 1 (0 without offers).
    pub(crate) adoption_rate: f64,
    /// When it was first offered.
    pub(crate) first_offered_at: Option<String>,
    /// The newest first failure on a device.
    pub(crate) last_failed_at: Option<String>,
    /// The newest signal.
    pub(crate) last_seen_at: Option<String>,
}

/// A recorded halt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct HaltEntry {
    /// Channel.
    pub(crate) channel: String,
    /// Rollout.
    pub(crate) rollout_id: String,
    /// Its candidate.
    pub(crate) candidate: String,
    /// When.
    pub(crate) halted_at: String,
    /// `automatic`, or the operator as the API key shows it (`operator`, `operator (key for <app>)`).
    pub(crate) halted_by: String,
    /// The instance that decided.
    pub(crate) instance: String,
    /// Why.
    pub(crate) reason: String,
    /// Devices counted.
    pub(crate) devices: u64,
    /// Failures counted.
    pub(crate) failures: u64,
    /// Their rate.
    pub(crate) failure_rate: f64,
    /// Its 95 % lower bound.
    pub(crate) lower_bound: f64,
    /// The rollout's maximum.
    pub(crate) max_failure_rate: f64,
    /// The rollout's minimum devices.
    pub(crate) min_devices: u64,
}

fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl From<&ReleaseHealth> for ReleaseHealthEntry {
    fn from(health: &ReleaseHealth) -> Self {
        let figures = health.figures();
        Self {
            channel: health.channel.clone(),
            release_id: health.release_id.clone(),
            group_id: health.group_id.clone(),
            protocol: health.protocol.as_str().to_owned(),
            offered: health.offered,
            running: health.running,
            failed: health.failed,
            devices: health.devices,
            failure_rate: figures.failure_rate(),
            failure_rate_lower_bound: figures.lower_bound(),
            adoption_rate: health.adoption_rate(),
            first_offered_at: health.first_offered_at.map(time),
            last_failed_at: health.last_failed_at.map(time),
            last_seen_at: health.last_seen_at.map(time),
        }
    }
}

impl From<&HaltRecord> for HaltEntry {
    fn from(halt: &HaltRecord) -> Self {
        Self {
            channel: halt.channel.clone(),
            rollout_id: halt.rollout_id.clone(),
            candidate: halt.candidate.clone(),
            halted_at: time(halt.halted_at),
            halted_by: halt.halted_by.clone(),
            instance: halt.instance.clone(),
            reason: halt.reason.clone(),
            devices: halt.figures.devices,
            failures: halt.figures.failures,
            failure_rate: halt.failure_rate,
            lower_bound: halt.lower_bound,
            max_failure_rate: halt.max_failure_rate,
            min_devices: halt.min_devices,
        }
    }
}
