//! The Capgo update selection rules: which bundle (if any) a Capacitor device gets when it asks "is there an update
//! for me?", in the order Capgo Cloud applies them (channel resolution, then the ordered checks).
//!
//! Everything here is a pure function of an [`AppCatalog`] and an [`UpdateCheck`]. How a decision looks on the wire
//! (codes, messages, `kind`, checksum form) is `updraft-capgo`'s business.

use crate::bucket::DeviceIdentity;
use crate::bundle::Bundle;
use crate::catalog::AppCatalog;
use crate::channel::{Channel, DisableAutoUpdate};
use crate::device::BundlePin;
use crate::ids::{DeviceId, Platform};
use crate::rollout::RolloutTarget;
use crate::rollout_selection::{RolloutCheck, Serve, select_rollout};
use crate::version::PluginVersion;

/// A device's update check, parsed and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateCheck {
    /// Device id (lowercase).
    pub device_id: DeviceId,
    /// Platform.
    pub platform: Platform,
    /// Native version coerced to semver.
    pub version_build: semver::Version,
    /// Native version exactly as sent.
    pub version_build_raw: String,
    /// Current bundle name as sent (`builtin` on older plugins when on the embedded bundle).
    pub version_name: String,
    /// Plugin version.
    pub plugin_version: PluginVersion,
    /// Emulator or simulator.
    pub is_emulator: bool,
    /// Production build (TestFlight and ad-hoc builds send false).
    pub is_prod: bool,
    /// The channel the device asks for; `None` when absent or empty.
    pub default_channel: Option<String>,
    /// The device's encryption key id; `None` when absent or empty.
    pub key_id: Option<String>,
}

impl UpdateCheck {
    /// The current bundle name after Capgo's normalisation: `builtin` is replaced by the native version.
    pub fn current_version(&self) -> &str {
        if self.version_name == "builtin" { &self.version_build_raw } else { &self.version_name }
    }

    /// Whether the device runs the bundle embedded in the app: older plugins say `builtin`, 8.44+ and the x.50.1
    /// LTS lines report the native version as the bundle name.
    pub fn is_on_builtin(&self) -> bool {
        self.version_name == "builtin"
            || self.version_name == self.version_build_raw
            || self.version_name == self.version_build.to_string()
    }
}

/// How the channel of a device was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelRoute<'a> {
    /// An operator forced the device onto this channel (any channel, private ones included).
    Override(&'a Channel),
    /// The device asked for this channel by name (`defaultChannel`).
    Requested(&'a Channel),
    /// The device asked for no channel: the first public channel that serves its platform.
    Public(&'a Channel),
    /// The device asked for a channel it cannot use (no channel by that name, a private one without self-set, or
    /// one that does not serve its platform): the first public channel that serves its platform, as if it had
    /// asked for none.
    Fallback(&'a Channel),
}

impl<'a> ChannelRoute<'a> {
    /// The channel, whatever the route.
    pub fn channel(&self) -> &'a Channel {
        match *self {
            Self::Override(channel) | Self::Requested(channel) | Self::Public(channel) | Self::Fallback(channel) => {
                channel
            }
        }
    }
}

/// Resolves the channel of a device: a device override (any channel) wins; else a non-empty `defaultChannel` names
/// a channel that serves the platform and is public or self-settable; else the first public channel serving the
/// platform by (name, id).
///
/// Unlike Capgo, a `defaultChannel` that names no usable channel falls back to the public channel instead of
/// answering `no_channel`. Devices learn channel names they can never unlearn: the configured `defaultChannel`,
/// a `setChannel()` choice, and, from plugins 5.50.1 / 6.50.1 / 7.50.1 / 8.47.9, any name a getChannel reply
/// carried (`persistDefaultChannelFromResponse`). Without the fallback, renaming, deleting or un-publishing that
/// channel (an operator moving the public default from `production` to `stable`) would leave every such device
/// without updates for good.
pub fn resolve_channel<'a>(
    catalog: &'a AppCatalog,
    device_id: &DeviceId,
    platform: Platform,
    default_channel: Option<&str>,
) -> Option<ChannelRoute<'a>> {
    let forced = catalog.override_for(device_id).and_then(|o| o.channel_id);
    if let Some(channel) = forced.and_then(|id| catalog.channel_by_id(id)) {
        return Some(ChannelRoute::Override(channel));
    }
    let requested = default_channel
        .and_then(|name| catalog.channel_by_name(name))
        .filter(|c| c.settings.serves_platform(platform))
        .filter(|c| c.settings.public || c.settings.allow_device_self_set);
    if let Some(channel) = requested {
        return Some(ChannelRoute::Requested(channel));
    }
    let public = catalog.channels().iter().find(|c| c.settings.public && c.settings.serves_platform(platform));
    public.map(|channel| match default_channel {
        Some(_) => ChannelRoute::Fallback(channel),
        None => ChannelRoute::Public(channel),
    })
}

/// The answer to an update check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateDecision<'a> {
    /// Download and install this bundle.
    Update(&'a Bundle),
    /// Go back to the bundle embedded in the native app.
    RevertToBuiltin,
    /// No update, with the reason.
    Refuse(Refusal),
}

/// Why a device gets no update. Each variant is one Capgo refusal code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The app is not registered here.
    AppNotFound,
    /// `version_build` is `unknown`.
    UnknownVersionBuild,
    /// The plugin is older than 5.0.
    UnsupportedPluginVersion,
    /// A required field is missing; names it.
    MissingInfo(&'static str),
    /// No override, no matching `defaultChannel` and no public channel for the platform.
    NoChannel,
    /// The channel (or override) points at a bundle that no longer exists.
    NoBundle,
    /// The device decrypts with a key the bundle was not made for (or the bundle is not encrypted).
    KeyIdMismatch {
        /// Key id the device sent.
        device_key_id: String,
        /// Key id of the bundle (`""` when the bundle is not encrypted).
        bundle_key_id: String,
    },
    /// The device already runs the channel's bundle.
    NoNewVersion,
    /// The device reported that this version failed to start and rolled back.
    FailedOnDevice {
        /// The version that failed.
        version: String,
    },
    /// The resolved channel does not serve this platform.
    DisabledPlatform {
        /// The device's platform.
        platform: Platform,
        /// The channel's bundle.
        version: String,
        /// The device's current bundle.
        old: String,
    },
    /// The bundle's major is above the native major.
    DisableToMajor {
        /// The channel's bundle.
        version: String,
        /// The native version.
        old: String,
    },
    /// The channel is private and the device did not reach it through an override.
    PrivateChannel,
    /// The bundle is not in the native version's major.minor.
    DisableToMinor {
        /// The channel's bundle.
        version: String,
        /// The native version.
        old: String,
    },
    /// The bundle is not the native version's major.minor.patch.
    DisableToPatch {
        /// The channel's bundle.
        version: String,
        /// The native version.
        old: String,
    },
    /// `disableAutoUpdate: version_number` on a bundle without `min_update_version`.
    MisconfiguredChannel,
    /// The bundle's `min_update_version` is above the native version.
    DisableToMetadata {
        /// The channel's bundle.
        version: String,
        /// The native version.
        old: String,
    },
    /// The bundle is older than the native version.
    UnderNative {
        /// The channel's bundle.
        version: String,
        /// The native version.
        old: String,
    },
    /// The channel does not serve production builds.
    DisableProdBuild,
    /// The channel does not serve development builds.
    DisableDevBuild,
    /// The channel does not serve physical devices.
    DisableDevice,
    /// The channel does not serve emulators.
    DisableEmulator,
    /// The channel points at builtin and the device is already on it.
    AlreadyOnBuiltin,
    /// The channel points at builtin but the plugin is too old to revert.
    RevertTooOld,
}

/// What a device should get: the channel's bundle, a pinned bundle, or the builtin one.
enum Target<'a> {
    Builtin,
    Bundle(&'a Bundle),
    Missing,
}

/// Decides what a device gets, running Capgo's checks in Capgo's order (first match wins). `catalog` is `None`
/// when the app is unknown.
pub fn select_update<'a>(catalog: Option<&'a AppCatalog>, check: &UpdateCheck) -> UpdateDecision<'a> {
    match select(catalog, check) {
        Ok(decision) => decision,
        Err(refusal) => UpdateDecision::Refuse(refusal),
    }
}

fn select<'a>(catalog: Option<&'a AppCatalog>, check: &UpdateCheck) -> Result<UpdateDecision<'a>, Refusal> {
    let catalog = catalog.ok_or(Refusal::AppNotFound)?;
    if !check.plugin_version.is_supported() {
        return Err(Refusal::UnsupportedPluginVersion);
    }
    let route = resolve_channel(catalog, &check.device_id, check.platform, check.default_channel.as_deref());
    // A per-device bundle pin replaces the bundle of whatever channel resolves, and also works with none.
    let pinned = catalog.override_for(&check.device_id).and_then(|o| o.bundle);
    let target = match (pinned, route) {
        (Some(BundlePin::Builtin), _) => Target::Builtin,
        (Some(BundlePin::Bundle(bundle_id)), _) => catalog.bundle(bundle_id).map_or(Target::Missing, Target::Bundle),
        (None, Some(route)) => match rollout_candidate(catalog, route.channel(), check) {
            Some(candidate) => Target::Bundle(candidate),
            None => match route.channel().bundle_id {
                None => Target::Builtin,
                Some(bundle_id) => catalog.bundle(bundle_id).map_or(Target::Missing, Target::Bundle),
            },
        },
        (None, None) => return Err(Refusal::NoChannel),
    };
    let bundle = match target {
        Target::Missing => return Err(Refusal::NoBundle),
        Target::Bundle(bundle) => Some(bundle),
        Target::Builtin => None,
    };
    if let (Some(device_key_id), Some(bundle)) = (&check.key_id, bundle) {
        check_key_id(device_key_id, bundle)?;
    }
    if let Some(bundle) = bundle
        && check.current_version() == bundle.version.as_str()
    {
        return Err(Refusal::NoNewVersion);
    }
    // A device that rolled back from a version (it reported `update_fail`) would download it again on every
    // check; it is not offered that version again.
    if let Some(bundle) = bundle
        && catalog.device_failed(&check.device_id, bundle.version.as_str())
    {
        return Err(Refusal::FailedOnDevice { version: bundle.version.as_str().to_owned() });
    }
    let offered_name = bundle.map_or("builtin", |b| b.version.as_str()).to_owned();
    if let Some(route) = route {
        check_channel_policy(route, bundle, check, &offered_name)?;
    }
    match bundle {
        Some(bundle) => Ok(UpdateDecision::Update(bundle)),
        None if check.is_on_builtin() => Err(Refusal::AlreadyOnBuiltin),
        None if check.plugin_version.understands_builtin_reply() => Ok(UpdateDecision::RevertToBuiltin),
        None => Err(Refusal::RevertTooOld),
    }
}

/// The candidate bundle when the channel's rollout offers it to this device ([`select_rollout`]), `None` when the
/// device keeps the channel's own bundle: outside the percentage, the rollout halted (a device running the candidate
/// then gets the channel's bundle, a different version, which the plugin accepts), completed, or its candidate
/// deleted. A bundle pin never gets here: it wins before the channel is looked at.
fn rollout_candidate<'a>(catalog: &'a AppCatalog, channel: &Channel, check: &UpdateCheck) -> Option<&'a Bundle> {
    let stored = catalog.rollout(channel.name.as_str())?;
    let RolloutTarget::CapgoBundle(candidate) = stored.rollout.candidate() else { return None };
    let identity = DeviceIdentity::from_device_id(&check.device_id);
    let device = RolloutCheck {
        identity: Some(&identity),
        overridden: false,
        runs_candidate: check.current_version() == candidate.as_str(),
    };
    match select_rollout(Some(&stored.rollout), &device) {
        Serve::Candidate => catalog.bundle_by_version(candidate.as_str()),
        Serve::Unaffected | Serve::Stable | Serve::StableAfterHalt => None,
    }
}

/// A device with a public key can only decrypt bundles made with that key. Plugins 8.2 to 8.40.7 send only the
/// first 4 characters of the key id, so a prefix match is a match.
fn check_key_id(device_key_id: &str, bundle: &Bundle) -> Result<(), Refusal> {
    let bundle_key_id = bundle.encryption.as_ref().map(|e| e.key_id.clone().unwrap_or_default());
    let matches = match &bundle_key_id {
        None => false,
        Some(bundle_key_id) if bundle_key_id.is_empty() => true,
        Some(bundle_key_id) => {
            bundle_key_id.starts_with(device_key_id) || device_key_id.starts_with(bundle_key_id.as_str())
        }
    };
    if matches {
        Ok(())
    } else {
        Err(Refusal::KeyIdMismatch {
            device_key_id: device_key_id.to_owned(),
            bundle_key_id: bundle_key_id.unwrap_or_default(),
        })
    }
}

/// Checks 9 to 14 of Capgo's order, for the resolved channel.
fn check_channel_policy(
    route: ChannelRoute<'_>,
    bundle: Option<&Bundle>,
    check: &UpdateCheck,
    offered_name: &str,
) -> Result<(), Refusal> {
    let settings = &route.channel().settings;
    let native = &check.version_build;
    let native_name = check.version_build_raw.clone();
    if !settings.serves_platform(check.platform) {
        return Err(Refusal::DisabledPlatform {
            platform: check.platform,
            version: offered_name.to_owned(),
            old: check.current_version().to_owned(),
        });
    }
    let version = || offered_name.to_owned();
    let offered = bundle.map(|b| b.version.semver());
    if let Some(offered) = offered
        && settings.disable_auto_update == DisableAutoUpdate::Major
        && offered.major > native.major
    {
        return Err(Refusal::DisableToMajor { version: version(), old: native_name });
    }
    if let (Some(offered), Some(bundle)) = (offered, bundle) {
        match settings.disable_auto_update {
            DisableAutoUpdate::Minor if (offered.major, offered.minor) != (native.major, native.minor) => {
                return Err(Refusal::DisableToMinor { version: version(), old: native_name });
            }
            DisableAutoUpdate::Patch
                if (offered.major, offered.minor, offered.patch) != (native.major, native.minor, native.patch) =>
            {
                return Err(Refusal::DisableToPatch { version: version(), old: native_name });
            }
            DisableAutoUpdate::VersionNumber => match &bundle.min_update_version {
                None => return Err(Refusal::MisconfiguredChannel),
                Some(min) if min.cmp_precedence(native).is_gt() => {
                    return Err(Refusal::DisableToMetadata { version: version(), old: native_name });
                }
                Some(_) => {}
            },
            _ => {}
        }
        if settings.disable_auto_update_under_native && offered.cmp_precedence(native).is_lt() {
            return Err(Refusal::UnderNative { version: version(), old: native_name });
        }
    }
    if !settings.allow_prod && check.is_prod {
        return Err(Refusal::DisableProdBuild);
    }
    if !settings.allow_dev && !check.is_prod {
        return Err(Refusal::DisableDevBuild);
    }
    if !settings.allow_device && !check.is_emulator {
        return Err(Refusal::DisableDevice);
    }
    if !settings.allow_emulator && check.is_emulator {
        return Err(Refusal::DisableEmulator);
    }
    Ok(())
}

#[cfg(test)]
#[path = "capgo_rules_tests.rs"]
mod tests;
