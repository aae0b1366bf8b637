//! Channel self-assignment (`/channel_self`): which channels a device may pick itself, and which it may list.
//! Follows Capgo: a device may join a channel that serves its platform and allows self-set; the public channel
//! without self-set is refused (the device should simply unset its choice to land there).

use crate::capgo_rules::{ChannelRoute, resolve_channel};
use crate::catalog::AppCatalog;
use crate::channel::Channel;
use crate::ids::{DeviceId, Platform};

/// Why a device may not pick a channel itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfSetRefusal {
    /// No channel by that name (or it does not serve the device's platform).
    ChannelNotFound,
    /// The channel is the public default and does not allow self-set: unset the choice instead.
    PublicChannel,
    /// The channel does not allow devices to pick it.
    NotAllowed,
}

/// The channel a device asks to join, if it may.
///
/// # Errors
/// [`SelfSetRefusal`] saying why not.
pub fn self_assignable<'a>(
    catalog: &'a AppCatalog,
    name: &str,
    platform: Platform,
) -> Result<&'a Channel, SelfSetRefusal> {
    let channel = catalog
        .channel_by_name(name)
        .filter(|c| c.settings.serves_platform(platform))
        .ok_or(SelfSetRefusal::ChannelNotFound)?;
    match (channel.settings.allow_device_self_set, channel.settings.public) {
        (true, _) => Ok(channel),
        (false, true) => Err(SelfSetRefusal::PublicChannel),
        (false, false) => Err(SelfSetRefusal::NotAllowed),
    }
}

/// The channels a device may see in `listChannels()`: they serve its platform, accept its kind of build
/// (prod/dev) and hardware (device/emulator), and are public or self-settable. Ordered by (name, id).
pub fn listable_channels(catalog: &AppCatalog, platform: Platform, is_prod: bool, is_emulator: bool) -> Vec<&Channel> {
    catalog
        .channels()
        .iter()
        .filter(|c| {
            let s = &c.settings;
            s.serves_platform(platform)
                && (s.public || s.allow_device_self_set)
                && if is_prod { s.allow_prod } else { s.allow_dev }
                && if is_emulator { s.allow_emulator } else { s.allow_device }
        })
        .collect()
}

// --- Self-assignment of plugins that keep the choice on the server (a device override). ---

/// The first public channel that serves `platform`: where a device without an override or choice lands.
pub fn public_channel(catalog: &AppCatalog, platform: Platform) -> Option<&Channel> {
    catalog.channels().iter().find(|c| c.settings.public && c.settings.serves_platform(platform))
}

/// What a `setChannel` from a plugin that keeps its choice on the server does to the device's override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfSetChange {
    /// The device asked for its platform's public default: it needs no override.
    ClearOverride,
    /// Point the device's override at this channel.
    SetOverride {
        /// The channel's id.
        channel_id: i64,
    },
}

/// Why a device may not change its channel itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfSetDenied {
    /// The channel cannot be picked (see [`SelfSetRefusal`]).
    Refused(SelfSetRefusal),
    /// An operator put the device on a channel that does not allow self-set: the device cannot leave it.
    OperatorOverride,
}

/// The override change a device's `setChannel` asks for, if it may: an operator's override onto a channel without
/// self-set locks the device; asking for the public default clears the override; else the channel must be
/// self-assignable.
///
/// # Errors
/// [`SelfSetDenied`] saying why not.
pub fn self_set_change(
    catalog: &AppCatalog,
    device_id: &DeviceId,
    name: &str,
    platform: Platform,
) -> Result<SelfSetChange, SelfSetDenied> {
    if current_override_channel(catalog, device_id).is_some_and(|c| !c.settings.allow_device_self_set) {
        return Err(SelfSetDenied::OperatorOverride);
    }
    if public_channel(catalog, platform).is_some_and(|c| c.name.as_str() == name) {
        return Ok(SelfSetChange::ClearOverride);
    }
    let channel = self_assignable(catalog, name, platform).map_err(SelfSetDenied::Refused)?;
    Ok(SelfSetChange::SetOverride { channel_id: channel.id })
}

/// The most device overrides an app may hold before a device's own `setChannel` (older plugins keep the choice on
/// the server) is refused for devices that have none yet: every catalog load reads them all, and any caller can
/// send a made-up device id. Operators' overrides are not limited.
pub const MAX_DEVICE_OVERRIDES_PER_APP: usize = 50_000;

/// Whether a device's own `setChannel` may add an override: it has one already, or the app is below
/// [`MAX_DEVICE_OVERRIDES_PER_APP`].
pub fn self_set_has_room(catalog: &AppCatalog, device_id: &DeviceId) -> bool {
    catalog.override_for(device_id).is_some() || catalog.override_count() < MAX_DEVICE_OVERRIDES_PER_APP
}

/// Whether a device may drop its override itself (`unsetChannel`): only one onto a channel it could have picked.
pub fn self_unset_allowed(catalog: &AppCatalog, device_id: &DeviceId) -> bool {
    current_override_channel(catalog, device_id).is_some_and(|c| c.settings.allow_device_self_set)
}

fn current_override_channel<'a>(catalog: &'a AppCatalog, device_id: &DeviceId) -> Option<&'a Channel> {
    catalog.override_for(device_id).and_then(|o| o.channel_id).and_then(|id| catalog.channel_by_id(id))
}

/// What `getChannel()` (PUT `/channel_self`) tells a device about its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelReport<'a> {
    /// The channel `/updates` resolves for the device.
    pub channel: &'a Channel,
    /// Whether the reply names it; otherwise `channel` is `""`.
    pub named: bool,
    /// Whether the device is on it by an override or by its own choice (`status: "override"`), rather than by
    /// default (`status: "default"`).
    pub chosen: bool,
}

/// What getChannel answers: the channel `/updates` resolves for the device, named only when naming it cannot pin
/// the device to it.
///
/// Plugins 5.50.1 / 6.50.1 / 7.50.1 / 8.47.9 and later store any non-empty `channel` of the reply as their
/// `defaultChannel` and send it on every check from then on. So such a device is only told a name it sent itself
/// (its own choice, echoed); a device on the public default, or on an operator's override, gets `channel: ""`,
/// as the plugin's own reference server answers a device that made no choice. Otherwise every device that ever
/// called getChannel would stay on today's default after an operator moves the default elsewhere, or on a
/// self-settable override channel after the override is removed. Older plugins only display the reply and are
/// told every name. `None` when no channel resolves.
pub fn channel_report<'a>(
    catalog: &'a AppCatalog,
    device_id: &DeviceId,
    platform: Platform,
    requested: Option<&str>,
    persists_reply: bool,
) -> Option<ChannelReport<'a>> {
    let route = resolve_channel(catalog, device_id, platform, requested)?;
    let (named_to_persisting, chosen) = match route {
        ChannelRoute::Requested(_) => (true, true),
        ChannelRoute::Override(_) => (false, true),
        ChannelRoute::Public(_) | ChannelRoute::Fallback(_) => (false, false),
    };
    Some(ChannelReport { channel: route.channel(), named: named_to_persisting || !persists_reply, chosen })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::app::App;
    use crate::channel::ChannelSettings;
    use crate::ids::{AppId, ChannelName};

    fn catalog() -> AppCatalog {
        let app_id = AppId::parse("com.example.app").unwrap();
        let channel = |id: i64, name: &str, edit: &dyn Fn(&mut ChannelSettings)| {
            let mut settings = ChannelSettings::default();
            edit(&mut settings);
            Channel {
                id,
                app_id: app_id.clone(),
                name: ChannelName::parse(name).unwrap(),
                bundle_id: None,
                settings,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            }
        };
        let channels = vec![
            channel(1, "production", &|s| s.public = true),
            channel(2, "beta", &|s| s.allow_device_self_set = true),
            channel(3, "internal", &|_| {}),
            channel(4, "ios-beta", &|s| {
                s.allow_device_self_set = true;
                s.android = false;
            }),
            channel(5, "dev-only", &|s| {
                s.allow_device_self_set = true;
                s.allow_prod = false;
            }),
            channel(6, "sim-only", &|s| {
                s.allow_device_self_set = true;
                s.allow_device = false;
            }),
        ];
        let app = App {
            id: app_id.clone(),
            name: "x".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        };
        AppCatalog::new(app, channels, vec![], vec![])
    }

    #[test]
    fn devices_add_overrides_only_below_the_cap() {
        let full = catalog();
        let (app, channels) = (full.app().clone(), full.channels().to_vec());
        let overrides = |n: usize| -> Vec<(DeviceId, crate::OverrideTarget)> {
            (0..n)
                .map(|i| {
                    let device = DeviceId::parse(&format!("device-{i}")).unwrap();
                    (device, crate::OverrideTarget { channel_id: Some(2), bundle: None })
                })
                .collect()
        };
        let below = AppCatalog::new(app.clone(), channels.clone(), vec![], overrides(MAX_DEVICE_OVERRIDES_PER_APP - 1));
        let newcomer = DeviceId::parse("newcomer").unwrap();
        assert!(self_set_has_room(&below, &newcomer));
        let at_cap = AppCatalog::new(app, channels, vec![], overrides(MAX_DEVICE_OVERRIDES_PER_APP));
        assert!(!self_set_has_room(&at_cap, &newcomer), "a new device is refused at the cap");
        assert!(self_set_has_room(&at_cap, &DeviceId::parse("device-7").unwrap()), "a device with one may change it");
    }

    #[test]
    fn self_set_rules() {
        let catalog = catalog();
        let check = |name, platform| self_assignable(&catalog, name, platform).map(|c| c.name.as_str());
        assert_eq!(check("beta", Platform::Android), Ok("beta"));
        assert_eq!(check("production", Platform::Android), Err(SelfSetRefusal::PublicChannel));
        assert_eq!(check("internal", Platform::Android), Err(SelfSetRefusal::NotAllowed));
        assert_eq!(check("ios-beta", Platform::Android), Err(SelfSetRefusal::ChannelNotFound));
        assert_eq!(check("ios-beta", Platform::Ios), Ok("ios-beta"));
        assert_eq!(check("missing", Platform::Ios), Err(SelfSetRefusal::ChannelNotFound));
    }

    #[test]
    fn get_channel_never_teaches_a_persisting_device_a_name() {
        let mut catalog = catalog();
        let device = DeviceId::parse("0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21").unwrap();
        // (requested, persists the reply) → (channel, named, chosen)
        let check = |catalog: &AppCatalog, requested: Option<&str>, persists: bool| {
            channel_report(catalog, &device, Platform::Android, requested, persists)
                .map(|r| (r.channel.name.as_str().to_owned(), r.named, r.chosen))
        };
        let report = |name: &str, named, chosen| Some((name.to_owned(), named, chosen));
        // No choice: the public default, unnamed for plugins that would persist it.
        assert_eq!(check(&catalog, None, true), report("production", false, false));
        assert_eq!(check(&catalog, None, false), report("production", true, false));
        // The device's own choice is echoed.
        assert_eq!(check(&catalog, Some("beta"), true), report("beta", true, true));
        // A stale or unusable choice resolves to the public channel, which is not named either.
        assert_eq!(check(&catalog, Some("gone"), true), report("production", false, false));
        assert_eq!(check(&catalog, Some("internal"), true), report("production", false, false));
        assert_eq!(check(&catalog, Some("gone"), false), report("production", true, false));
        // An operator's override is the device's channel, but naming it would outlive the override.
        catalog = AppCatalog::new(
            catalog.app().clone(),
            catalog.channels().to_vec(),
            vec![],
            vec![(device.clone(), crate::device::OverrideTarget { channel_id: Some(2), bundle: None })],
        );
        assert_eq!(check(&catalog, None, true), report("beta", false, true));
        assert_eq!(check(&catalog, None, false), report("beta", true, true));
    }

    #[test]
    fn get_channel_without_a_public_channel_resolves_nothing() {
        let full = catalog();
        let private: Vec<Channel> = full.channels().iter().filter(|c| !c.settings.public).cloned().collect();
        let catalog = AppCatalog::new(full.app().clone(), private, vec![], vec![]);
        let device = DeviceId::parse("d").unwrap();
        assert_eq!(channel_report(&catalog, &device, Platform::Android, None, true), None);
        assert_eq!(channel_report(&catalog, &device, Platform::Android, Some("production"), true), None);
    }

    #[test]
    fn listing_filters_like_capgo() {
        let catalog = catalog();
        let names = |platform, is_prod, is_emulator| -> Vec<&str> {
            listable_channels(&catalog, platform, is_prod, is_emulator).iter().map(|c| c.name.as_str()).collect()
        };
        assert_eq!(names(Platform::Android, true, false), ["beta", "production"]);
        assert_eq!(names(Platform::Ios, true, false), ["beta", "ios-beta", "production"]);
        assert_eq!(names(Platform::Android, false, false), ["beta", "dev-only", "production"]);
        assert_eq!(names(Platform::Android, true, true), ["beta", "production", "sim-only"]);
    }

    #[test]
    fn self_set_changes_of_server_side_choices() {
        let plain = catalog();
        let device = DeviceId::parse("d1").unwrap();
        let check = |catalog: &AppCatalog, name| self_set_change(catalog, &device, name, Platform::Android);
        assert_eq!(check(&plain, "production"), Ok(SelfSetChange::ClearOverride));
        assert_eq!(check(&plain, "beta"), Ok(SelfSetChange::SetOverride { channel_id: 2 }));
        assert_eq!(check(&plain, "internal"), Err(SelfSetDenied::Refused(SelfSetRefusal::NotAllowed)));
        assert!(!self_unset_allowed(&plain, &device));
        let with_override = |channel_id| {
            AppCatalog::new(
                plain.app().clone(),
                plain.channels().to_vec(),
                vec![],
                vec![(device.clone(), crate::device::OverrideTarget { channel_id: Some(channel_id), bundle: None })],
            )
        };
        let locked = with_override(3);
        assert_eq!(check(&locked, "beta"), Err(SelfSetDenied::OperatorOverride));
        assert_eq!(check(&locked, "production"), Err(SelfSetDenied::OperatorOverride));
        assert!(!self_unset_allowed(&locked, &device));
        let chosen = with_override(2);
        assert_eq!(check(&chosen, "production"), Ok(SelfSetChange::ClearOverride));
        assert!(self_unset_allowed(&chosen, &device));
    }
}
