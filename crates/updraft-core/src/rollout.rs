//! Rollouts: a candidate (a Capgo bundle, or an Expo publish group) offered to a percentage of a channel's devices
//! while the rest keep the stable one, and the states a rollout moves through.
//!
//! One model serves both protocols. Each transition is a pure function from a rollout to the next one (or an error
//! saying why not); persisting it, running the health decision every few seconds and minting the Expo release a
//! halt needs are the server's business. Which devices a percentage reaches is [`crate::bucket`]; what one device
//! is served is [`crate::rollout_selection`]; when a rollout halts itself is [`crate::health`].
//!
//! The transitions:
//! ```text
//!   start ─▶ Active ──halt──▶ Halted ──resume──▶ Active
//!              │ ▲ set_percent   │
//!              │ └─(raise only)  │
//!              └──complete──▶ Completed ◀──complete──┘
//! ```
//! - `set_percent` only raises, and only while active: raising only adds devices (buckets below the old
//!   percentage stay below the new one), whereas lowering would move devices already running the candidate back,
//!   which an Expo client refuses unless a newer release is minted. To take the candidate away, halt.
//! - `halt` (by an operator or by the health rule) stops offering the candidate; devices running it are moved back
//!   to stable ([`crate::Serve::StableAfterHalt`]).
//! - `resume` re-offers it at the same percentage and restarts the health figures from the resume time
//!   ([`Rollout::health_since`]), so the failures that caused the halt do not halt it again at once.
//! - `complete` (from active or halted) makes the candidate the channel's release for everyone; the server moves
//!   the channel's pointer in the same transaction. A completed rollout no longer changes.

use chrono::{DateTime, Utc};

use crate::bucket::RolloutPercent;
use crate::failure::{Failure, FailureKind};
use crate::health::{DEFAULT_MAX_FAILURE_RATE, DEFAULT_MIN_DEVICES, HaltReason, HealthFigures, should_halt};
use crate::ids::{AppId, BundleVersion, ChannelName, Platform};

/// Why a rollout cannot be made or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    /// A rollout id that is empty, too long or has other characters.
    #[error("rollout id {0:?} is not valid; use 1 to 64 characters from letters, digits, '-' and '_'")]
    InvalidId(String),
    /// A percentage outside 0 to 100 or with more than two decimals.
    #[error("percentage {0:?} is not valid; use a number from 0 to 100 with at most two decimals, such as 10 or 12.5")]
    InvalidPercent(String),
    /// A maximum failure rate outside 0 to 1.
    #[error("maximum failure rate {0:?} is not valid; use a fraction from 0 to 1, such as 0.05 for 5%")]
    InvalidMaxFailureRate(String),
    /// The candidate and the stable target belong to different protocols.
    #[error("the candidate {candidate} and the stable {stable} are not of the same protocol")]
    MixedProtocols {
        /// The candidate, as shown.
        candidate: String,
        /// The stable target, as shown.
        stable: String,
    },
    /// The candidate is what the channel already serves.
    #[error("the channel already serves {0}; publish a new candidate before starting a rollout")]
    CandidateIsStable(String),
    /// `set_percent` below the current percentage.
    #[error(
        "the rollout is at {current}; a percentage only goes up (to {asked} asked): halt the rollout to stop offering its candidate"
    )]
    PercentLowered {
        /// The current percentage.
        current: RolloutPercent,
        /// The one asked for.
        asked: RolloutPercent,
    },
    /// `set_percent` on a halted rollout.
    #[error("the rollout is halted; resume it before changing its percentage")]
    Halted,
    /// `halt` on a halted rollout.
    #[error("the rollout is already halted")]
    AlreadyHalted,
    /// `resume` on an active rollout.
    #[error("the rollout is active, not halted; there is nothing to resume")]
    NotHalted,
    /// Any change to a completed rollout.
    #[error("the rollout is completed; start a new rollout to offer another candidate")]
    Completed,
}

/// The codes of [`RolloutError`]s as [`Failure`]s.
pub mod codes {
    /// [`super::RolloutError::InvalidId`].
    pub const INVALID_ROLLOUT_ID: &str = "invalid_rollout_id";
    /// [`super::RolloutError::InvalidPercent`].
    pub const INVALID_ROLLOUT_PERCENT: &str = "invalid_rollout_percent";
    /// [`super::RolloutError::InvalidMaxFailureRate`].
    pub const INVALID_MAX_FAILURE_RATE: &str = "invalid_max_failure_rate";
    /// [`super::RolloutError::MixedProtocols`].
    pub const INVALID_ROLLOUT_TARGET: &str = "invalid_rollout_target";
    /// [`super::RolloutError::CandidateIsStable`].
    pub const CANDIDATE_IS_STABLE: &str = "candidate_is_stable";
    /// [`super::RolloutError::PercentLowered`].
    pub const ROLLOUT_PERCENT_LOWERED: &str = "rollout_percent_lowered";
    /// [`super::RolloutError::Halted`].
    pub const ROLLOUT_HALTED: &str = "rollout_halted";
    /// [`super::RolloutError::AlreadyHalted`].
    pub const ROLLOUT_ALREADY_HALTED: &str = "rollout_already_halted";
    /// [`super::RolloutError::NotHalted`].
    pub const ROLLOUT_NOT_HALTED: &str = "rollout_not_halted";
    /// [`super::RolloutError::Completed`].
    pub const ROLLOUT_COMPLETED: &str = "rollout_completed";
}

impl RolloutError {
    /// The neutral code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidId(_) => codes::INVALID_ROLLOUT_ID,
            Self::InvalidPercent(_) => codes::INVALID_ROLLOUT_PERCENT,
            Self::InvalidMaxFailureRate(_) => codes::INVALID_MAX_FAILURE_RATE,
            Self::MixedProtocols { .. } => codes::INVALID_ROLLOUT_TARGET,
            Self::CandidateIsStable(_) => codes::CANDIDATE_IS_STABLE,
            Self::PercentLowered { .. } => codes::ROLLOUT_PERCENT_LOWERED,
            Self::Halted => codes::ROLLOUT_HALTED,
            Self::AlreadyHalted => codes::ROLLOUT_ALREADY_HALTED,
            Self::NotHalted => codes::ROLLOUT_NOT_HALTED,
            Self::Completed => codes::ROLLOUT_COMPLETED,
        }
    }
}

impl From<RolloutError> for Failure {
    /// Bad values are [`FailureKind::Invalid`]; a transition the rollout's state forbids is a
    /// [`FailureKind::Conflict`].
    fn from(error: RolloutError) -> Self {
        let kind = match error {
            RolloutError::InvalidId(_)
            | RolloutError::InvalidPercent(_)
            | RolloutError::InvalidMaxFailureRate(_)
            | RolloutError::MixedProtocols { .. }
            | RolloutError::CandidateIsStable(_) => FailureKind::Invalid,
            RolloutError::PercentLowered { .. }
            | RolloutError::Halted
            | RolloutError::AlreadyHalted
            | RolloutError::NotHalted
            | RolloutError::Completed => FailureKind::Conflict,
        };
        Failure::new(kind, error.code(), error.to_string())
    }
}

/// A rollout's id, which is also the salt of its buckets (so it must never change once devices were bucketed).
///
/// Invariant: 1 to 64 characters from ASCII letters, digits, `-` and `_`, lowercase (a lowercase UUID is the
/// expected form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RolloutId(String);

impl RolloutId {
    /// Parses a rollout id, lowercasing it.
    ///
    /// # Errors
    /// [`RolloutError::InvalidId`] when the id is empty, too long or has other characters.
    pub fn parse(raw: &str) -> Result<Self, RolloutError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        if ok { Ok(Self(raw.to_ascii_lowercase())) } else { Err(RolloutError::InvalidId(raw.to_owned())) }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a rollout offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutTarget {
    /// A Capgo bundle of the channel's app.
    CapgoBundle(BundleVersion),
    /// An Expo publish group (the per-platform releases of one publish); the rollout applies to each runtime
    /// version and platform the group has a release for.
    ExpoGroup(String),
}

/// What the devices outside a rollout keep: what the channel served before it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StableTarget {
    /// Capgo: the bundle embedded in the app (the channel pointed at builtin).
    Builtin,
    /// Capgo: this bundle.
    CapgoBundle(BundleVersion),
    /// Expo: for each runtime version and platform, the newest release on the channel outside the candidate
    /// group (none, an update, or a roll back to embedded). It differs per runtime version, so it has no one name.
    ExpoPrevious,
}

impl RolloutTarget {
    /// How status output names it: the bundle version or the group id.
    pub fn label(&self) -> &str {
        match self {
            Self::CapgoBundle(version) => version.as_str(),
            Self::ExpoGroup(group_id) => group_id,
        }
    }
}

impl StableTarget {
    /// How status output names it: `builtin`, the bundle version, or `previous`.
    pub fn label(&self) -> &str {
        match self {
            Self::Builtin => "builtin",
            Self::CapgoBundle(version) => version.as_str(),
            Self::ExpoPrevious => "previous",
        }
    }
}

/// When a rollout halts itself ([`crate::should_halt`]).
///
/// Invariant: `max_failure_rate` is a number in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HaltPolicy {
    max_failure_rate: f64,
    min_devices: u64,
}

impl HaltPolicy {
    /// A policy (`--max-failure-rate`, `--min-devices`).
    ///
    /// # Errors
    /// [`RolloutError::InvalidMaxFailureRate`] when the rate is not a number from 0 to 1.
    pub fn new(max_failure_rate: f64, min_devices: u64) -> Result<Self, RolloutError> {
        if (0.0..=1.0).contains(&max_failure_rate) {
            Ok(Self { max_failure_rate, min_devices })
        } else {
            Err(RolloutError::InvalidMaxFailureRate(max_failure_rate.to_string()))
        }
    }

    /// The maximum failure rate.
    pub fn max_failure_rate(&self) -> f64 {
        self.max_failure_rate
    }

    /// The minimum number of devices before the rule may halt.
    pub fn min_devices(&self) -> u64 {
        self.min_devices
    }
}

impl Default for HaltPolicy {
    /// [`DEFAULT_MAX_FAILURE_RATE`] and [`DEFAULT_MIN_DEVICES`].
    fn default() -> Self {
        Self { max_failure_rate: DEFAULT_MAX_FAILURE_RATE, min_devices: DEFAULT_MIN_DEVICES }
    }
}

/// Who halted a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaltCause {
    /// An operator, by API key name.
    Operator(String),
    /// The health rule.
    Automatic,
}

/// A halt: why, when and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Halt {
    /// The operator's note, or the health rule's figures ([`HaltReason`]'s text).
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
    /// By whom.
    pub by: HaltCause,
    /// The health figures the halt was decided on (the health rule's; an operator's halt may have none).
    pub figures: Option<HealthFigures>,
}

/// Where a rollout is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// The candidate is offered to the rollout's percentage.
    Active,
    /// The candidate is no longer offered; devices running it move back to stable.
    Halted(Halt),
    /// The candidate is the channel's release for everyone.
    Completed {
        /// When.
        at: DateTime<Utc>,
    },
}

impl RolloutState {
    /// `active`, `halted` or `completed`, as `status --json` prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Halted(_) => "halted",
            Self::Completed { .. } => "completed",
        }
    }
}

/// `status --json`'s `state` for a channel: the rollout's state, or `none` without one.
pub fn rollout_state_label(rollout: Option<&Rollout>) -> &'static str {
    rollout.map_or("none", |rollout| rollout.state().as_str())
}

/// What an operator asks for when starting a rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSpec {
    /// A fresh id (the bucket salt).
    pub id: RolloutId,
    /// App.
    pub app_id: AppId,
    /// Channel.
    pub channel: ChannelName,
    /// What is offered.
    pub candidate: RolloutTarget,
    /// What the channel serves now.
    pub stable: StableTarget,
    /// To how many devices.
    pub percent: RolloutPercent,
    /// When it halts itself.
    pub policy: HaltPolicy,
}

/// A rollout on one channel.
///
/// Invariant: the candidate and the stable target are of the same protocol, and a Capgo candidate is not the
/// stable bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    spec: RolloutSpec,
    state: RolloutState,
    started_at: DateTime<Utc>,
    health_since: DateTime<Utc>,
}

impl Rollout {
    /// Starts a rollout, active from `at`.
    ///
    /// # Errors
    /// [`RolloutError::MixedProtocols`] or [`RolloutError::CandidateIsStable`].
    pub fn start(spec: RolloutSpec, at: DateTime<Utc>) -> Result<Self, RolloutError> {
        Self::restore(spec, RolloutState::Active, at, at)
    }

    /// A rollout as stored, checked again.
    ///
    /// # Errors
    /// As [`Rollout::start`].
    pub fn restore(
        spec: RolloutSpec,
        state: RolloutState,
        started_at: DateTime<Utc>,
        health_since: DateTime<Utc>,
    ) -> Result<Self, RolloutError> {
        match (&spec.candidate, &spec.stable) {
            (RolloutTarget::CapgoBundle(candidate), StableTarget::CapgoBundle(stable)) if candidate == stable => {
                return Err(RolloutError::CandidateIsStable(candidate.to_string()));
            }
            (RolloutTarget::CapgoBundle(_), StableTarget::Builtin | StableTarget::CapgoBundle(_))
            | (RolloutTarget::ExpoGroup(_), StableTarget::ExpoPrevious) => {}
            (candidate, stable) => {
                return Err(RolloutError::MixedProtocols {
                    candidate: candidate.label().to_owned(),
                    stable: stable.label().to_owned(),
                });
            }
        }
        Ok(Self { spec, state, started_at, health_since })
    }

    /// The id (the bucket salt).
    pub fn id(&self) -> &RolloutId {
        &self.spec.id
    }

    /// The app.
    pub fn app_id(&self) -> &AppId {
        &self.spec.app_id
    }

    /// The channel.
    pub fn channel(&self) -> &ChannelName {
        &self.spec.channel
    }

    /// What is offered.
    pub fn candidate(&self) -> &RolloutTarget {
        &self.spec.candidate
    }

    /// What the other devices keep.
    pub fn stable(&self) -> &StableTarget {
        &self.spec.stable
    }

    /// To how many devices.
    pub fn percent(&self) -> RolloutPercent {
        self.spec.percent
    }

    /// When it halts itself.
    pub fn policy(&self) -> HaltPolicy {
        self.spec.policy
    }

    /// Where it is.
    pub fn state(&self) -> &RolloutState {
        &self.state
    }

    /// When it started.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    /// Since when its health figures count: the start, or the last resume.
    pub fn health_since(&self) -> DateTime<Utc> {
        self.health_since
    }

    /// Whether the candidate is offered.
    pub fn is_active(&self) -> bool {
        self.state == RolloutState::Active
    }

    /// Raises the percentage of an active rollout (the same percentage is accepted and changes nothing).
    ///
    /// # Errors
    /// [`RolloutError::PercentLowered`], [`RolloutError::Halted`] or [`RolloutError::Completed`].
    pub fn set_percent(&self, percent: RolloutPercent) -> Result<Self, RolloutError> {
        match self.state {
            RolloutState::Active => {}
            RolloutState::Halted(_) => return Err(RolloutError::Halted),
            RolloutState::Completed { .. } => return Err(RolloutError::Completed),
        }
        if percent < self.spec.percent {
            return Err(RolloutError::PercentLowered { current: self.spec.percent, asked: percent });
        }
        let mut next = self.clone();
        next.spec.percent = percent;
        Ok(next)
    }

    /// Halts an active rollout.
    ///
    /// # Errors
    /// [`RolloutError::AlreadyHalted`] or [`RolloutError::Completed`].
    pub fn halt(&self, halt: Halt) -> Result<Self, RolloutError> {
        match self.state {
            RolloutState::Active => Ok(Self { state: RolloutState::Halted(halt), ..self.clone() }),
            RolloutState::Halted(_) => Err(RolloutError::AlreadyHalted),
            RolloutState::Completed { .. } => Err(RolloutError::Completed),
        }
    }

    /// The health decision: the halted rollout when it is active and the figures (counted since
    /// [`Rollout::health_since`]) break its policy, `None` otherwise. The reason is kept in the halt's text.
    pub fn check_health(&self, devices: u64, failures: u64, at: DateTime<Utc>) -> Option<(Self, HaltReason)> {
        if !self.is_active() {
            return None;
        }
        let policy = self.spec.policy;
        let reason = should_halt(devices, failures, policy.max_failure_rate, policy.min_devices)?;
        let halt = Halt { reason: reason.to_string(), at, by: HaltCause::Automatic, figures: Some(reason.figures) };
        self.halt(halt).ok().map(|halted| (halted, reason))
    }

    /// Offers the candidate of a halted rollout again, counting health from `at`.
    ///
    /// # Errors
    /// [`RolloutError::NotHalted`] or [`RolloutError::Completed`].
    pub fn resume(&self, at: DateTime<Utc>) -> Result<Self, RolloutError> {
        match self.state {
            RolloutState::Halted(_) => Ok(Self { state: RolloutState::Active, health_since: at, ..self.clone() }),
            RolloutState::Active => Err(RolloutError::NotHalted),
            RolloutState::Completed { .. } => Err(RolloutError::Completed),
        }
    }

    /// Changes when an active or halted rollout halts itself.
    ///
    /// # Errors
    /// [`RolloutError::Completed`].
    pub fn set_policy(&self, policy: HaltPolicy) -> Result<Self, RolloutError> {
        match self.state {
            RolloutState::Completed { .. } => Err(RolloutError::Completed),
            _ => {
                let mut next = self.clone();
                next.spec.policy = policy;
                Ok(next)
            }
        }
    }

    /// The same rollout (same id, so the same devices) offering another candidate of the same protocol: an Expo
    /// candidate republished as a new group, newer than the release a halt minted, so the devices it moved back
    /// accept it again.
    ///
    /// # Errors
    /// As [`Rollout::restore`].
    pub fn with_candidate(&self, candidate: RolloutTarget) -> Result<Self, RolloutError> {
        let spec = RolloutSpec { candidate, ..self.spec.clone() };
        Self::restore(spec, self.state.clone(), self.started_at, self.health_since)
    }

    /// Completes an active or halted rollout: the candidate becomes the channel's release for everyone.
    ///
    /// # Errors
    /// [`RolloutError::Completed`] when it already is.
    pub fn complete(&self, at: DateTime<Utc>) -> Result<Self, RolloutError> {
        match self.state {
            RolloutState::Active | RolloutState::Halted(_) => {
                Ok(Self { state: RolloutState::Completed { at }, ..self.clone() })
            }
            RolloutState::Completed { .. } => Err(RolloutError::Completed),
        }
    }
}

/// A rollout as the store keeps it: the rollout, the runtime versions and platforms an Expo candidate covers, and
/// who changed it last, when and why.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRollout {
    /// The rollout.
    pub rollout: Rollout,
    /// Expo: the (platform, runtime version) pairs the candidate group has a release for on the channel; the
    /// rollout applies to those only. Empty for Capgo.
    pub covers: Vec<(Platform, String)>,
    /// The last state change.
    pub last_change: RolloutChange,
}

/// Who changed a rollout, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutChange {
    /// What was done: `start`, `set`, `halt`, `resume` or `complete`.
    pub action: String,
    /// By whom: the operator (as the API key shows it) or `automatic` for the health rule.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Why (an operator's note, the health rule's figures, or a description of the change).
    pub reason: String,
}

impl StoredRollout {
    /// Whether the rollout applies to an Expo request for this platform and runtime version.
    pub fn covers(&self, platform: Platform, runtime_version: &str) -> bool {
        self.covers.iter().any(|(p, v)| *p == platform && v == runtime_version)
    }
}

impl HaltCause {
    /// How the store and status output name it: the operator, or `automatic`.
    pub fn label(&self) -> &str {
        match self {
            Self::Operator(name) => name,
            Self::Automatic => "automatic",
        }
    }
}

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
