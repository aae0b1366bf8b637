//! How each refusal looks on the wire: Capgo's code, a message for people, the `kind` current plugins sort by, and
//! the extra top-level fields Capgo spreads into the reply (`version`, `old`, `major`, key ids).

use serde_json::{Map, Value, json};
use updraft_core::Refusal;

/// The `kind` of a refusal. A refusal without `kind` counts as `failed` on the device (it then sends a
/// `download_fail` stat), so every refusal carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Nothing to do: the device runs what it should.
    UpToDate,
    /// Policy keeps the device where it is.
    Blocked,
    /// Something is wrong (configuration, request).
    Failed,
}

impl RefusalKind {
    /// Wire value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::UpToDate => "up_to_date",
            Self::Blocked => "blocked",
            Self::Failed => "failed",
        }
    }
}

/// The wire code, message, kind and extra fields of a refusal.
fn describe(refusal: &Refusal) -> (&'static str, String, RefusalKind, Map<String, Value>) {
    use RefusalKind::{Blocked, Failed, UpToDate};
    let mut extra = Map::new();
    let mut version_old = |version: &str, old: &str, major: bool| {
        if major {
            extra.insert("major".into(), Value::Bool(true));
        }
        extra.insert("version".into(), Value::String(version.to_owned()));
        extra.insert("old".into(), Value::String(old.to_owned()));
    };
    let (code, message, kind): (&'static str, String, RefusalKind) = match refusal {
        Refusal::AppNotFound => (
            "app_not_found",
            "This app is not registered on this update server; create it with POST /app".into(),
            Failed,
        ),
        Refusal::UnknownVersionBuild => ("unknown_version_build", "The native version_build is unknown".into(), Failed),
        Refusal::UnsupportedPluginVersion => (
            "unsupported_plugin_version",
            "This version of @capgo/capacitor-updater is not supported; upgrade the plugin to 5.0.0 or later".into(),
            Failed,
        ),
        Refusal::MissingInfo(field) => ("missing_info", format!("Cannot find {field} in the request"), Failed),
        Refusal::NoChannel => ("no_channel", "No default channel or override for this device".into(), Failed),
        Refusal::NoBundle => ("no_bundle", "The channel points at a bundle that no longer exists".into(), Failed),
        Refusal::KeyIdMismatch { device_key_id, bundle_key_id } => {
            extra.insert("deviceKeyId".into(), Value::String(device_key_id.clone()));
            extra.insert("bundleKeyId".into(), Value::String(bundle_key_id.clone()));
            ("key_id_mismatch", "The bundle was not encrypted with the public key this device has".into(), Blocked)
        }
        Refusal::NoNewVersion => ("no_new_version_available", "No new version available".into(), UpToDate),
        Refusal::FailedOnDevice { version } => {
            extra.insert("version".into(), Value::String(version.clone()));
            (
                "update_failed_on_device",
                format!(
                    "This device rolled back from {version} (update_fail), so it is not offered again; publish a new version"
                ),
                Blocked,
            )
        }
        Refusal::DisabledPlatform { platform, version, old } => {
            version_old(version, old, false);
            let code = match platform {
                updraft_core::Platform::Ios => "disabled_platform_ios",
                updraft_core::Platform::Android => "disabled_platform_android",
                updraft_core::Platform::Electron => "disabled_platform_electron",
            };
            (code, format!("Updates are disabled for {platform} on this channel"), Blocked)
        }
        Refusal::DisableToMajor { version, old } => {
            version_old(version, old, true);
            ("disable_auto_update_to_major", "Cannot upgrade major version".into(), Blocked)
        }
        Refusal::PrivateChannel => {
            ("cannot_update_via_private_channel", "Cannot update via a private channel".into(), Blocked)
        }
        Refusal::DisableToMinor { version, old } => {
            version_old(version, old, true);
            ("disable_auto_update_to_minor", "Cannot upgrade minor version".into(), Blocked)
        }
        Refusal::DisableToPatch { version, old } => {
            version_old(version, old, true);
            ("disable_auto_update_to_patch", "Cannot upgrade patch version".into(), Blocked)
        }
        Refusal::MisconfiguredChannel => (
            "misconfigured_channel",
            "The channel guards by min_update_version but the bundle has none; set min_update_version on the bundle"
                .into(),
            Failed,
        ),
        Refusal::DisableToMetadata { version, old } => {
            version_old(version, old, true);
            (
                "disable_auto_update_to_metadata",
                "The bundle's min_update_version is above this native version".into(),
                Blocked,
            )
        }
        Refusal::UnderNative { version, old } => {
            version_old(version, old, false);
            (
                "disable_auto_update_under_native",
                "Cannot revert to a bundle older than the native version".into(),
                Blocked,
            )
        }
        Refusal::DisableProdBuild => {
            ("disable_prod_build", "This channel does not serve production builds".into(), Blocked)
        }
        Refusal::DisableDevBuild => {
            ("disable_dev_build", "This channel does not serve development builds".into(), Blocked)
        }
        Refusal::DisableDevice => ("disable_device", "This channel does not serve physical devices".into(), Blocked),
        Refusal::DisableEmulator => ("disable_emulator", "This channel does not serve emulators".into(), Blocked),
        // Only devices already on builtin get this (others get the revert reply), and current Capgo answers them
        // without a `version` (`updateWithPG` in `plugin_runtime/utils/update.ts`).
        Refusal::AlreadyOnBuiltin => ("already_on_builtin", "Already on the builtin bundle".into(), UpToDate),
        Refusal::RevertTooOld => (
            "revert_to_builtin_plugin_version_too_old",
            "Reverting to the builtin bundle needs @capgo/capacitor-updater 6.2.0 or later".into(),
            Failed,
        ),
    };
    (code, message, kind, extra)
}

/// The HTTP 200 body of a refusal: `{error, message, kind, ...extra}`.
pub fn refusal_body(refusal: &Refusal) -> Value {
    let (code, message, kind, extra) = describe(refusal);
    let mut body = json!({ "error": code, "message": message, "kind": kind.as_str() });
    if let Value::Object(map) = &mut body {
        map.extend(extra);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_update_is_the_exact_capgo_triple() {
        assert_eq!(
            refusal_body(&Refusal::NoNewVersion),
            json!({"error":"no_new_version_available","message":"No new version available","kind":"up_to_date"})
        );
    }

    #[test]
    fn major_block_adds_major_version_old() {
        let body = refusal_body(&Refusal::DisableToMajor { version: "2.0.0".into(), old: "1.4.0".into() });
        assert_eq!(
            body,
            json!({"error":"disable_auto_update_to_major","message":"Cannot upgrade major version","major":true,
                   "version":"2.0.0","old":"1.4.0","kind":"blocked"})
        );
    }

    #[test]
    fn already_on_builtin_has_no_version() {
        assert_eq!(
            refusal_body(&Refusal::AlreadyOnBuiltin),
            json!({"error":"already_on_builtin","message":"Already on the builtin bundle","kind":"up_to_date"})
        );
    }

    #[test]
    fn kinds_follow_capgo_classification() {
        let cases: Vec<(Refusal, &str)> = vec![
            (Refusal::AlreadyOnBuiltin, "up_to_date"),
            (Refusal::PrivateChannel, "blocked"),
            (Refusal::DisableProdBuild, "blocked"),
            (Refusal::DisableDevBuild, "blocked"),
            (Refusal::DisableDevice, "blocked"),
            (Refusal::DisableEmulator, "blocked"),
            (Refusal::UnderNative { version: "1".into(), old: "2".into() }, "blocked"),
            (Refusal::KeyIdMismatch { device_key_id: "a".into(), bundle_key_id: "b".into() }, "blocked"),
            (Refusal::NoChannel, "failed"),
            (Refusal::NoBundle, "failed"),
            (Refusal::MisconfiguredChannel, "failed"),
            (Refusal::AppNotFound, "failed"),
            (Refusal::RevertTooOld, "failed"),
            (Refusal::UnsupportedPluginVersion, "failed"),
        ];
        for (refusal, kind) in cases {
            assert_eq!(refusal_body(&refusal)["kind"], kind, "{refusal:?}");
        }
    }
}
