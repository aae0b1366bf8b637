//! Bodies of `/rollout` (`GET` the status, `POST` start or set) and `/rollout/halt`, `/rollout/resume`,
//! `/rollout/complete`, shared by `updraft rollout ...` and the routes.

use serde::{Deserialize, Serialize};

/// `POST /rollout`: a start when `version` (Capgo) or `release` (Expo) is given, else a change of percentage or
/// policy of the channel's rollout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolloutRequest {
    pub(crate) app_id: String,
    pub(crate) channel: String,
    /// Capgo: the bundle version to offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<String>,
    /// Expo: the publish group id `updraft publish expo` printed, or the id of one of its releases (a manifest id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) release: Option<String>,
    /// Expo: only the candidate's releases of this runtime version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) runtime_version: Option<String>,
    /// The share of devices, 0 to 100 with at most two decimals (required to start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) percent: Option<f64>,
    /// The health rule's maximum failure rate, a fraction from 0 to 1 (default 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_failure_rate: Option<f64>,
    /// The devices the candidate needs before the health rule may halt it (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) min_devices: Option<u64>,
}

/// The rollout `publish capgo|expo --rollout P` starts with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishRollout {
    pub(crate) percent: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_failure_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) min_devices: Option<u64>,
}

/// `POST /rollout/halt`, `/rollout/resume`, `/rollout/complete`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolloutAction {
    pub(crate) app_id: String,
    pub(crate) channel: String,
    /// Why (kept with a halt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

/// A runtime version and platform an Expo rollout applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RolloutCover {
    pub(crate) platform: String,
    pub(crate) runtime_version: String,
}

/// Where a channel's rollout is: the answer of every `/rollout` call and `updraft rollout status --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RolloutStatus {
    pub(crate) app_id: String,
    pub(crate) channel: String,
    /// `none`, `active`, `halted` or `completed`.
    pub(crate) state: String,
    /// The rollout's id, which salts its buckets.
    pub(crate) rollout_id: Option<String>,
    /// `capgo` or `expo`.
    pub(crate) protocol: Option<String>,
    /// The share of devices, as a number (`12.5`).
    pub(crate) percent: f64,
    /// The bundle version or Expo publish group offered.
    pub(crate) candidate: Option<String>,
    /// What the other devices keep: `builtin`, a bundle version, or `previous` (Expo).
    pub(crate) stable: Option<String>,
    /// Devices that ran the candidate, and of those, devices that failed on it.
    pub(crate) devices: u64,
    pub(crate) failures: u64,
    pub(crate) failure_rate: f64,
    /// Why the last change was made (the halt's reason while halted).
    pub(crate) reason: Option<String>,
    pub(crate) max_failure_rate: f64,
    pub(crate) min_devices: u64,
    #[serde(default)]
    pub(crate) covers: Vec<RolloutCover>,
    pub(crate) started_at: Option<String>,
    /// Health figures count from here (the start, or the last resume).
    pub(crate) health_since: Option<String>,
    /// The last change: `start`, `set`, `halt`, `resume` or `complete`, by whom and when.
    pub(crate) last_action: Option<String>,
    pub(crate) changed_by: Option<String>,
    pub(crate) changed_at: Option<String>,
    pub(crate) halted_by: Option<String>,
    pub(crate) halted_at: Option<String>,
}

impl RolloutStatus {
    /// The status of a channel's rollout (`None`: the channel has none) with the candidate's health figures.
    pub(crate) fn of(
        app_id: &updraft_core::AppId,
        channel: &updraft_core::ChannelName,
        stored: Option<&updraft_core::StoredRollout>,
        figures: updraft_core::HealthFigures,
    ) -> Self {
        use updraft_core::{RolloutState, RolloutTarget, expo_time};
        let rollout = stored.map(|s| &s.rollout);
        let policy = rollout.map(|r| r.policy()).unwrap_or_default();
        let halt = rollout.and_then(|r| match r.state() {
            RolloutState::Halted(halt) => Some(halt),
            RolloutState::Active | RolloutState::Completed { .. } => None,
        });
        Self {
            app_id: app_id.to_string(),
            channel: channel.to_string(),
            state: updraft_core::rollout_state_label(rollout).to_owned(),
            rollout_id: rollout.map(|r| r.id().as_str().to_owned()),
            protocol: rollout.map(|r| match r.candidate() {
                RolloutTarget::CapgoBundle(_) => "capgo".to_owned(),
                RolloutTarget::ExpoGroup(_) => "expo".to_owned(),
            }),
            percent: rollout.map_or(0.0, |r| r.percent().as_percent()),
            candidate: rollout.map(|r| r.candidate().label().to_owned()),
            stable: rollout.map(|r| r.stable().label().to_owned()),
            devices: figures.devices,
            failures: figures.failures,
            failure_rate: figures.failure_rate(),
            reason: halt.map(|h| h.reason.clone()).or_else(|| stored.map(|s| s.last_change.reason.clone())),
            max_failure_rate: policy.max_failure_rate(),
            min_devices: policy.min_devices(),
            covers: stored
                .map(|s| {
                    s.covers
                        .iter()
                        .map(|(platform, runtime_version)| RolloutCover {
                            platform: platform.as_str().to_owned(),
                            runtime_version: runtime_version.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            started_at: rollout.map(|r| expo_time(r.started_at())),
            health_since: rollout.map(|r| expo_time(r.health_since())),
            last_action: stored.map(|s| s.last_change.action.clone()),
            changed_by: stored.map(|s| s.last_change.by.clone()),
            changed_at: stored.map(|s| expo_time(s.last_change.at)),
            halted_by: halt.map(|h| h.by.label().to_owned()),
            halted_at: halt.map(|h| expo_time(h.at)),
        }
    }
}
