//! Version arithmetic the rules need: coercing a native `version_build` to semver the way Capgo does, and the
//! plugin-version thresholds at which the wire changes.

/// Coerces a native app version to semver like Capgo's `parsePluginBody`: `1` → `1.0.0`, `1.2` → `1.2.0`, a leading
/// `v` is dropped; anything else must already be semver.
///
/// Returns `None` when the value cannot be read as a version.
pub fn coerce_version_build(raw: &str) -> Option<semver::Version> {
    let trimmed = raw.trim();
    let trimmed = trimmed.strip_prefix(['v', 'V']).unwrap_or(trimmed);
    if let Ok(version) = semver::Version::parse(trimmed) {
        return Some(version);
    }
    // Split off any pre-release/build suffix, pad the numeric core to three parts, and try again.
    let core_end = trimmed.find(['-', '+']).unwrap_or(trimmed.len());
    let (core, suffix) = trimmed.split_at(core_end);
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.is_empty()
        || numbers.len() > 3
        || numbers.iter().any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut padded = numbers.join(".");
    for _ in numbers.len()..3 {
        padded.push_str(".0");
    }
    semver::Version::parse(&format!("{padded}{suffix}")).ok()
}

/// The version of `@capgo/capacitor-updater` a device runs, which decides several wire details.
///
/// Invariant: strict `x.y.z` (Capgo requires it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginVersion(semver::Version);

impl PluginVersion {
    /// Parses a plugin version (strict semver, pre-release allowed).
    pub fn parse(raw: &str) -> Option<Self> {
        semver::Version::parse(raw.trim()).ok().map(Self)
    }

    /// The parsed version.
    pub fn semver(&self) -> &semver::Version {
        &self.0
    }

    fn at_least(&self, major: u64, minor: u64, patch: u64) -> bool {
        (self.0.major, self.0.minor, self.0.patch) >= (major, minor, patch)
    }

    /// Per-major threshold: true when this version is at or above the threshold for its own major line.
    /// Majors above 7 have every feature; majors below 5 have none.
    fn reaches(&self, v5: (u64, u64), v6: (u64, u64), v7: (u64, u64)) -> bool {
        match self.0.major {
            0..=4 => false,
            5 => self.at_least(5, v5.0, v5.1),
            6 => self.at_least(6, v6.0, v6.1),
            7 => self.at_least(7, v7.0, v7.1),
            _ => true,
        }
    }

    /// Plugins of major 4 and below are refused by Capgo (`unsupported_plugin_version`).
    pub fn is_supported(&self) -> bool {
        self.0.major >= 5
    }

    /// SHA-256 zip checksums (5.10.0 / 6.25.0 / 7.0.30 and every 8.x); older plugins compare CRC32.
    pub fn uses_sha256_checksum(&self) -> bool {
        self.reaches((10, 0), (25, 0), (0, 30))
    }

    /// The encrypted checksum in V3 hex form (5.30.0 / 6.30.0 / 7.30.0, all 8.x); older plugins read base64 "V2".
    pub fn uses_v3_encrypted_checksum(&self) -> bool {
        self.reaches((30, 0), (30, 0), (30, 0))
    }

    /// The success reply `{"version":"builtin"}` (revert to the embedded bundle) is understood from 6.2.0.
    pub fn understands_builtin_reply(&self) -> bool {
        self.at_least(6, 2, 0)
    }

    /// Delta `manifest` replies are understood from 5.10.0 / 6.25.0 / 7.0.35.
    pub fn understands_manifest(&self) -> bool {
        self.reaches((10, 0), (25, 0), (0, 35))
    }

    /// From 5.34 / 6.34 / 7.34 / 8.0 the plugin keeps its chosen channel locally and sends it as `defaultChannel`.
    pub fn keeps_channel_locally(&self) -> bool {
        self.reaches((34, 0), (34, 0), (34, 0))
    }

    /// Per-major threshold that also has one for the 8.x line; majors above 8 have every feature.
    fn reaches_with_v8(&self, v5: (u64, u64), v6: (u64, u64), v7: (u64, u64), v8: (u64, u64)) -> bool {
        match self.0.major {
            8 => self.at_least(8, v8.0, v8.1),
            _ => self.reaches(v5, v6, v7),
        }
    }

    /// The bundle's `link` and `comment` in the update reply: Capgo sends them from 5.35.0 / 6.35.0 / 7.35.0 /
    /// 8.35.0 (`resToVersion` in Capgo's `plugin_runtime/utils/update.ts`).
    pub fn receives_bundle_metadata(&self) -> bool {
        self.reaches_with_v8((35, 0), (35, 0), (35, 0), (35, 0))
    }

    /// From 5.50.1 / 6.50.1 / 7.50.1 / 8.47.9 the plugin stores any non-empty `channel` of the getChannel reply as
    /// its `defaultChannel` (`persistDefaultChannelFromResponse` in `CapgoUpdater.java` and `CapgoUpdater.swift`).
    pub fn persists_get_channel_reply(&self) -> bool {
        self.reaches_with_v8((50, 1), (50, 1), (50, 1), (47, 9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_coerce(raw: &str, expected: Option<&str>) {
        assert_eq!(coerce_version_build(raw).map(|v| v.to_string()).as_deref(), expected, "{raw}");
    }

    #[test]
    fn coerce_version_build_like_capgo() {
        check_coerce("1", Some("1.0.0"));
        check_coerce("1.2", Some("1.2.0"));
        check_coerce("1.2.3", Some("1.2.3"));
        check_coerce("v2.0.1", Some("2.0.1"));
        check_coerce("1.2-beta.1", Some("1.2.0-beta.1"));
        check_coerce("1.0.0-rc.1+42", Some("1.0.0-rc.1+42"));
        check_coerce("unknown", None);
        check_coerce("", None);
        check_coerce("1.2.3.4", None);
        check_coerce("a.b", None);
        check_coerce("1..2", None);
    }

    fn plugin(raw: &str) -> PluginVersion {
        PluginVersion::parse(raw).unwrap()
    }

    #[test]
    fn checksum_form_thresholds() {
        for (version, sha) in [
            ("5.9.9", false),
            ("5.10.0", true),
            ("6.24.9", false),
            ("6.25.0", true),
            ("7.0.29", false),
            ("7.0.30", true),
            ("8.0.0", true),
            ("10.0.0", true),
        ] {
            assert_eq!(plugin(version).uses_sha256_checksum(), sha, "{version}");
        }
    }

    #[test]
    fn builtin_reply_threshold() {
        assert!(!plugin("5.50.1").understands_builtin_reply());
        assert!(!plugin("6.1.9").understands_builtin_reply());
        assert!(plugin("6.2.0").understands_builtin_reply());
        assert!(plugin("8.51.14").understands_builtin_reply());
    }

    #[test]
    fn v3_checksum_and_local_channel_thresholds() {
        assert!(!plugin("6.29.0").uses_v3_encrypted_checksum());
        assert!(plugin("7.30.0").uses_v3_encrypted_checksum());
        assert!(!plugin("7.33.9").keeps_channel_locally());
        assert!(plugin("8.0.0").keeps_channel_locally());
        assert!(!plugin("4.9.0").is_supported());
        assert!(plugin("5.0.0").is_supported());
    }

    #[test]
    fn bundle_metadata_threshold() {
        for (version, expected) in [
            ("5.34.9", false),
            ("5.35.0", true),
            ("6.35.0", true),
            ("7.34.0", false),
            ("7.35.0", true),
            ("8.34.9", false),
            ("8.35.0", true),
            ("9.0.0", true),
        ] {
            assert_eq!(plugin(version).receives_bundle_metadata(), expected, "{version}");
        }
    }

    #[test]
    fn get_channel_persistence_threshold() {
        for (version, expected) in [
            ("5.50.0", false),
            ("5.50.1", true),
            ("6.50.1", true),
            ("7.50.0", false),
            ("7.50.1", true),
            ("8.47.8", false),
            ("8.47.9", true),
            ("8.51.14", true),
            ("9.0.0", true),
        ] {
            assert_eq!(plugin(version).persists_get_channel_reply(), expected, "{version}");
        }
    }
}
