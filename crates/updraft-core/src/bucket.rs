//! Rollout bucketing: which devices a percentage rollout reaches, sticky and without any per-device state.
//!
//! A device's bucket is a number in `0..10_000` derived from a salted SHA-256 of (app, channel, rollout, device
//! identity); a rollout at `p` basis points reaches the buckets below `p`. So the same device always lands in the
//! same bucket of a rollout (on every instance, after every restart and upgrade), raising the percentage only adds
//! devices, and two rollouts (different salts) pick unrelated sets of devices.
//!
//! This module owns the identity a device is bucketed by and the percentage type; what a bucket means for the
//! answer (overrides, halts) is [`crate::rollout`]'s business.
//!
//! # The hash, exactly
//! The input is the ASCII text `updraft-rollout-v1\n{app}\n{channel}\n{rollout}\n{identity}` (none of the four
//! values can hold a newline: each is checked printable ASCII). The bucket is the first 8 bytes of its SHA-256,
//! read as a big-endian `u64`, modulo 10 000. Anyone can recompute it, for instance
//! `printf 'updraft-rollout-v1\ncom.example.app\nproduction\nr1\ndevice-1' | sha256sum`. Changing any part of this
//! moves every device of every running rollout, so the tests pin golden values.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::ids::{AppId, ChannelName, DeviceId};
use crate::rollout::{RolloutError, RolloutId};

/// The number of buckets: one per basis point of a percentage.
pub const BUCKETS: u32 = 10_000;

/// The identity a device is bucketed by: Capgo's `device_id` or Expo's `EAS-Client-ID` header.
///
/// Invariant: 1 to 128 printable ASCII characters, lowercase (both clients send a UUID, whose casing differs by
/// platform for `EAS-Client-ID`, so lowercasing keeps a device in one bucket whichever way it spells it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceIdentity(String);

impl DeviceIdentity {
    /// The identity of a Capgo device (its `device_id`, already lowercased by [`DeviceId::parse`]).
    pub fn from_device_id(device_id: &DeviceId) -> Self {
        Self(device_id.as_str().to_owned())
    }

    /// The identity of an Expo client from its `EAS-Client-ID` header, trimmed and lowercased.
    ///
    /// Returns `None` for an absent-like value (empty after trimming) or one that is not printable ASCII or is
    /// longer than 128 characters: such a request is served the stable release, like one without the header.
    pub fn from_eas_client_id(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        let ok = !trimmed.is_empty() && trimmed.len() <= 128 && trimmed.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(trimmed.to_ascii_lowercase()))
    }

    /// The identity as hashed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A rollout's share of devices, in basis points (1/100 of a percent), as Capgo's `rollout_percentage_bps`.
///
/// Invariant: `0..=10_000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RolloutPercent(u16);

impl RolloutPercent {
    /// Nobody.
    pub const ZERO: Self = Self(0);
    /// Everybody.
    pub const FULL: Self = Self(10_000);

    /// A percentage from basis points (`1250` is 12.5 %).
    ///
    /// # Errors
    /// [`RolloutError::InvalidPercent`] above 10 000.
    pub fn from_basis_points(basis_points: u32) -> Result<Self, RolloutError> {
        u16::try_from(basis_points)
            .ok()
            .filter(|bps| u32::from(*bps) <= BUCKETS)
            .map(Self)
            .ok_or_else(|| RolloutError::InvalidPercent(basis_points.to_string()))
    }

    /// Parses a percentage as an operator writes it: `10`, `12.5`, `0.01`, optionally followed by `%`, at most two
    /// decimals, from 0 to 100.
    ///
    /// # Errors
    /// [`RolloutError::InvalidPercent`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, RolloutError> {
        let invalid = || RolloutError::InvalidPercent(raw.to_owned());
        let text = raw.trim();
        let text = text.strip_suffix('%').unwrap_or(text);
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits_ok = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 3 || fraction.len() > 2 || !digits_ok(whole) || !digits_ok(fraction) {
            return Err(invalid());
        }
        if text.ends_with('.') {
            return Err(invalid());
        }
        let whole: u32 = whole.parse().map_err(|_| invalid())?;
        let fraction: u32 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
        Self::from_basis_points(whole * 100 + fraction).map_err(|_| invalid())
    }

    /// A percentage from a JSON number (`12.5`), from 0 to 100 with at most two decimals.
    ///
    /// # Errors
    /// [`RolloutError::InvalidPercent`] for anything else (NaN, out of range, finer than a basis point).
    pub fn from_percent(percent: f64) -> Result<Self, RolloutError> {
        let invalid = || RolloutError::InvalidPercent(percent.to_string());
        let basis_points = (percent * 100.0).round();
        if !percent.is_finite() || !(0.0..=100.0).contains(&percent) || (percent * 100.0 - basis_points).abs() > 1e-6 {
            return Err(invalid());
        }
        Self::from_basis_points(basis_points as u32).map_err(|_| invalid())
    }

    /// The basis points.
    pub fn basis_points(self) -> u16 {
        self.0
    }

    /// The percentage as a number (`12.5`), for JSON output.
    pub fn as_percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl fmt::Display for RolloutPercent {
    /// `12.5%`, `10%`, `0.01%`: the shortest exact form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, fraction) = (self.0 / 100, self.0 % 100);
        match fraction {
            0 => write!(f, "{whole}%"),
            _ if fraction % 10 == 0 => write!(f, "{whole}.{}%", fraction / 10),
            _ => write!(f, "{whole}.{fraction:02}%"),
        }
    }
}

/// The bucket (`0..10_000`) of a device in one rollout of one channel.
pub fn bucket(app_id: &AppId, channel: &ChannelName, rollout_id: &RolloutId, identity: &DeviceIdentity) -> u32 {
    let mut hasher = Sha256::new();
    for (index, part) in
        ["updraft-rollout-v1", app_id.as_str(), channel.as_str(), rollout_id.as_str(), identity.as_str()]
            .into_iter()
            .enumerate()
    {
        if index > 0 {
            hasher.update(b"\n");
        }
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 2^64 is not a multiple of 10 000, but the bias this leaves is below 10^-15 per bucket.
    let bucket = u64::from_be_bytes(first) % u64::from(BUCKETS);
    u32::try_from(bucket).unwrap_or(0)
}

/// Whether a bucket is inside a rollout at this percentage: the buckets below the basis points are.
pub fn in_rollout(bucket: u32, percent: RolloutPercent) -> bool {
    bucket < u32::from(percent.basis_points())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppId {
        AppId::parse("com.example.app").unwrap()
    }

    fn channel() -> ChannelName {
        ChannelName::parse("production").unwrap()
    }

    fn rollout(id: &str) -> RolloutId {
        RolloutId::parse(id).unwrap()
    }

    fn identity(raw: &str) -> DeviceIdentity {
        DeviceIdentity::from_eas_client_id(raw).unwrap()
    }

    fn ids(n: usize) -> Vec<DeviceIdentity> {
        (0..n).map(|i| identity(&format!("{i:08x}-6c1e-4a55-9f3a-2f0c9a3b7d21"))).collect()
    }

    #[test]
    fn buckets_are_pinned_golden_values() {
        // Recomputed with `printf 'updraft-rollout-v1\ncom.example.app\nproduction\nr1\ndevice-1' | sha256sum`:
        // a change here moves every device of every running rollout.
        assert_eq!(bucket(&app(), &channel(), &rollout("r1"), &identity("device-1")), GOLDEN_DEVICE_1);
        assert_eq!(bucket(&app(), &channel(), &rollout("r1"), &identity("device-2")), GOLDEN_DEVICE_2);
    }

    const GOLDEN_DEVICE_1: u32 = 9_669;
    const GOLDEN_DEVICE_2: u32 = 7_801;

    #[test]
    fn buckets_are_stable_for_the_same_inputs() {
        for device in ids(100) {
            let first = bucket(&app(), &channel(), &rollout("r1"), &device);
            assert_eq!(bucket(&app(), &channel(), &rollout("r1"), &device.clone()), first);
            assert!(first < BUCKETS);
        }
    }

    #[test]
    fn eas_client_id_casing_does_not_move_a_device() {
        let lower = identity("0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21");
        let upper = identity(" 0F6B3E1C-6C1E-4A55-9F3A-2F0C9A3B7D21 ");
        assert_eq!(lower, upper);
        let capgo = DeviceIdentity::from_device_id(&DeviceId::parse("0F6B3E1C-6C1E-4A55-9F3A-2F0C9A3B7D21").unwrap());
        assert_eq!(capgo, lower);
    }

    #[test]
    fn unusable_eas_client_ids_give_no_identity() {
        for raw in ["", "   ", "has space", "caf\u{e9}", &"a".repeat(129)] {
            assert_eq!(DeviceIdentity::from_eas_client_id(raw), None, "{raw:?}");
        }
        assert!(DeviceIdentity::from_eas_client_id(&"a".repeat(128)).is_some());
    }

    #[test]
    fn raising_the_percentage_only_adds_devices() {
        let steps =
            [0, 1, 100, 1_000, 2_500, 5_000, 9_999, 10_000].map(|bps| RolloutPercent::from_basis_points(bps).unwrap());
        for device in ids(2_000) {
            let device_bucket = bucket(&app(), &channel(), &rollout("r1"), &device);
            for pair in steps.windows(2) {
                if in_rollout(device_bucket, pair[0]) {
                    assert!(in_rollout(device_bucket, pair[1]), "{device:?} left at {} -> {}", pair[0], pair[1]);
                }
            }
        }
        let ten = RolloutPercent::parse("10").unwrap();
        let fifty = RolloutPercent::parse("50").unwrap();
        let in_at_ten: Vec<_> = ids(10_000)
            .into_iter()
            .filter(|d| in_rollout(bucket(&app(), &channel(), &rollout("r1"), d), ten))
            .collect();
        assert!(!in_at_ten.is_empty());
        assert!(in_at_ten.iter().all(|d| in_rollout(bucket(&app(), &channel(), &rollout("r1"), d), fifty)));
    }

    #[test]
    fn shares_are_within_two_points_of_the_target_over_10_000_ids() {
        let devices = ids(10_000);
        for target in ["0", "1", "5", "10", "25", "50", "75", "90", "99", "100"] {
            let percent = RolloutPercent::parse(target).unwrap();
            let reached =
                devices.iter().filter(|d| in_rollout(bucket(&app(), &channel(), &rollout("r1"), d), percent)).count();
            let share = reached as f64 / devices.len() as f64 * 100.0;
            assert!((share - percent.as_percent()).abs() <= 2.0, "target {target}%: reached {share}%");
        }
        let none = RolloutPercent::ZERO;
        let all = RolloutPercent::FULL;
        assert!(devices.iter().all(|d| {
            let b = bucket(&app(), &channel(), &rollout("r1"), d);
            !in_rollout(b, none) && in_rollout(b, all)
        }));
    }

    #[test]
    fn each_rollout_salts_its_own_buckets() {
        let devices = ids(10_000);
        let percent = RolloutPercent::parse("10").unwrap();
        let reached = |salt: &RolloutId, channel: &ChannelName, app: &AppId| -> Vec<bool> {
            devices.iter().map(|d| in_rollout(bucket(app, channel, salt, d), percent)).collect()
        };
        let first = reached(&rollout("r1"), &channel(), &app());
        for other in [
            reached(&rollout("r2"), &channel(), &app()),
            reached(&rollout("r1"), &ChannelName::parse("beta").unwrap(), &app()),
            reached(&rollout("r1"), &channel(), &AppId::parse("com.example.other").unwrap()),
        ] {
            // Independent 10 % samples overlap on about 1 % of devices; the same sample would overlap on 10 %.
            let both = first.iter().zip(&other).filter(|(a, b)| **a && **b).count();
            assert!(both < 300, "{both} devices in both rollouts");
        }
    }

    #[test]
    fn percentages_parse_and_print() {
        for (raw, bps, shown) in [
            ("10", 1_000, "10%"),
            ("12.5", 1_250, "12.5%"),
            ("0.01", 1, "0.01%"),
            ("100%", 10_000, "100%"),
            (" 0 ", 0, "0%"),
            ("33.33", 3_333, "33.33%"),
        ] {
            let percent = RolloutPercent::parse(raw).unwrap();
            assert_eq!((percent.basis_points(), percent.to_string().as_str()), (bps, shown), "{raw:?}");
        }
        for raw in ["", "100.01", "101", "-1", "1.234", "1.", ".5", "ten", "1e2", "1,5"] {
            assert!(matches!(RolloutPercent::parse(raw), Err(RolloutError::InvalidPercent(_))), "{raw:?}");
        }
        for (number, bps) in [(10.0, 1_000), (12.5, 1_250), (0.01, 1), (100.0, 10_000), (0.0, 0), (33.33, 3_333)] {
            assert_eq!(RolloutPercent::from_percent(number).unwrap().basis_points(), bps, "{number}");
        }
        for number in [-1.0, 100.01, 1.234, f64::NAN, f64::INFINITY] {
            assert!(RolloutPercent::from_percent(number).is_err(), "{number}");
        }
        assert!(RolloutPercent::from_basis_points(10_001).is_err());
        assert!(RolloutPercent::from_basis_points(70_000).is_err());
    }
}
