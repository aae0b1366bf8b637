//! The release-health signals of one device, packed in one buffer, so they travel with the device's report through
//! the write-behind map: one entry, one hash and one lock per check, whatever the number of signals.
//!
//! What the signals are and what the store keeps of them is [`crate::release_health`]; this module only packs them,
//! folds the signals of two checks of one device together ([`HealthSignals::absorb`]) and unpacks them into
//! [`HealthObservation`]s for the writer.

use chrono::{DateTime, Utc};

use crate::ids::{AppId, DeviceId};
use crate::release_health::{FAILURE_DETAIL_MAX_BYTES, HealthObservation, HealthProtocol, HealthSignal};

/// One signal, borrowed, ready to be packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSignalRef<'a> {
    /// What it says.
    pub signal: HealthSignal,
    /// The release's protocol.
    pub protocol: HealthProtocol,
    /// Release: a Capgo version name, or an Expo update id (cut at 255 bytes).
    pub release: &'a str,
    /// The channel the check resolved, empty when unknown (cut at 255 bytes).
    pub channel: &'a str,
    /// For a failure, how it failed (cut at [`FAILURE_DETAIL_MAX_BYTES`]).
    pub detail: &'a str,
    /// When the gateway received it.
    pub at: DateTime<Utc>,
}

/// Signals of one device, at most one per (signal, protocol, release): a newer signal of the same key replaces the
/// older one, as the writer's merge would.
///
/// Layout: the number of signals `n` (two bytes, little endian), their times (`n` × 8 bytes, milliseconds, little endian), then per
/// signal `[signal][protocol][release len][release][channel len][channel][detail len: 2 bytes][detail]`. So
/// [`Self::content`], everything but the times, is one slice. Built only by [`Self::pack`] (and [`Self::absorb`]),
/// so the layout holds; no signal at all is an empty buffer (no allocation).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HealthSignals(Box<[u8]>);

/// Signals kept per device at most: far more than a device names (a handful per check, one per release it was
/// offered, runs or failed on while its report waited); past it, further keys are left out.
pub const MAX_SIGNALS: usize = u16::MAX as usize;

impl HealthSignals {
    /// Packs signals (one allocation), the later of two with the same (signal, protocol, release) winning.
    pub fn pack(signals: &[HealthSignalRef<'_>]) -> Self {
        let mut kept: Vec<HealthSignalRef<'_>> = Vec::with_capacity(signals.len());
        for signal in signals {
            let signal = HealthSignalRef {
                release: cut(signal.release, 255),
                channel: cut(signal.channel, 255),
                detail: cut(signal.detail, FAILURE_DETAIL_MAX_BYTES),
                ..*signal
            };
            if let Some(old) = kept.iter_mut().find(|old| same_key(old, &signal)) {
                *old = signal;
            } else if kept.len() < MAX_SIGNALS {
                kept.push(signal);
            }
        }
        if kept.is_empty() {
            return Self::default();
        }
        let size = 2 + kept
            .iter()
            .map(|s| 8 + 2 + 1 + s.release.len() + 1 + s.channel.len() + 2 + s.detail.len())
            .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&u16::try_from(kept.len()).unwrap_or(u16::MAX).to_le_bytes());
        for signal in &kept {
            out.extend_from_slice(&signal.at.timestamp_millis().to_le_bytes());
        }
        for signal in &kept {
            out.push(signal.signal as u8);
            out.push(signal.protocol as u8);
            // Cut to 255 bytes above, and the detail to 1 024.
            out.push(u8::try_from(signal.release.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(signal.release.as_bytes());
            out.push(u8::try_from(signal.channel.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(signal.channel.as_bytes());
            out.extend_from_slice(&u16::try_from(signal.detail.len()).unwrap_or(u16::MAX).to_le_bytes());
            out.extend_from_slice(signal.detail.as_bytes());
        }
        debug_assert_eq!(out.len(), size);
        Self(out.into_boxed_slice())
    }

    /// No signal.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of signals.
    pub fn len(&self) -> usize {
        match *self.0 {
            [low, high, ..] => usize::from(u16::from_le_bytes([low, high])),
            _ => 0,
        }
    }

    /// What the signals say, without their times: two checks with equal content differ only in when they came.
    pub fn content(&self) -> &[u8] {
        self.0.get(2 + 8 * self.len()..).unwrap_or_default()
    }

    /// The signals, in the order packed.
    pub fn iter(&self) -> impl Iterator<Item = HealthSignalRef<'_>> + '_ {
        let n = self.len();
        let mut rest = self.content();
        (0..n).map(move |index| {
            let start = 2 + 8 * index;
            let at = i64::from_le_bytes(self.0[start..start + 8].try_into().unwrap_or_default());
            let signal = match rest[0] {
                0 => HealthSignal::Offered,
                1 => HealthSignal::Running,
                _ => HealthSignal::Failed,
            };
            let protocol = if rest[1] == 0 { HealthProtocol::Capgo } else { HealthProtocol::Expo };
            let release_len = usize::from(rest[2]);
            let release = text(&rest[3..3 + release_len]);
            rest = &rest[3 + release_len..];
            let channel_len = usize::from(rest[0]);
            let channel = text(&rest[1..1 + channel_len]);
            rest = &rest[1 + channel_len..];
            let detail_len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
            let detail = text(&rest[2..2 + detail_len]);
            rest = &rest[2 + detail_len..];
            HealthSignalRef {
                signal,
                protocol,
                release,
                channel,
                detail,
                at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
            }
        })
    }

    /// Folds in the signals of an older check of the same device that this one does not repeat (a check that was
    /// offered a release, then one that runs it: both are kept); of a (signal, protocol, release) both have, this
    /// one's (the newer) stays.
    pub fn absorb(&mut self, older: &Self) {
        if older.is_empty() {
            return;
        }
        let mine: Vec<HealthSignalRef<'_>> = self.iter().collect();
        let mut all: Vec<HealthSignalRef<'_>> =
            older.iter().filter(|old| !mine.iter().any(|new| same_key(old, new))).collect();
        if all.is_empty() {
            return;
        }
        all.extend(mine);
        let packed = Self::pack(&all);
        *self = packed;
    }

    /// The signals as observations of `device_id` in `app_id` (in the writer).
    pub fn observations<'a>(
        &'a self,
        app_id: &'a AppId,
        device_id: &'a DeviceId,
    ) -> impl Iterator<Item = HealthObservation> + 'a {
        self.iter().map(move |signal| HealthObservation {
            signal: signal.signal,
            protocol: signal.protocol,
            app_id: app_id.clone(),
            device_id: device_id.clone(),
            release: signal.release.to_owned(),
            channel: signal.channel.to_owned(),
            detail: signal.detail.to_owned(),
            at: signal.at,
        })
    }
}

impl std::fmt::Debug for HealthSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Packed from `&str`s, so always UTF-8 (cut at character boundaries).
fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn same_key(a: &HealthSignalRef<'_>, b: &HealthSignalRef<'_>) -> bool {
    a.signal == b.signal && a.protocol == b.protocol && a.release == b.release
}

/// The longest prefix of `text` of at most `max` bytes that ends at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn signal<'a>(signal: HealthSignal, release: &'a str, channel: &'a str, seconds: i64) -> HealthSignalRef<'a> {
        HealthSignalRef { signal, protocol: HealthProtocol::Capgo, release, channel, detail: "", at: at(seconds) }
    }

    #[test]
    fn signals_unpack_to_what_was_packed() {
        let long = "é".repeat(700);
        let failed = HealthSignalRef {
            signal: HealthSignal::Failed,
            protocol: HealthProtocol::Expo,
            release: "0b9d3b1e-6f1c-4f77-9a3c-1f2e3d4c5b6a",
            channel: "production",
            detail: &long,
            at: at(5),
        };
        let offered = signal(HealthSignal::Offered, "1.0.1", "", 6);
        let packed = HealthSignals::pack(&[failed, offered]);
        let unpacked: Vec<HealthSignalRef<'_>> = packed.iter().collect();
        let cut_failed = HealthSignalRef { detail: &long[..1024], ..failed };
        assert_eq!(unpacked, [cut_failed, offered], "the detail cut at 1 024 bytes, on a character boundary");
        assert_eq!(packed.len(), 2);
        assert!(HealthSignals::pack(&[]).is_empty());
        assert_eq!(HealthSignals::pack(&[]).iter().count(), 0);
    }

    #[test]
    fn the_content_ignores_the_times_but_not_what_the_signals_say() {
        let content = |signals: &[HealthSignalRef<'_>]| HealthSignals::pack(signals).content().to_vec();
        let base = content(&[signal(HealthSignal::Offered, "1.0.1", "production", 0)]);
        assert_eq!(base, content(&[signal(HealthSignal::Offered, "1.0.1", "production", 60)]));
        assert_ne!(base, content(&[signal(HealthSignal::Running, "1.0.1", "production", 0)]));
        assert_ne!(base, content(&[signal(HealthSignal::Offered, "1.0.2", "production", 0)]));
        assert_ne!(base, content(&[signal(HealthSignal::Offered, "1.0.1", "beta", 0)]));
        assert_ne!(base, content(&[]));
    }

    #[test]
    fn absorbing_an_older_check_keeps_every_key_once_with_its_newest_signal() {
        let mut newer = HealthSignals::pack(&[
            signal(HealthSignal::Running, "1.0.1", "production", 20),
            signal(HealthSignal::Offered, "1.0.2", "production", 20),
        ]);
        let older = HealthSignals::pack(&[
            signal(HealthSignal::Offered, "1.0.1", "production", 10),
            signal(HealthSignal::Offered, "1.0.2", "beta", 10),
        ]);
        newer.absorb(&older);
        let kept: Vec<HealthSignalRef<'_>> = newer.iter().collect();
        assert_eq!(
            kept,
            [
                signal(HealthSignal::Offered, "1.0.1", "production", 10),
                signal(HealthSignal::Running, "1.0.1", "production", 20),
                signal(HealthSignal::Offered, "1.0.2", "production", 20),
            ]
        );
        // Absorbing again changes nothing: the size is bounded by the distinct keys, not by the checks.
        let before = newer.clone();
        for _ in 0..100 {
            newer.absorb(&before.clone());
        }
        assert_eq!(newer, before);
    }

    #[test]
    fn observations_name_the_device() {
        let app = AppId::parse("com.example.app").unwrap();
        let device = DeviceId::parse("d1").unwrap();
        let packed = HealthSignals::pack(&[signal(HealthSignal::Offered, "1.0.1", "production", 3)]);
        let observations: Vec<HealthObservation> = packed.observations(&app, &device).collect();
        assert_eq!(
            observations,
            [HealthObservation {
                signal: HealthSignal::Offered,
                protocol: HealthProtocol::Capgo,
                app_id: app.clone(),
                device_id: device.clone(),
                release: "1.0.1".into(),
                channel: "production".into(),
                detail: String::new(),
                at: at(3),
            }]
        );
    }
}
