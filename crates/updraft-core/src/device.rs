//! Devices: what a device reported about itself, and the per-device overrides an operator sets.

use chrono::{DateTime, Utc};

use crate::ids::{AppId, DeviceId, Platform};

/// A per-device bundle pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundlePin {
    /// Send the device back to the bundle embedded in the app.
    Builtin,
    /// Serve this bundle, by id.
    Bundle(i64),
}

/// What an operator pinned for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideTarget {
    /// Channel the device is forced onto, by id.
    pub channel_id: Option<i64>,
    /// Bundle the device is pinned to.
    pub bundle: Option<BundlePin>,
}

/// A per-device override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceOverride {
    /// App.
    pub app_id: AppId,
    /// Device.
    pub device_id: DeviceId,
    /// What is pinned.
    pub target: OverrideTarget,
}

/// The latest state a device reported in an update check (written behind, off the request path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReport {
    /// App.
    pub app_id: AppId,
    /// Device.
    pub device_id: DeviceId,
    /// Platform.
    pub platform: Platform,
    /// Current bundle name.
    pub version_name: String,
    /// Native version as sent.
    pub version_build: String,
    /// Native build number.
    pub version_code: String,
    /// OS version.
    pub version_os: String,
    /// Plugin version.
    pub plugin_version: String,
    /// Operator-set custom id.
    pub custom_id: String,
    /// Production build.
    pub is_prod: bool,
    /// Emulator or simulator.
    pub is_emulator: bool,
    /// Store the app came from.
    pub install_source: String,
    /// Channel the device asked for.
    pub default_channel: String,
    /// Encryption key id.
    pub key_id: String,
    /// When the report was received.
    pub seen_at: DateTime<Utc>,
}
