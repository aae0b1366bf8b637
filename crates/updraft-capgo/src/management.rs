//! Bodies of the Capgo-compatible management API (`/app`, `/channel`, `/device`, `/bundle`): parsing what an
//! operator or the Capgo CLI sends into domain types, and the reply envelopes.
//!
//! Parsers fail with a neutral [`Failure`]; [`crate::failure`] renders it in Capgo's envelope and codes.

use serde_json::{Map, Value, json};
use updraft_core::{AppId, ChannelName, ChannelTarget, ChannelUpdate, DeviceId, DisableAutoUpdate, Failure, codes};

use crate::wire_fields::{self, FieldError};

/// The error envelope.
pub fn error_body(code: &str, message: &str) -> Value {
    json!({ "status": "KO", "error": code, "message": message })
}

/// The reply to a successful write.
pub fn ok_body() -> Value {
    json!({ "status": "ok" })
}

fn wrong_type((field, expected): FieldError) -> Failure {
    Failure::invalid(codes::INVALID_FIELD, format!("field `{field}` must be {expected}"))
}

/// Reads a JSON object body.
///
/// # Errors
/// 400 `invalid_json_parse_body` when the body is not a JSON object.
pub fn object_body(body: &[u8]) -> Result<Map<String, Value>, Failure> {
    wire_fields::object(body).map_err(|message| Failure::invalid(codes::MALFORMED_JSON, message))
}

/// Reads and checks the `app_id` field.
///
/// # Errors
/// 400 `missing_app_id` or `invalid_app_id`.
pub fn app_id_field(map: &Map<String, Value>) -> Result<AppId, Failure> {
    let raw = wire_fields::string(map, "app_id").map_err(wrong_type)?.ok_or_else(|| {
        Failure::invalid(codes::MISSING_APP_ID, "field `app_id` is required (such as com.example.app)")
    })?;
    AppId::parse(&raw).map_err(|e| Failure::invalid(codes::INVALID_APP_ID, e.to_string()))
}

/// Reads an optional string field.
///
/// # Errors
/// 400 `invalid_json_body` when it is not a string.
pub fn string_field(map: &Map<String, Value>, field: &'static str) -> Result<Option<String>, Failure> {
    wire_fields::string(map, field).map_err(wrong_type)
}

/// `POST /app`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCreate {
    /// Id.
    pub app_id: AppId,
    /// Name (defaults to the id).
    pub name: String,
}

/// Parses `POST /app` `{"app_id","name"}`.
///
/// # Errors
/// 400 naming the bad field.
pub fn parse_app_create(map: &Map<String, Value>) -> Result<AppCreate, Failure> {
    let app_id = app_id_field(map)?;
    let name = string_field(map, "name")?.unwrap_or_else(|| app_id.as_str().to_owned());
    Ok(AppCreate { app_id, name })
}

/// `POST /channel` (seed 002's `ChannelSet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSet {
    /// App.
    pub app_id: AppId,
    /// Channel to create or update.
    pub channel: ChannelName,
    /// The fields to change (a `version` of `null`, `builtin` or `unknown` points the channel at builtin).
    pub update: ChannelUpdate,
    /// Capgo's rollout fields, when the body has any.
    pub rollout: ChannelRollout,
}

/// The rollout fields of Capgo's `POST /channel` (its backend's `public/channel/post.ts` reads each in camelCase
/// and snake_case): a second version offered to a share of the channel's devices, paused, promoted or rolled back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelRollout {
    /// `rolloutVersion`: the bundle version to offer; `Some(None)` for `null` (stop offering one).
    pub version: Option<Option<String>>,
    /// `rolloutPercentageBps`, or `rolloutPercentage` × 100.
    pub percent_bps: Option<u32>,
    /// `rolloutEnabled`.
    pub enabled: Option<bool>,
    /// `rolloutPaused`.
    pub paused: Option<bool>,
    /// `rolloutPauseReason`.
    pub pause_reason: Option<String>,
    /// `promoteToStable: true`: the rollout version becomes the channel's.
    pub promote_to_stable: bool,
    /// `rollback: true`: stop offering the rollout version.
    pub rollback: bool,
}

impl ChannelRollout {
    /// Whether the body had no rollout field.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Reads Capgo's rollout fields of a `POST /channel` body.
fn channel_rollout(map: &Map<String, Value>) -> Result<ChannelRollout, Failure> {
    let value = |camel: &str, snake: &str| map.get(camel).or_else(|| map.get(snake)).cloned();
    let flag = |camel: &'static str, snake: &'static str| -> Result<Option<bool>, Failure> {
        Ok(wire_fields::boolean(map, camel)
            .map_err(wrong_type)?
            .or(wire_fields::boolean(map, snake).map_err(wrong_type)?))
    };
    let invalid = |message: String| Failure::invalid("invalid_rollout_config", message);
    let version = match value("rolloutVersion", "rollout_version") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(version)) => Some(Some(version)),
        Some(_) => return Err(invalid("rolloutVersion must be a bundle version name (a string) or null".into())),
    };
    let bps = match value("rolloutPercentageBps", "rollout_percentage_bps") {
        Some(Value::Number(n)) => match n.as_u64().filter(|bps| *bps <= 10_000) {
            Some(bps) => Some(bps as u32),
            None => {
                return Err(invalid(format!("rolloutPercentageBps must be an integer between 0 and 10000, got {n}")));
            }
        },
        Some(Value::Null) | None => None,
        Some(other) => return Err(invalid(format!("rolloutPercentageBps must be a number, got {other}"))),
    };
    let percent = match value("rolloutPercentage", "rollout_percentage") {
        Some(Value::Number(n)) => match n.as_f64().filter(|p| (0.0..=100.0).contains(p)) {
            Some(percent) => Some((percent * 100.0).round() as u32),
            None => return Err(invalid(format!("rolloutPercentage must be between 0 and 100, got {n}"))),
        },
        Some(Value::Null) | None => None,
        Some(other) => return Err(invalid(format!("rolloutPercentage must be a number, got {other}"))),
    };
    let pause_reason = match value("rolloutPauseReason", "rollout_pause_reason") {
        Some(Value::String(reason)) => Some(reason),
        _ => None,
    };
    Ok(ChannelRollout {
        version,
        percent_bps: bps.or(percent),
        enabled: flag("rolloutEnabled", "rollout_enabled")?,
        paused: flag("rolloutPaused", "rollout_paused")?,
        pause_reason,
        promote_to_stable: flag("promoteToStable", "promote_to_stable")?.unwrap_or(false),
        rollback: wire_fields::boolean(map, "rollback").map_err(wrong_type)?.unwrap_or(false),
    })
}

/// Reads a required channel name field.
///
/// # Errors
/// 400 `missing_channel_name` or `invalid_json_body`.
pub fn channel_field(map: &Map<String, Value>, field: &'static str) -> Result<ChannelName, Failure> {
    let raw = string_field(map, field)?.ok_or_else(|| {
        Failure::invalid(codes::MISSING_CHANNEL_NAME, format!("field `{field}` is required (a channel name)"))
    })?;
    ChannelName::parse(&raw).map_err(|e| Failure::invalid(codes::INVALID_FIELD, e.to_string()))
}

/// Parses `POST /channel`. Both Capgo's camelCase and snake_case spellings of the auto-update fields are read.
///
/// # Errors
/// 400 naming the bad field.
pub fn parse_channel_set(map: &Map<String, Value>) -> Result<ChannelSet, Failure> {
    let app_id = app_id_field(map)?;
    let channel = channel_field(map, "channel")?;
    let flag = |field: &'static str| wire_fields::boolean(map, field).map_err(wrong_type);
    let either_flag = |camel: &'static str, snake: &'static str| -> Result<Option<bool>, Failure> {
        Ok(flag(camel)?.or(flag(snake)?))
    };
    let target = match map.get("version") {
        None => None,
        Some(Value::Null) => Some(ChannelTarget::Builtin),
        Some(Value::String(raw)) => Some(ChannelTarget::parse(raw).map_err(|e| {
            Failure::invalid(
                codes::INVALID_VERSION,
                format!("{e}; or use \"builtin\" to serve the bundle embedded in the app"),
            )
        })?),
        Some(_) => {
            return Err(wrong_type(("version", "a string (a bundle version, or \"builtin\")")));
        }
    };
    let mode_raw = match string_field(map, "disableAutoUpdate")? {
        Some(mode) => Some(mode),
        None => string_field(map, "disable_auto_update")?,
    };
    let disable_auto_update = mode_raw
        .map(|raw| {
            DisableAutoUpdate::parse(&raw).ok_or_else(|| {
                Failure::invalid(
                    codes::INVALID_FIELD,
                    format!("field `disableAutoUpdate` must be one of major, minor, patch, version_number, none; got {raw:?}"),
                )
            })
        })
        .transpose()?;
    let update = ChannelUpdate {
        target,
        public: flag("public")?,
        disable_auto_update,
        disable_auto_update_under_native: either_flag(
            "disableAutoUpdateUnderNative",
            "disable_auto_update_under_native",
        )?,
        ios: flag("ios")?,
        android: flag("android")?,
        electron: flag("electron")?,
        allow_device_self_set: flag("allow_device_self_set")?,
        allow_emulator: flag("allow_emulator")?,
        allow_device: flag("allow_device")?,
        allow_dev: flag("allow_dev")?,
        allow_prod: flag("allow_prod")?,
    };
    let rollout = channel_rollout(map)?;
    Ok(ChannelSet { app_id, channel, update, rollout })
}

/// `POST /device` (seed 002's `DeviceLink`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLink {
    /// App.
    pub app_id: AppId,
    /// Device.
    pub device_id: DeviceId,
    /// Channel to force the device onto.
    pub channel: Option<ChannelName>,
    /// Bundle to pin the device to (`version_id` in the seed: a version name, or `builtin`).
    pub version: Option<ChannelTarget>,
}

/// Reads the `device_id` field.
///
/// # Errors
/// 400 `missing_device_id` or `invalid_json_body`.
pub fn device_id_field(map: &Map<String, Value>) -> Result<DeviceId, Failure> {
    let raw = string_field(map, "device_id")?
        .ok_or_else(|| Failure::invalid(codes::MISSING_DEVICE_ID, "field `device_id` is required"))?;
    DeviceId::parse(&raw).map_err(|e| Failure::invalid(codes::INVALID_FIELD, e.to_string()))
}

/// Parses `POST /device`.
///
/// # Errors
/// 400 naming the bad field.
pub fn parse_device_link(map: &Map<String, Value>) -> Result<DeviceLink, Failure> {
    let app_id = app_id_field(map)?;
    let device_id = device_id_field(map)?;
    let channel = string_field(map, "channel")?
        .map(|raw| ChannelName::parse(&raw))
        .transpose()
        .map_err(|e| Failure::invalid(codes::INVALID_FIELD, e.to_string()))?;
    let version = string_field(map, "version_id")?
        .map(|raw| ChannelTarget::parse(&raw))
        .transpose()
        .map_err(|e| Failure::invalid(codes::INVALID_VERSION, format!("field `version_id`: {e}")))?;
    Ok(DeviceLink { app_id, device_id, channel, version })
}

fn timestamp(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A channel as `GET /channel` lists it (seed 002's `Channel`, plus the platform flags).
pub fn channel_json(channel: &updraft_core::Channel, catalog: &updraft_core::AppCatalog) -> Value {
    let settings = &channel.settings;
    let version = channel
        .bundle_id
        .and_then(|id| catalog.bundle(id))
        .map_or(Value::Null, |bundle| json!({ "id": bundle.id, "name": bundle.version.as_str() }));
    json!({
        "id": channel.id,
        "created_at": timestamp(channel.created_at),
        "updated_at": timestamp(channel.updated_at),
        "name": channel.name.as_str(),
        "app_id": channel.app_id.as_str(),
        "created_by": "",
        "version": version,
        "public": settings.public,
        "disableAutoUpdateUnderNative": settings.disable_auto_update_under_native,
        "disableAutoUpdate": settings.disable_auto_update.as_str(),
        "ios": settings.ios,
        "android": settings.android,
        "electron": settings.electron,
        "allow_device_self_set": settings.allow_device_self_set,
        "allow_emulator": settings.allow_emulator,
        "allow_device": settings.allow_device,
        "allow_dev": settings.allow_dev,
        "allow_prod": settings.allow_prod,
    })
}

/// A bundle as `GET /bundle` lists it (seed 002's `Bundle`).
pub fn bundle_json(bundle: &updraft_core::Bundle) -> Value {
    let (external_url, r2_path, storage_provider, size) = match &bundle.source {
        updraft_core::BundleSource::Stored { object_key, size_bytes, .. } => {
            (Value::Null, Value::String(object_key.clone()), "updraft", json!(size_bytes))
        }
        updraft_core::BundleSource::External { url } => {
            (Value::String(url.clone()), Value::Null, "external", Value::Null)
        }
    };
    let min_update_version = bundle.min_update_version.as_ref().map(ToString::to_string);
    json!({
        "id": bundle.id,
        "app_id": bundle.app_id.as_str(),
        "name": bundle.version.as_str(),
        "checksum": bundle.checksum,
        "session_key": bundle.encryption.as_ref().map(|e| e.session_key.clone()),
        "key_id": bundle.encryption.as_ref().and_then(|e| e.key_id.clone()),
        "external_url": external_url,
        "r2_path": r2_path,
        "storage_provider": storage_provider,
        "size": size,
        "minUpdateVersion": min_update_version,
        "min_update_version": min_update_version,
        "manifest_count": bundle.manifest.len(),
        "link": bundle.metadata.link,
        "comment": bundle.metadata.comment,
        "created_at": timestamp(bundle.created_at),
        "updated_at": timestamp(bundle.created_at),
        "deleted": false,
        "bucket_id": null,
        "native_packages": null,
        "owner_org": "",
        "user_id": null,
    })
}

/// A device as `GET /device` returns it: its last report, plus its override (`channel`, `version`) if any.
pub fn device_json(device: &updraft_core::DeviceReport, catalog: &updraft_core::AppCatalog) -> Value {
    let mut answer = json!({
        "updated_at": timestamp(device.seen_at),
        "device_id": device.device_id.as_str(),
        "custom_id": device.custom_id,
        "is_prod": device.is_prod,
        "is_emulator": device.is_emulator,
        "install_source": device.install_source,
        "version_name": device.version_name,
        "app_id": device.app_id.as_str(),
        "platform": device.platform.as_str(),
        "plugin_version": device.plugin_version,
        "os_version": device.version_os,
        "version_build": device.version_build,
        "version_code": device.version_code,
        "key_id": device.key_id,
        "default_channel": device.default_channel,
    });
    let Some(target) = catalog.override_for(&device.device_id) else { return answer };
    if let Value::Object(map) = &mut answer {
        if let Some(channel) = target.channel_id.and_then(|id| catalog.channel_by_id(id)) {
            map.insert("channel".into(), Value::String(channel.name.as_str().to_owned()));
        }
        match target.bundle {
            Some(updraft_core::BundlePin::Builtin) => {
                map.insert("version".into(), json!({ "id": null, "name": "builtin" }));
            }
            Some(updraft_core::BundlePin::Bundle(id)) => {
                if let Some(bundle) = catalog.bundle(id) {
                    map.insert("version".into(), json!({ "id": bundle.id, "name": bundle.version.as_str() }));
                }
            }
            None => {}
        }
    }
    answer
}

/// A page of a list: 50 items, zero-based `page`.
pub const PAGE_SIZE: usize = 50;

/// Reads the zero-based `page` parameter.
///
/// # Errors
/// 400 when it is not a whole number.
pub fn page_field(map: &Map<String, Value>) -> Result<usize, Failure> {
    match string_field(map, "page")? {
        None => Ok(0),
        Some(raw) => raw
            .parse()
            .map_err(|_| Failure::invalid(codes::INVALID_FIELD, format!("`page` must be a whole number, got {raw:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use updraft_core::BundleVersion;

    use crate::failure::CapgoFailure;

    use super::*;

    fn parse_channel_set(body: &[u8]) -> Result<ChannelSet, Failure> {
        super::parse_channel_set(&object_body(body)?)
    }

    fn parse_device_link(body: &[u8]) -> Result<DeviceLink, Failure> {
        super::parse_device_link(&object_body(body)?)
    }

    #[test]
    fn channel_set_reads_every_seed_field() {
        let body = br#"{"app_id":"com.example.app","channel":"beta","version":"1.2.3","public":true,
            "disableAutoUpdateUnderNative":false,"disableAutoUpdate":"minor","ios":false,"android":true,
            "allow_device_self_set":true,"allow_emulator":false,"allow_dev":false,"allow_prod":true,
            "allow_device":true,"electron":false}"#;
        let set = parse_channel_set(body).unwrap();
        assert_eq!(set.channel.as_str(), "beta");
        assert_eq!(set.update.target, Some(ChannelTarget::Bundle(BundleVersion::parse("1.2.3").unwrap())));
        assert_eq!(set.update.public, Some(true));
        assert_eq!(set.update.disable_auto_update, Some(DisableAutoUpdate::Minor));
        assert_eq!(set.update.disable_auto_update_under_native, Some(false));
        assert_eq!((set.update.ios, set.update.android, set.update.electron), (Some(false), Some(true), Some(false)));
        assert_eq!(set.update.allow_device_self_set, Some(true));
        assert_eq!((set.update.allow_emulator, set.update.allow_dev), (Some(false), Some(false)));
    }

    #[test]
    fn channel_set_version_null_or_builtin_means_builtin() {
        for version in ["null", "\"builtin\"", "\"unknown\""] {
            let body = format!(r#"{{"app_id":"com.example.app","channel":"c","version":{version}}}"#);
            assert_eq!(parse_channel_set(body.as_bytes()).unwrap().update.target, Some(ChannelTarget::Builtin));
        }
        let absent = parse_channel_set(br#"{"app_id":"com.example.app","channel":"c"}"#).unwrap();
        assert_eq!(absent.update, ChannelUpdate::default());
    }

    #[test]
    fn channel_set_errors_name_the_field() {
        let cases: [(&[u8], &str); 6] = [
            (b"{", "invalid_json_parse_body"),
            (br#"{"channel":"c"}"#, "missing_app_id"),
            (br#"{"app_id":"com.example.app"}"#, "missing_channel_name"),
            (br#"{"app_id":"com.example.app","channel":"c","public":"maybe"}"#, "invalid_json_body"),
            (br#"{"app_id":"com.example.app","channel":"c","disableAutoUpdate":"always"}"#, "invalid_json_body"),
            (br#"{"app_id":"com.example.app","channel":"c","version":"v1"}"#, "invalid_version"),
        ];
        for (body, code) in cases {
            assert_eq!(parse_channel_set(body).unwrap_err().capgo_code(), code, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn device_link_reads_channel_and_version() {
        let link =
            parse_device_link(br#"{"app_id":"com.example.app","device_id":"ABC","channel":"qa","version_id":"1.0.1"}"#)
                .unwrap();
        assert_eq!(link.device_id.as_str(), "abc");
        assert_eq!(link.channel.unwrap().as_str(), "qa");
        assert_eq!(link.version, Some(ChannelTarget::Bundle(BundleVersion::parse("1.0.1").unwrap())));
        assert_eq!(
            parse_device_link(br#"{"app_id":"com.example.app"}"#).unwrap_err().capgo_code(),
            "missing_device_id"
        );
    }
}
