//! `channelUrl` (`/channel_self`): the plugin's `setChannel` (POST), `getChannel` (PUT), `listChannels` (GET, info
//! object in the query string) and, from plugins older than 5.34 / 6.34 / 7.34 / 8.0, `unsetChannel` (DELETE).
//! Parsing and reply shapes; the rules are `updraft_core::self_assignable` and `listable_channels`.

use serde_json::{Map, Value, json};
use updraft_core::{AppId, Channel, ChannelReport, DeviceId, Platform, PluginVersion, SelfSetRefusal};

use crate::error_codes;
use crate::wire_fields;

/// A parsed `/channel_self` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSelfRequest {
    /// App.
    pub app_id: AppId,
    /// Device.
    pub device_id: DeviceId,
    /// Platform.
    pub platform: Platform,
    /// Plugin version, when sent.
    pub plugin_version: Option<PluginVersion>,
    /// Production build.
    pub is_prod: bool,
    /// Emulator.
    pub is_emulator: bool,
    /// `channel` (setChannel).
    pub channel: Option<String>,
    /// `defaultChannel`.
    pub default_channel: Option<String>,
}

impl ChannelSelfRequest {
    /// Plugins from 5.34 / 6.34 / 7.34 / 8.0 keep their channel locally: the server validates and stores nothing.
    pub fn keeps_channel_locally(&self) -> bool {
        self.plugin_version.as_ref().is_none_or(PluginVersion::keeps_channel_locally)
    }
}

/// A 400 with a code and message.
pub type ChannelSelfError = (&'static str, String);

/// Parses the info object (a JSON body, or the query string turned into a map).
///
/// # Errors
/// 400 with a Capgo code naming the missing or bad field.
pub fn parse_channel_self(map: &Map<String, Value>) -> Result<ChannelSelfRequest, ChannelSelfError> {
    let wrong = |(field, expected): (&'static str, &'static str)| {
        (error_codes::INVALID_JSON_BODY, format!("field `{field}` must be {expected}"))
    };
    let text = |field| wire_fields::string(map, field).map_err(wrong);
    let flag = |field| wire_fields::boolean(map, field).map_err(wrong);
    let app_id = text("app_id")?.ok_or((error_codes::MISSING_APP_ID, "field `app_id` is required".to_owned()))?;
    let app_id = AppId::parse(&app_id).map_err(|e| (error_codes::INVALID_APP_ID, e.to_string()))?;
    let device_id =
        text("device_id")?.ok_or((error_codes::MISSING_DEVICE_ID, "field `device_id` is required".to_owned()))?;
    let device_id = DeviceId::parse(&device_id).map_err(|e| (error_codes::INVALID_JSON_BODY, e.to_string()))?;
    let platform =
        text("platform")?.ok_or((error_codes::INVALID_JSON_BODY, "field `platform` is required".to_owned()))?;
    let platform = Platform::parse(&platform).map_err(|e| (error_codes::INVALID_JSON_BODY, e.to_string()))?;
    Ok(ChannelSelfRequest {
        app_id,
        device_id,
        platform,
        plugin_version: text("plugin_version")?.and_then(|v| PluginVersion::parse(&v)),
        is_prod: flag("is_prod")?.unwrap_or(true),
        is_emulator: flag("is_emulator")?.unwrap_or(false),
        channel: text("channel")?,
        default_channel: text("defaultChannel")?,
    })
}

/// The refusal of a `setChannel`, HTTP 200 `{error, message}` as Capgo answers it.
pub fn self_set_refusal_body(refusal: SelfSetRefusal, channel: &str) -> Value {
    let (code, message) = match refusal {
        SelfSetRefusal::ChannelNotFound => ("channel_not_found", format!("Cannot find channel {channel}")),
        SelfSetRefusal::PublicChannel => (
            "public_channel_self_set_not_allowed",
            format!("Channel {channel} is the public default; call unsetChannel() to use it"),
        ),
        SelfSetRefusal::NotAllowed => {
            ("channel_self_set_not_allowed", format!("Channel {channel} does not allow devices to select it"))
        }
    };
    json!({ "error": code, "message": message })
}

/// The `setChannel` success reply (no `error` key: Android treats any `error` key as a failure).
pub fn set_ok_body() -> Value {
    json!({ "status": "ok", "allowSet": true })
}

/// The `setChannel` refusal for a body without `channel`: HTTP 200, as Capgo answers it.
pub fn missing_channel_body() -> Value {
    json!({ "error": error_codes::MISSING_CHANNEL, "message": "Cannot find channel in body; send the channel to join as `channel`" })
}

/// The `getChannel` reply (see [`updraft_core::channel_report`] for when the name is left out).
pub fn get_channel_body(report: &ChannelReport<'_>) -> Value {
    json!({
        "channel": if report.named { report.channel.name.as_str() } else { "" },
        "status": if report.chosen { "override" } else { "default" },
        "allowSet": report.channel.settings.allow_device_self_set,
    })
}

/// The `listChannels` reply: a bare array with numeric ids.
pub fn list_body(channels: &[&Channel]) -> Value {
    Value::Array(
        channels
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "name": c.name.as_str(),
                    "public": c.settings.public,
                    "allow_self_set": c.settings.allow_device_self_set,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_string_bools_and_old_plugins() {
        let map: Map<String, Value> = serde_json::from_str(
            r#"{"app_id":"com.example.app","device_id":"D","platform":"ios","is_prod":"false","is_emulator":"true",
                "plugin_version":"6.14.0"}"#,
        )
        .unwrap();
        let request = parse_channel_self(&map).unwrap();
        assert!(!request.is_prod && request.is_emulator);
        assert!(!request.keeps_channel_locally());
        assert_eq!(request.device_id.as_str(), "d");
    }

    #[test]
    fn refusal_bodies_have_no_kind_and_success_has_no_error() {
        assert_eq!(self_set_refusal_body(SelfSetRefusal::NotAllowed, "beta")["error"], "channel_self_set_not_allowed");
        assert!(set_ok_body().get("error").is_none());
    }
}
