//! Release health and the rule that halts a rollout by itself.
//!
//! The figures are two counts for the rollout's candidate: the devices that ran it and, of those, the devices that
//! reported a failure of it (how each protocol's reports are counted is the server's business). The rule halts when
//! the candidate's failure rate is *confidently* above the maximum: the lower bound of the 95 % Wilson score
//! interval of failures / devices exceeds `max_failure_rate`, once at least `min_devices` devices ran it. A lower
//! bound, not the raw rate, keeps a handful of early failures from halting a healthy release, and the interval
//! stays meaningful for rates near 0, where the normal approximation does not.
//!
//! This module only decides; running the decision (every few seconds while a rollout is active) and recording
//! the halt belong to the server, and the state change itself to [`crate::rollout`].

use std::fmt;

/// The normal quantile of a two-sided 95 % interval.
pub const WILSON_Z_95: f64 = 1.959964;

/// The default `--max-failure-rate`: 5 % of devices failing.
///
/// A bundle that fails to load on one device in twenty is broken for a real share of users, while 5 % stays well
/// above the background of failed downloads on bad networks, which are counted as failures too.
pub const DEFAULT_MAX_FAILURE_RATE: f64 = 0.05;

/// The default `--min-devices`: 50 devices.
///
/// Below 50 the interval is too wide to tell a bad release from bad luck. With both defaults the rollout halts at
/// 6 failures among 50 devices (12 %), 10 among 100, 17 among 200 and 64 among 1 000 (6.4 %): the larger the
/// sample, the closer the observed rate may come to the maximum before the rule is sure.
pub const DEFAULT_MIN_DEVICES: u64 = 50;

/// A rollout's health figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthFigures {
    /// Devices that ran the candidate.
    pub devices: u64,
    /// Of those, devices that reported a failure of it.
    pub failures: u64,
}

impl HealthFigures {
    /// Failures / devices, 0 without devices; failures beyond the devices count as all of them.
    pub fn failure_rate(&self) -> f64 {
        if self.devices == 0 { 0.0 } else { self.failures.min(self.devices) as f64 / self.devices as f64 }
    }

    /// The lower bound of the 95 % Wilson interval of the failure rate ([`wilson_lower_bound`]).
    pub fn lower_bound(&self) -> f64 {
        wilson_lower_bound(self.failures, self.devices)
    }
}

/// Why the rule halted a rollout, with the figures it saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HaltReason {
    /// The figures.
    pub figures: HealthFigures,
    /// Their observed failure rate.
    pub failure_rate: f64,
    /// The lower bound of its 95 % Wilson interval, which exceeded `max_failure_rate`.
    pub lower_bound: f64,
    /// The rollout's maximum failure rate.
    pub max_failure_rate: f64,
    /// The rollout's minimum number of devices.
    pub min_devices: u64,
}

impl fmt::Display for HaltReason {
    /// `6 of 50 devices failed (12.0%); the 95% lower bound 5.6% exceeds the maximum 5.0%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} devices failed ({:.1}%); the 95% lower bound {:.1}% exceeds the maximum {:.1}%",
            self.figures.failures.min(self.figures.devices),
            self.figures.devices,
            self.failure_rate * 100.0,
            self.lower_bound * 100.0,
            self.max_failure_rate * 100.0,
        )
    }
}

/// The lower bound of the 95 % Wilson score interval for `failures` out of `devices`, in `0.0..=1.0`; 0 without
/// devices or without failures. Failures beyond the devices count as all of them.
pub fn wilson_lower_bound(failures: u64, devices: u64) -> f64 {
    if devices == 0 || failures == 0 {
        // Exactly 0 (the formula leaves rounding dust), so a maximum of 0 halts on the first failure, not before.
        return 0.0;
    }
    let n = devices as f64;
    let rate = failures.min(devices) as f64 / n;
    let z_squared = WILSON_Z_95 * WILSON_Z_95;
    let centre = rate + z_squared / (2.0 * n);
    let margin = WILSON_Z_95 * (rate * (1.0 - rate) / n + z_squared / (4.0 * n * n)).sqrt();
    ((centre - margin) / (1.0 + z_squared / n)).clamp(0.0, 1.0)
}

/// The halt rule: `Some` when at least `min_devices` devices ran the candidate and the lower bound of the 95 %
/// Wilson interval of its failure rate is strictly above `max_failure_rate`.
///
/// A `max_failure_rate` of 1 never halts; a NaN one never halts either (rollouts check it on the way in).
pub fn should_halt(devices: u64, failures: u64, max_failure_rate: f64, min_devices: u64) -> Option<HaltReason> {
    let figures = HealthFigures { devices, failures };
    let lower_bound = figures.lower_bound();
    (devices >= min_devices && lower_bound > max_failure_rate).then(|| HaltReason {
        figures,
        failure_rate: figures.failure_rate(),
        lower_bound,
        max_failure_rate,
        min_devices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_lower_bounds_match_hand_computed_values() {
        // (failures, devices, bound): computed by hand from (p + z²/2n − z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n).
        for (failures, devices, expected) in [
            (10, 100, 0.055_229_136_805),
            (5, 50, 0.043_475_764_657),
            (1, 1, 1.0 / (1.0 + WILSON_Z_95 * WILSON_Z_95)),
            (50, 50, 50.0 / (50.0 + WILSON_Z_95 * WILSON_Z_95)),
            (30, 1_000, 0.021_093_738_771),
            (0, 10, 0.0),
            (0, 0, 0.0),
            (3, 0, 0.0),
        ] {
            let bound = wilson_lower_bound(failures, devices);
            assert!((bound - expected).abs() < 1e-9, "{failures}/{devices}: {bound} != {expected}");
        }
        assert_eq!(wilson_lower_bound(80, 50), wilson_lower_bound(50, 50), "failures beyond devices count as all");
    }

    fn check(devices: u64, failures: u64, max_failure_rate: f64, min_devices: u64, halts: bool) {
        let decision = should_halt(devices, failures, max_failure_rate, min_devices);
        assert_eq!(
            decision.is_some(),
            halts,
            "{failures}/{devices}, max {max_failure_rate}, min {min_devices}: {decision:?}"
        );
        if let Some(reason) = decision {
            assert_eq!(reason.figures, HealthFigures { devices, failures });
            assert!(reason.lower_bound > max_failure_rate);
            assert_eq!((reason.max_failure_rate, reason.min_devices), (max_failure_rate, min_devices));
        }
    }

    #[test]
    fn the_halt_rule_on_failure_streams() {
        let (max, min) = (DEFAULT_MAX_FAILURE_RATE, DEFAULT_MIN_DEVICES);
        // Below the threshold: a healthy release, and one whose raw rate is above 5 % but not confidently so.
        check(1_000, 10, max, min, false);
        check(100, 9, max, min, false);
        check(50, 5, max, min, false);
        // Above it.
        check(100, 10, max, min, true);
        check(50, 6, max, min, true);
        check(1_000, 64, max, min, true);
        check(1_000, 63, max, min, false);
        check(200, 200, max, min, true);
        // Too few devices, however bad.
        check(49, 49, max, min, false);
        check(10, 9, max, min, false);
        // Exactly the minimum number of devices counts.
        check(50, 50, max, min, true);
        // Zero devices, and zero failures, never halt, even with a zero minimum and maximum.
        check(0, 0, 0.0, 0, false);
        check(500, 0, 0.0, 0, false);
        check(500, 1, 0.0, 0, true);
        // A maximum of 1 never halts.
        check(500, 500, 1.0, 0, false);
        check(500, 500, f64::NAN, 0, false);
    }

    #[test]
    fn a_bound_equal_to_the_maximum_does_not_halt() {
        for (devices, failures) in [(100, 10), (50, 6), (1_000, 64)] {
            let boundary = wilson_lower_bound(failures, devices);
            check(devices, failures, boundary, 0, false);
            check(devices, failures, boundary - 1e-12, 0, true);
        }
    }

    #[test]
    fn a_stream_of_reports_halts_once_the_evidence_is_in() {
        // Devices report one by one, one in eight failing: the rule holds off until the minimum, then halts.
        let mut first_halt = None;
        for devices in 1..=400u64 {
            let failures = devices / 8;
            if should_halt(devices, failures, DEFAULT_MAX_FAILURE_RATE, DEFAULT_MIN_DEVICES).is_some() {
                first_halt.get_or_insert(devices);
            }
        }
        let first_halt = first_halt.expect("12.5 % failures must halt");
        assert!((DEFAULT_MIN_DEVICES..=100).contains(&first_halt), "halted at {first_halt} devices");
        // And a stream at 2 % never halts.
        assert!((1..=5_000u64).all(|devices| should_halt(devices, devices / 50, 0.05, 50).is_none()));
    }

    #[test]
    fn the_reason_reads_with_its_figures() {
        let reason = should_halt(50, 6, 0.05, 50).unwrap();
        assert_eq!(
            reason.to_string(),
            "6 of 50 devices failed (12.0%); the 95% lower bound 5.6% exceeds the maximum 5.0%"
        );
        assert_eq!(HealthFigures { devices: 50, failures: 6 }.failure_rate(), 0.12);
        assert_eq!(HealthFigures::default().failure_rate(), 0.0);
    }
}
