//! Channels: named pointers at a bundle (or at the embedded "builtin" bundle) with the policy flags that gate who may
//! receive it. Defaults follow Capgo's schema so a team migrating from Capgo Cloud sees the same behaviour.

use chrono::{DateTime, Utc};

use crate::ids::{AppId, BundleVersion, ChannelName, IdError};

/// How far an automatic update may move away from the native app version (`disableAutoUpdate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DisableAutoUpdate {
    /// Never deliver a bundle whose major is above the native version's major (Capgo's default).
    #[default]
    Major,
    /// Only deliver bundles with the native version's major and minor.
    Minor,
    /// Only deliver bundles with the native version's major, minor and patch.
    Patch,
    /// Only deliver bundles whose `min_update_version` is at most the native version ("metadata" in Capgo's docs).
    VersionNumber,
    /// No version guard.
    None,
}

impl DisableAutoUpdate {
    /// Parses the wire value; `metadata` is accepted as the docs' name for `version_number`.
    ///
    /// Returns `None` for any other value.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "major" => Some(Self::Major),
            "minor" => Some(Self::Minor),
            "patch" => Some(Self::Patch),
            "version_number" | "metadata" => Some(Self::VersionNumber),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// The wire value as Capgo's API returns it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Major => "major",
            Self::Minor => "minor",
            Self::Patch => "patch",
            Self::VersionNumber => "version_number",
            Self::None => "none",
        }
    }
}

/// The policy flags of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSettings {
    /// The default channel for its platforms: devices without an override or a `defaultChannel` land here.
    pub public: bool,
    /// Version guard against the native version.
    pub disable_auto_update: DisableAutoUpdate,
    /// Refuse bundles older than the native version.
    pub disable_auto_update_under_native: bool,
    /// Serve iOS devices.
    pub ios: bool,
    /// Serve Android devices.
    pub android: bool,
    /// Serve Electron apps.
    pub electron: bool,
    /// Devices may pick this channel themselves (`setChannel` / `defaultChannel`).
    pub allow_device_self_set: bool,
    /// Serve emulators and simulators.
    pub allow_emulator: bool,
    /// Serve physical devices.
    pub allow_device: bool,
    /// Serve development builds (`is_prod: false`, which includes TestFlight).
    pub allow_dev: bool,
    /// Serve production builds.
    pub allow_prod: bool,
}

impl Default for ChannelSettings {
    /// Capgo's column defaults.
    fn default() -> Self {
        Self {
            public: false,
            disable_auto_update: DisableAutoUpdate::Major,
            disable_auto_update_under_native: true,
            ios: true,
            android: true,
            electron: true,
            allow_device_self_set: false,
            allow_emulator: true,
            allow_device: true,
            allow_dev: true,
            allow_prod: true,
        }
    }
}

/// What a channel points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelTarget {
    /// The bundle embedded in the native app.
    Builtin,
    /// A published bundle, by version.
    Bundle(BundleVersion),
}

impl ChannelTarget {
    /// Parses the `version` field of a channel write: `builtin` (or Capgo's `unknown`) means the embedded bundle.
    ///
    /// # Errors
    /// [`IdError::BundleVersion`] when the value is neither a pseudo name nor semver.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        match raw {
            "builtin" | "unknown" => Ok(Self::Builtin),
            other => BundleVersion::parse(other).map(Self::Bundle),
        }
    }
}

/// A partial channel write (`POST /channel`): every `None` field keeps its current (or default) value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelUpdate {
    /// New target, if any.
    pub target: Option<ChannelTarget>,
    /// `public`.
    pub public: Option<bool>,
    /// `disableAutoUpdate`.
    pub disable_auto_update: Option<DisableAutoUpdate>,
    /// `disableAutoUpdateUnderNative`.
    pub disable_auto_update_under_native: Option<bool>,
    /// `ios`.
    pub ios: Option<bool>,
    /// `android`.
    pub android: Option<bool>,
    /// `electron`.
    pub electron: Option<bool>,
    /// `allow_device_self_set`.
    pub allow_device_self_set: Option<bool>,
    /// `allow_emulator`.
    pub allow_emulator: Option<bool>,
    /// `allow_device`.
    pub allow_device: Option<bool>,
    /// `allow_dev`.
    pub allow_dev: Option<bool>,
    /// `allow_prod`.
    pub allow_prod: Option<bool>,
}

impl ChannelSettings {
    /// Applies the set fields of a write on top of these settings.
    pub fn apply(&mut self, update: &ChannelUpdate) {
        let fields: [(&mut bool, Option<bool>); 10] = [
            (&mut self.public, update.public),
            (&mut self.disable_auto_update_under_native, update.disable_auto_update_under_native),
            (&mut self.ios, update.ios),
            (&mut self.android, update.android),
            (&mut self.electron, update.electron),
            (&mut self.allow_device_self_set, update.allow_device_self_set),
            (&mut self.allow_emulator, update.allow_emulator),
            (&mut self.allow_device, update.allow_device),
            (&mut self.allow_dev, update.allow_dev),
            (&mut self.allow_prod, update.allow_prod),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                *field = value;
            }
        }
        if let Some(mode) = update.disable_auto_update {
            self.disable_auto_update = mode;
        }
    }

    /// Whether the channel serves the given platform.
    pub fn serves_platform(&self, platform: crate::Platform) -> bool {
        match platform {
            crate::Platform::Ios => self.ios,
            crate::Platform::Android => self.android,
            crate::Platform::Electron => self.electron,
        }
    }
}

/// A channel of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Numeric id (the plugin's `listChannels` needs a number).
    pub id: i64,
    /// Owning app.
    pub app_id: AppId,
    /// Name, unique within the app.
    pub name: ChannelName,
    /// The bundle the channel points at, by bundle id; `None` is the builtin bundle.
    pub bundle_id: Option<i64>,
    /// Policy flags.
    pub settings: ChannelSettings,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last write.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_capgo_schema() {
        let settings = ChannelSettings::default();
        assert!(!settings.public && !settings.allow_device_self_set);
        assert_eq!(settings.disable_auto_update, DisableAutoUpdate::Major);
        assert!(settings.disable_auto_update_under_native);
        assert!(settings.ios && settings.android && settings.electron);
        assert!(settings.allow_device && settings.allow_emulator && settings.allow_dev && settings.allow_prod);
    }

    #[test]
    fn apply_changes_only_given_fields() {
        let mut settings = ChannelSettings::default();
        settings.apply(&ChannelUpdate { public: Some(true), ios: Some(false), ..Default::default() });
        assert!(settings.public && !settings.ios && settings.android);
        settings.apply(&ChannelUpdate { disable_auto_update: Some(DisableAutoUpdate::None), ..Default::default() });
        assert!(settings.public);
        assert_eq!(settings.disable_auto_update, DisableAutoUpdate::None);
    }

    #[test]
    fn disable_auto_update_wire_values() {
        for (raw, mode) in [
            ("major", DisableAutoUpdate::Major),
            ("minor", DisableAutoUpdate::Minor),
            ("patch", DisableAutoUpdate::Patch),
            ("version_number", DisableAutoUpdate::VersionNumber),
            ("metadata", DisableAutoUpdate::VersionNumber),
            ("none", DisableAutoUpdate::None),
        ] {
            assert_eq!(DisableAutoUpdate::parse(raw), Some(mode));
        }
        assert_eq!(DisableAutoUpdate::parse("Major"), None);
    }

    #[test]
    fn channel_target_pseudo_names() {
        assert_eq!(ChannelTarget::parse("builtin"), Ok(ChannelTarget::Builtin));
        assert_eq!(ChannelTarget::parse("unknown"), Ok(ChannelTarget::Builtin));
        assert!(matches!(ChannelTarget::parse("1.0.0"), Ok(ChannelTarget::Bundle(_))));
        assert!(ChannelTarget::parse("latest").is_err());
    }
}
