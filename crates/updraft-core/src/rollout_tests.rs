//! Tests of the rollout model: validated values and every transition, allowed or refused.

use chrono::{DateTime, Duration, Utc};

use super::*;

fn time(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap() + Duration::minutes(minutes)
}

fn version(raw: &str) -> BundleVersion {
    BundleVersion::parse(raw).unwrap()
}

fn spec(candidate: RolloutTarget, stable: StableTarget) -> RolloutSpec {
    RolloutSpec {
        id: RolloutId::parse("r1").unwrap(),
        app_id: AppId::parse("com.example.app").unwrap(),
        channel: ChannelName::parse("production").unwrap(),
        candidate,
        stable,
        percent: RolloutPercent::parse("10").unwrap(),
        policy: HaltPolicy::default(),
    }
}

fn capgo() -> Rollout {
    let spec = spec(RolloutTarget::CapgoBundle(version("1.1.0")), StableTarget::CapgoBundle(version("1.0.0")));
    Rollout::start(spec, time(0)).unwrap()
}

fn operator_halt(minutes: i64) -> Halt {
    Halt {
        reason: "crash reports".into(),
        at: time(minutes),
        by: HaltCause::Operator("release-bot".into()),
        figures: None,
    }
}

fn percent(raw: &str) -> RolloutPercent {
    RolloutPercent::parse(raw).unwrap()
}

#[test]
fn a_rollout_starts_active_with_what_it_was_given() {
    let rollout = capgo();
    assert_eq!(rollout.state(), &RolloutState::Active);
    assert_eq!((rollout.started_at(), rollout.health_since()), (time(0), time(0)));
    assert_eq!((rollout.candidate().label(), rollout.stable().label()), ("1.1.0", "1.0.0"));
    assert_eq!(rollout.percent(), percent("10"));
    assert_eq!(rollout.policy(), HaltPolicy::new(0.05, 50).unwrap());
    assert_eq!(rollout_state_label(Some(&rollout)), "active");
    assert_eq!(rollout_state_label(None), "none");
}

#[test]
fn candidate_and_stable_must_fit_together() {
    let expo =
        spec(RolloutTarget::ExpoGroup("5f3c9a3b-6c1e-4a55-9f3a-2f0c9a3b7d21".into()), StableTarget::ExpoPrevious);
    assert!(Rollout::start(expo, time(0)).is_ok());
    let builtin = spec(RolloutTarget::CapgoBundle(version("1.1.0")), StableTarget::Builtin);
    assert!(Rollout::start(builtin, time(0)).is_ok());
    for (candidate, stable) in [
        (RolloutTarget::CapgoBundle(version("1.1.0")), StableTarget::ExpoPrevious),
        (RolloutTarget::ExpoGroup("g".into()), StableTarget::Builtin),
        (RolloutTarget::ExpoGroup("g".into()), StableTarget::CapgoBundle(version("1.0.0"))),
    ] {
        let refused = Rollout::start(spec(candidate, stable), time(0));
        assert!(matches!(refused, Err(RolloutError::MixedProtocols { .. })), "{refused:?}");
    }
    let same = spec(RolloutTarget::CapgoBundle(version("1.0.0")), StableTarget::CapgoBundle(version("1.0.0")));
    assert_eq!(Rollout::start(same, time(0)), Err(RolloutError::CandidateIsStable("1.0.0".into())));
}

#[test]
fn rollout_ids_and_policies_are_checked() {
    assert_eq!(RolloutId::parse("7D1E0C52-3B8F_x").unwrap().as_str(), "7d1e0c52-3b8f_x");
    for raw in ["", "has space", "a/b", "é", &"a".repeat(65)] {
        assert!(matches!(RolloutId::parse(raw), Err(RolloutError::InvalidId(_))), "{raw:?}");
    }
    assert!(HaltPolicy::new(0.0, 0).is_ok());
    assert!(HaltPolicy::new(1.0, 10_000).is_ok());
    for rate in [-0.01, 1.01, f64::NAN, f64::INFINITY] {
        assert!(matches!(HaltPolicy::new(rate, 50), Err(RolloutError::InvalidMaxFailureRate(_))), "{rate}");
    }
}

#[test]
fn the_percentage_only_goes_up_while_active() {
    let rollout = capgo();
    let raised = rollout.set_percent(percent("50")).unwrap();
    assert_eq!(raised.percent(), percent("50"));
    assert_eq!(raised.set_percent(percent("50")).unwrap(), raised, "the same percentage changes nothing");
    assert_eq!(
        raised.set_percent(percent("25")),
        Err(RolloutError::PercentLowered { current: percent("50"), asked: percent("25") })
    );
    let halted = raised.halt(operator_halt(5)).unwrap();
    assert_eq!(halted.set_percent(percent("60")), Err(RolloutError::Halted));
    let completed = raised.complete(time(9)).unwrap();
    assert_eq!(completed.set_percent(percent("60")), Err(RolloutError::Completed));
}

#[test]
fn halting_resuming_and_completing_follow_the_state_machine() {
    let rollout = capgo();
    let halted = rollout.halt(operator_halt(5)).unwrap();
    assert_eq!(halted.state(), &RolloutState::Halted(operator_halt(5)));
    assert_eq!(halted.halt(operator_halt(6)), Err(RolloutError::AlreadyHalted));
    assert_eq!(rollout.resume(time(6)), Err(RolloutError::NotHalted));

    let resumed = halted.resume(time(7)).unwrap();
    assert!(resumed.is_active());
    assert_eq!((resumed.started_at(), resumed.health_since()), (time(0), time(7)));
    assert_eq!(resumed.percent(), rollout.percent());

    for from in [&rollout, &halted] {
        let completed = from.complete(time(9)).unwrap();
        assert_eq!(completed.state(), &RolloutState::Completed { at: time(9) });
        assert_eq!(completed.complete(time(10)), Err(RolloutError::Completed));
        assert_eq!(completed.halt(operator_halt(10)), Err(RolloutError::Completed));
        assert_eq!(completed.resume(time(10)), Err(RolloutError::Completed));
    }
}

#[test]
fn the_health_check_halts_an_active_rollout_by_itself() {
    let rollout = capgo();
    assert_eq!(rollout.check_health(1_000, 10, time(1)), None, "1 % failures is healthy");
    assert_eq!(rollout.check_health(40, 40, time(1)), None, "too few devices");
    let (halted, reason) = rollout.check_health(100, 20, time(2)).unwrap();
    let RolloutState::Halted(halt) = halted.state() else { panic!("{halted:?}") };
    assert_eq!((halt.by.clone(), halt.at, halt.reason.clone()), (HaltCause::Automatic, time(2), reason.to_string()));
    assert_eq!(reason.figures.failures, 20);
    // Only an active rollout is checked: a halted or completed one is left as it is.
    assert_eq!(halted.check_health(100, 50, time(3)), None);
    assert_eq!(rollout.complete(time(3)).unwrap().check_health(100, 50, time(4)), None);
    // Its own policy decides.
    let strict = Rollout::start(RolloutSpec { policy: HaltPolicy::new(0.001, 10).unwrap(), ..rollout_spec() }, time(0));
    assert!(strict.unwrap().check_health(1_000, 10, time(1)).is_some());
}

fn rollout_spec() -> RolloutSpec {
    spec(RolloutTarget::CapgoBundle(version("1.1.0")), StableTarget::CapgoBundle(version("1.0.0")))
}

#[test]
fn rollout_errors_become_failures_with_their_codes() {
    for (error, kind, code) in [
        (RolloutError::InvalidPercent("101".into()), FailureKind::Invalid, codes::INVALID_ROLLOUT_PERCENT),
        (RolloutError::InvalidId("".into()), FailureKind::Invalid, codes::INVALID_ROLLOUT_ID),
        (RolloutError::CandidateIsStable("1.0.0".into()), FailureKind::Invalid, codes::CANDIDATE_IS_STABLE),
        (
            RolloutError::PercentLowered { current: percent("50"), asked: percent("25") },
            FailureKind::Conflict,
            codes::ROLLOUT_PERCENT_LOWERED,
        ),
        (RolloutError::AlreadyHalted, FailureKind::Conflict, codes::ROLLOUT_ALREADY_HALTED),
        (RolloutError::Completed, FailureKind::Conflict, codes::ROLLOUT_COMPLETED),
    ] {
        let message = error.to_string();
        let failure = Failure::from(error);
        assert_eq!((failure.kind, failure.code, failure.message), (kind, code, message));
    }
    let lowered = RolloutError::PercentLowered { current: percent("50"), asked: percent("12.5") };
    assert_eq!(
        lowered.to_string(),
        "the rollout is at 50%; a percentage only goes up (to 12.5% asked): halt the rollout to stop offering its candidate"
    );
}
