//! Validated identifiers: app ids, channel names, device ids, bundle versions and platforms.
//!
//! Each type is parsed once at the edge (a handler, the CLI) and passed around already checked, so the rules never
//! see an unchecked string. Wire spellings of errors are the protocol crates' business.

use std::fmt;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// An app id that is not reverse-domain style.
    #[error(
        "app id {0:?} is not reverse-domain style; use lowercase letters, digits, '-' and '_' in at least two dot-separated parts, such as com.example.app"
    )]
    AppId(String),
    /// A channel name that is empty, too long, or has characters outside the allowed set.
    #[error("channel name {0:?} is not valid; use 1 to 64 characters from letters, digits, '.', '-' and '_'")]
    ChannelName(String),
    /// A device id that is empty or too long.
    #[error("device id {0:?} is not valid; send the device's UUID (1 to 64 characters)")]
    DeviceId(String),
    /// A bundle version that is not strict semver.
    #[error("version {0:?} is not semver; use MAJOR.MINOR.PATCH such as 1.2.0 (optionally -prerelease or +build)")]
    BundleVersion(String),
    /// A platform other than ios, android or electron.
    #[error("platform {0:?} is not supported; use \"ios\", \"android\" or \"electron\"")]
    Platform(String),
}

/// An application id in reverse-domain style, such as `com.example.app`.
///
/// Invariant: matches Capgo's `^[a-z0-9]+(\.[\w-]+)+$` (ASCII, case-insensitive) and is at most 128 characters.
/// Stored lowercased so that lookups are case-insensitive like Capgo's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(String);

impl AppId {
    /// Parses an app id.
    ///
    /// # Errors
    /// [`IdError::AppId`] when the id is not reverse-domain style.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        // One pass (every update check parses one): no part empty, the first alphanumeric, the others
        // alphanumeric, `_` or `-`, and at least two parts.
        let (mut parts, mut part_len) = (1, 0);
        let ok = raw.len() <= 128
            && raw.bytes().all(|b| {
                if b == b'.' {
                    let empty = part_len == 0;
                    (parts, part_len) = (parts + 1, 0);
                    return !empty;
                }
                part_len += 1;
                b.is_ascii_alphanumeric() || (parts > 1 && (b == b'_' || b == b'-'))
            })
            && part_len > 0
            && parts >= 2;
        if ok { Ok(Self(raw.to_ascii_lowercase())) } else { Err(IdError::AppId(raw.to_owned())) }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A channel name such as `production` or `beta-ios`.
///
/// Invariant: 1 to 64 characters from ASCII letters, digits, `.`, `-` and `_`. Case-sensitive, like the plugin's
/// `defaultChannel`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(String);

impl ChannelName {
    /// Parses a channel name.
    ///
    /// # Errors
    /// [`IdError::ChannelName`] when the name is empty, too long, or has other characters.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if ok { Ok(Self(raw.to_owned())) } else { Err(IdError::ChannelName(raw.to_owned())) }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A device id as the plugin sends it (a UUID), lowercased like Capgo does.
///
/// Invariant: 1 to 64 printable ASCII characters, lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    /// Parses a device id, lowercasing it.
    ///
    /// # Errors
    /// [`IdError::DeviceId`] when the id is empty, longer than 64 characters or not printable ASCII.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok = !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok { Ok(Self(raw.to_ascii_lowercase())) } else { Err(IdError::DeviceId(raw.to_owned())) }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A bundle's version name, which must be strict semver (Capgo refuses other names at upload, because its policy
/// checks compare bundle versions with the native version).
///
/// Invariant: `as_str()` parses as [`semver::Version`], and is at most 128 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BundleVersion {
    name: String,
    semver: semver::Version,
}

impl BundleVersion {
    /// Parses a bundle version.
    ///
    /// # Errors
    /// [`IdError::BundleVersion`] when the name is not strict semver.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.len() > 128 {
            return Err(IdError::BundleVersion(raw.to_owned()));
        }
        semver::Version::parse(raw)
            .map(|semver| Self { name: raw.to_owned(), semver })
            .map_err(|_| IdError::BundleVersion(raw.to_owned()))
    }

    /// The version name exactly as published.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The parsed semantic version.
    pub fn semver(&self) -> &semver::Version {
        &self.semver
    }
}

impl fmt::Display for BundleVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The lowercase form of a hex SHA-256 digest (64 hex digits, either case), or `None` when `text` is not one. The
/// one check for every content address the gateway reads.
pub fn sha256_hex(text: &str) -> Option<String> {
    (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())).then(|| text.to_ascii_lowercase())
}

macro_rules! display_as_str {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(AppId, ChannelName, DeviceId, Platform);

/// The platform a device runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// Apple iOS.
    Ios,
    /// Android.
    Android,
    /// Electron (Capgo accepts it; the channel has a flag for it).
    Electron,
}

impl Platform {
    /// Parses `ios`, `android` or `electron` (case-insensitive).
    ///
    /// # Errors
    /// [`IdError::Platform`] for any other value.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        [Self::Ios, Self::Android, Self::Electron]
            .into_iter()
            .find(|platform| raw.eq_ignore_ascii_case(platform.as_str()))
            .ok_or_else(|| IdError::Platform(raw.to_owned()))
    }

    /// The lowercase wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
            Self::Electron => "electron",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_id_accepts_reverse_domain_and_lowercases() {
        for ok in ["com.example.app", "io.ionic.starter", "Com.Example.My_App", "a1.b-c", "ee.forgr.capacitor_go"] {
            assert!(AppId::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(AppId::parse("Com.Example.App").unwrap().as_str(), "com.example.app");
    }

    #[test]
    fn app_id_rejects_what_capgo_rejects() {
        for bad in ["", "app", "com.", ".com", "com..app", "com/app", "com.ex ample", "com_x.app", "../etc.passwd"] {
            assert!(AppId::parse(bad).is_err(), "{bad}");
        }
        for bad in ["com.exämple", "com.-.x.", "1.é"] {
            assert!(AppId::parse(bad).is_err(), "{bad}");
        }
        assert!(AppId::parse(&format!("com.{}", "a".repeat(124))).is_ok(), "128 characters");
        assert!(AppId::parse(&format!("com.{}", "a".repeat(125))).is_err(), "129 characters");
    }

    #[test]
    fn channel_name_rules() {
        for ok in ["production", "beta-ios", "v1.2", "A_b"] {
            assert!(ChannelName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "x/y", &"a".repeat(65)] {
            assert!(ChannelName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bundle_version_must_be_strict_semver() {
        for ok in ["1.0.0", "1.2.3-beta.1", "1.0.0+build.5"] {
            assert_eq!(BundleVersion::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["1", "1.2", "v1.0.0", "builtin", "unknown", "", "1.0.0.0"] {
            assert!(BundleVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn device_id_is_lowercased() {
        assert_eq!(
            DeviceId::parse("0F6B3E1C-6C1E-4A55-9F3A-2F0C9A3B7D21").unwrap().as_str(),
            "0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21"
        );
        assert!(DeviceId::parse("").is_err());
        assert!(DeviceId::parse("a b").is_err());
    }

    #[test]
    fn sha256_hex_accepts_64_hex_digits_and_lowercases() {
        let digest = "0123456789abcdef".repeat(4);
        assert_eq!(sha256_hex(&digest), Some(digest.clone()));
        assert_eq!(sha256_hex(&digest.to_ascii_uppercase()), Some(digest.clone()));
        assert_eq!(sha256_hex(&digest[1..]), None);
        assert_eq!(sha256_hex(&format!("{}g", &digest[1..])), None);
        assert_eq!(sha256_hex(""), None);
    }
}
