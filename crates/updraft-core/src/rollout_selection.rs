//! What one device is served while its channel has a rollout: the candidate, the stable release, or the stable
//! release as a move back after a halt. Both protocols' selection code asks [`select_rollout`] and then builds its
//! own answer; this module knows no bundle, release or wire format.
//!
//! # Wiring (for `capgo_rules.rs` and `expo_release.rs`)
//! The catalog holds each channel's current rollout (active, halted, or none once completed); the check reads
//! only it, so an update check still does no I/O.
//! - **Capgo** (`select`): a bundle pin wins before any of this (`overridden: true`, or simply do not ask). A
//!   channel override only decides *which* channel resolves; that channel's rollout then applies as to any other
//!   device. Ask with `identity: Some(DeviceIdentity::from_device_id(..))` and `runs_candidate: version_name ==
//!   candidate version`. [`Serve::Candidate`] → the candidate bundle; [`Serve::Stable`],
//!   [`Serve::StableAfterHalt`] and [`Serve::Unaffected`] → the channel's own bundle (or builtin), which stays the
//!   stable one until `complete` moves it. The usual checks (key id, no new version, failed on device, policy)
//!   then run on whichever was picked. The plugin accepts any different version, so a move back needs nothing more.
//! - **Expo** (`select_expo_release`): ask only when the candidate group has a release for the request's
//!   (runtime version, platform); otherwise the rollout does not apply there. `identity` comes from
//!   [`DeviceIdentity::from_eas_client_id`] on `EAS-Client-ID` (absent → `None` → stable), and `runs_candidate` is
//!   whether `expo-current-update-id` is one of the group's releases. [`Serve::Candidate`] and
//!   [`Serve::Unaffected`] → the usual newest release; [`Serve::Stable`] and [`Serve::StableAfterHalt`] → the newest
//!   release *outside* the candidate group. The client only loads an update newer than the one it runs, so when a
//!   rollout halts, the server mints (like a rollback, in the halt's transaction) a release per covered runtime
//!   version and platform that republishes the stable one, newer than the candidate; that mint is then the newest
//!   release outside the group, and devices running the candidate accept it.

use crate::bucket::{DeviceIdentity, bucket, in_rollout};
use crate::expo_release::{ExpoCheck, ExpoDecision, ExpoRelease, select_expo_release, select_expo_release_outside};
use crate::rollout::{Rollout, RolloutState, RolloutTarget, StoredRollout};

/// What a device gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// No rollout decides for this device (none, completed, or a per-device pin wins): select as usual.
    Unaffected,
    /// The rollout's candidate.
    Candidate,
    /// The stable release.
    Stable,
    /// The stable release, to a device that runs the candidate of a halted rollout: move it back.
    StableAfterHalt,
}

/// What the selection knows about the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutCheck<'a> {
    /// Its identity; `None` (an Expo request without `EAS-Client-ID`) is served stable.
    pub identity: Option<&'a DeviceIdentity>,
    /// A per-device pin (a Capgo bundle pin) applies, and wins over the rollout.
    pub overridden: bool,
    /// The device runs the candidate now.
    pub runs_candidate: bool,
}

/// Decides what a device gets from its channel's rollout (the rollout of the channel its request resolved to).
///
/// While active, a device gets the candidate when its bucket is inside the percentage, or when it already runs
/// the candidate (since percentages only go up, that is a device reached earlier, or one that was pinned to it: it
/// keeps it rather than flip back and forth). Once halted, nobody gets the candidate and devices running it are
/// moved back.
pub fn select_rollout(rollout: Option<&Rollout>, check: &RolloutCheck<'_>) -> Serve {
    let Some(rollout) = rollout else { return Serve::Unaffected };
    if check.overridden {
        return Serve::Unaffected;
    }
    match rollout.state() {
        RolloutState::Completed { .. } => Serve::Unaffected,
        RolloutState::Halted(_) if check.runs_candidate => Serve::StableAfterHalt,
        RolloutState::Halted(_) => Serve::Stable,
        RolloutState::Active if check.runs_candidate => Serve::Candidate,
        RolloutState::Active => {
            let reached = check.identity.is_some_and(|identity| {
                in_rollout(bucket(rollout.app_id(), rollout.channel(), rollout.id(), identity), rollout.percent())
            });
            if reached { Serve::Candidate } else { Serve::Stable }
        }
    }
}

/// The Expo selection under a channel's rollout: when the rollout covers the request's platform and runtime
/// version, a device [`Serve::Stable`] or [`Serve::StableAfterHalt`] gets the newest release outside the candidate
/// group, every other device the newest release ([`select_expo_release`]). `identity` is the request's
/// `EAS-Client-ID` ([`DeviceIdentity::from_eas_client_id`]); a request without one gets stable.
pub fn select_expo_release_in_rollout<'a>(
    releases: &'a [ExpoRelease],
    check: &ExpoCheck,
    rollout: Option<&StoredRollout>,
    identity: Option<&DeviceIdentity>,
) -> ExpoDecision<'a> {
    let Some(stored) = rollout.filter(|stored| stored.covers(check.platform, &check.runtime_version)) else {
        return select_expo_release(releases, check);
    };
    let RolloutTarget::ExpoGroup(group) = stored.rollout.candidate() else {
        return select_expo_release(releases, check);
    };
    // The device's current update is one of the candidate's releases (ids and groups are lowercase UUIDs).
    let runs_candidate = check
        .current_update_id
        .as_deref()
        .is_some_and(|current| releases.iter().any(|r| r.id == current && r.group_id == *group));
    let device = RolloutCheck { identity, overridden: false, runs_candidate };
    match select_rollout(Some(&stored.rollout), &device) {
        Serve::Unaffected | Serve::Candidate => select_expo_release(releases, check),
        Serve::Stable | Serve::StableAfterHalt => select_expo_release_outside(releases, check, Some(group)),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::bucket::RolloutPercent;
    use crate::ids::{AppId, BundleVersion, ChannelName};
    use crate::rollout::{Halt, HaltCause, HaltPolicy, RolloutId, RolloutSpec, RolloutTarget, StableTarget};

    fn rollout(percent: &str) -> Rollout {
        let spec = RolloutSpec {
            id: RolloutId::parse("7d1e0c52-3b8f-4a55-9f3a-2f0c9a3b7d21").unwrap(),
            app_id: AppId::parse("com.example.app").unwrap(),
            channel: ChannelName::parse("production").unwrap(),
            candidate: RolloutTarget::CapgoBundle(BundleVersion::parse("1.1.0").unwrap()),
            stable: StableTarget::CapgoBundle(BundleVersion::parse("1.0.0").unwrap()),
            percent: RolloutPercent::parse(percent).unwrap(),
            policy: HaltPolicy::default(),
        };
        Rollout::start(spec, Utc::now()).unwrap()
    }

    fn halted(percent: &str) -> Rollout {
        let halt =
            Halt { reason: "crashes".into(), at: Utc::now(), by: HaltCause::Operator("ci".into()), figures: None };
        rollout(percent).halt(halt).unwrap()
    }

    fn completed(percent: &str) -> Rollout {
        rollout(percent).complete(Utc::now()).unwrap()
    }

    /// An identity inside (or outside) a 50 % rollout, found by bucketing rather than assumed.
    fn identity(inside_half: bool) -> DeviceIdentity {
        let half = rollout("50");
        (0..)
            .map(|i| DeviceIdentity::from_eas_client_id(&format!("device-{i}")).unwrap())
            .find(|identity| {
                let b = bucket(half.app_id(), half.channel(), half.id(), identity);
                in_rollout(b, half.percent()) == inside_half
            })
            .unwrap()
    }

    fn check(rollout: Option<&Rollout>, identity: Option<&DeviceIdentity>, overridden: bool, runs: bool, want: Serve) {
        let device = RolloutCheck { identity, overridden, runs_candidate: runs };
        let state = rollout.map(|r| r.state().as_str());
        assert_eq!(select_rollout(rollout, &device), want, "{state:?} {device:?}");
    }

    #[test]
    fn the_rollout_decides_what_each_device_gets() {
        let (inside, outside) = (identity(true), identity(false));
        let (inside, outside) = (Some(&inside), Some(&outside));
        use Serve::*;
        // No rollout, or a completed one: the channel serves as usual.
        check(None, inside, false, false, Unaffected);
        check(Some(&completed("50")), inside, false, true, Unaffected);
        check(Some(&completed("50")), outside, false, false, Unaffected);
        // Active: the bucket decides, and a device already on the candidate keeps it.
        check(Some(&rollout("50")), inside, false, false, Candidate);
        check(Some(&rollout("50")), outside, false, false, Stable);
        check(Some(&rollout("50")), outside, false, true, Candidate);
        check(Some(&rollout("100")), outside, false, false, Candidate);
        check(Some(&rollout("0")), inside, false, false, Stable);
        // No identity: stable.
        check(Some(&rollout("100")), None, false, false, Stable);
        // Halted: nobody gets the candidate; devices running it move back.
        check(Some(&halted("50")), inside, false, false, Stable);
        check(Some(&halted("50")), inside, false, true, StableAfterHalt);
        check(Some(&halted("50")), None, false, true, StableAfterHalt);
    }

    #[test]
    fn overrides_win_over_the_rollout() {
        let (inside, outside) = (identity(true), identity(false));
        for rollout in [rollout("50"), rollout("100"), rollout("0"), halted("50")] {
            for identity in [Some(&inside), Some(&outside), None] {
                for runs in [false, true] {
                    check(Some(&rollout), identity, true, runs, Serve::Unaffected);
                }
            }
        }
    }

    #[test]
    fn devices_reached_stay_reached_as_the_percentage_rises() {
        let mut current = rollout("1");
        let devices: Vec<_> =
            (0..2_000).map(|i| DeviceIdentity::from_eas_client_id(&format!("id-{i}")).unwrap()).collect();
        let reached = |rollout: &Rollout| -> Vec<bool> {
            devices
                .iter()
                .map(|identity| {
                    let device = RolloutCheck { identity: Some(identity), overridden: false, runs_candidate: false };
                    select_rollout(Some(rollout), &device) == Serve::Candidate
                })
                .collect()
        };
        let mut before = reached(&current);
        for step in ["5", "10", "33.3", "50", "99.99", "100"] {
            current = current.set_percent(RolloutPercent::parse(step).unwrap()).unwrap();
            let after = reached(&current);
            assert!(before.iter().zip(&after).all(|(was, is)| !was || *is), "a device left the rollout at {step}%");
            before = after;
        }
        assert!(before.iter().all(|reached| *reached));
    }
}

#[cfg(test)]
mod expo_tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::bucket::RolloutPercent;
    use crate::expo_release::{ExpoAsset, ExpoReleaseKind};
    use crate::ids::{AppId, ChannelName, Platform};
    use crate::rollout::{Halt, HaltCause, HaltPolicy, RolloutChange, RolloutId, RolloutSpec, StableTarget};

    fn release(id: &str, group: &str, platform: Platform, millis: i64) -> ExpoRelease {
        ExpoRelease {
            id: id.into(),
            group_id: group.into(),
            app_id: AppId::parse("com.example.app").unwrap(),
            channel: "production".into(),
            runtime_version: "1".into(),
            platform,
            created_at: DateTime::from_timestamp_millis(millis).unwrap(),
            message: String::new(),
            kind: ExpoReleaseKind::Update {
                launch_asset: ExpoAsset { sha256: "a".repeat(64), md5: "b".repeat(32), ext: "hbc".into() },
                assets: vec![],
                expo_client: "{}".into(),
            },
        }
    }

    fn stored(percent: &str, halted: bool, covers: Vec<(Platform, String)>) -> StoredRollout {
        let spec = RolloutSpec {
            id: RolloutId::parse("r1").unwrap(),
            app_id: AppId::parse("com.example.app").unwrap(),
            channel: ChannelName::parse("production").unwrap(),
            candidate: RolloutTarget::ExpoGroup("g-new".into()),
            stable: StableTarget::ExpoPrevious,
            percent: RolloutPercent::parse(percent).unwrap(),
            policy: HaltPolicy::default(),
        };
        let mut rollout = Rollout::start(spec, Utc::now()).unwrap();
        if halted {
            let halt = Halt { reason: "x".into(), at: Utc::now(), by: HaltCause::Automatic, figures: None };
            rollout = rollout.halt(halt).unwrap();
        }
        let last_change =
            RolloutChange { action: "start".into(), by: "t".into(), at: Utc::now(), reason: String::new() };
        StoredRollout { rollout, covers, last_change }
    }

    fn check(rollout: &StoredRollout, identity: Option<&str>, current: Option<&str>, platform: Platform) -> String {
        let releases = vec![
            release("old-ios", "g-old", Platform::Ios, 1),
            release("old-android", "g-old", Platform::Android, 1),
            release("new-ios", "g-new", Platform::Ios, 2),
            release("new-android", "g-new", Platform::Android, 2),
        ];
        let request = ExpoCheck {
            protocol: 1,
            platform,
            runtime_version: "1".into(),
            channel: "production".into(),
            current_update_id: current.map(str::to_owned),
            embedded_update_id: None,
        };
        let identity = identity.and_then(DeviceIdentity::from_eas_client_id);
        match select_expo_release_in_rollout(&releases, &request, Some(rollout), identity.as_ref()) {
            ExpoDecision::Serve(release) => release.id.clone(),
            ExpoDecision::NoUpdate => "no update".into(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn an_expo_rollout_serves_the_candidate_or_the_newest_release_outside_it() {
        let ios_only = vec![(Platform::Ios, "1".to_owned())];
        let client = Some("6f0d7a4e-0000-4000-8000-000000000001");
        assert_eq!(check(&stored("100", false, ios_only.clone()), client, None, Platform::Ios), "new-ios");
        assert_eq!(check(&stored("0", false, ios_only.clone()), client, None, Platform::Ios), "old-ios");
        // No EAS-Client-ID: stable. Running the candidate: it keeps it (no update).
        assert_eq!(check(&stored("100", false, ios_only.clone()), None, None, Platform::Ios), "old-ios");
        assert_eq!(check(&stored("0", false, ios_only.clone()), client, Some("new-ios"), Platform::Ios), "no update");
        // Not covered (Android here): the usual newest release.
        assert_eq!(check(&stored("0", false, ios_only.clone()), client, None, Platform::Android), "new-android");
        // Halted: the newest release outside the candidate, also to a device running the candidate.
        assert_eq!(check(&stored("100", true, ios_only.clone()), client, Some("new-ios"), Platform::Ios), "old-ios");
    }
}
