//! The public app config a publish carries (`npx expo config --json --type public`, saved as `expoConfig.json`):
//! which runtime version each platform's update is for, and the `extra.eas` object the manifest passes on.
//!
//! The runtime version of a platform is `<platform>.runtimeVersion`, else `runtimeVersion` (expo-updates
//! `utils/src/resolveRuntimeVersionAsync.ts`). A string is final; a `{"policy": …}` object is resolved by Expo's
//! tooling from the native project, so the operator passes its result. The fingerprint policy gives iOS and Android
//! different values (expo/expo PR #26901), and the client only takes an update for its exact runtime version, so one
//! value for both platforms would leave one of them without updates, silently.

use serde_json::Value;
use updraft_core::Platform;

/// The runtime versions given on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeFlags {
    /// `--runtime-version`: every platform.
    pub all: Option<String>,
    /// `--ios-runtime-version`.
    pub ios: Option<String>,
    /// `--android-runtime-version`.
    pub android: Option<String>,
}

impl RuntimeFlags {
    fn for_platform(&self, platform: Platform) -> Option<(&str, String)> {
        let own = match platform {
            Platform::Ios => self.ios.as_deref(),
            Platform::Android => self.android.as_deref(),
            _ => None,
        };
        match (own, self.all.as_deref()) {
            (Some(value), _) => Some((value, format!("--{platform}-runtime-version"))),
            (None, Some(value)) => Some((value, "--runtime-version".to_owned())),
            (None, None) => None,
        }
    }
}

/// Why the runtime versions cannot be settled. Each message is one line saying what to pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeVersionError {
    /// A flag disagrees with the string in the app config.
    #[error(
        "{flag} {given:?} contradicts expoConfig.json, whose runtime version for {platform} is {configured:?}; devices only take updates for the runtime version they were built with, so pass that one (or export again after changing it)"
    )]
    Contradiction {
        /// The platform.
        platform: Platform,
        /// The flag that gave `given`.
        flag: String,
        /// The value given.
        given: String,
        /// The value in the config.
        configured: String,
    },
    /// The config has a policy, which only Expo's tooling resolves, and no value was given.
    #[error(
        "expoConfig.json sets runtimeVersion {policy} for {platform}, which only Expo's tooling resolves: pass --{platform}-runtime-version with the runtimeVersion that `npx expo-updates runtimeversion:resolve --platform {platform}` prints"
    )]
    PolicyUnresolved {
        /// The platform.
        platform: Platform,
        /// The policy object, as JSON.
        policy: String,
    },
    /// One `--runtime-version` for two platforms under the fingerprint policy.
    #[error(
        "the fingerprint runtime version policy gives iOS and Android different runtime versions, so --runtime-version cannot serve both: pass --ios-runtime-version and --android-runtime-version (each from `npx expo-updates runtimeversion:resolve --platform <platform>`)"
    )]
    FingerprintShared,
    /// Nothing in the config and no flag.
    #[error("no runtime version for {0}: expoConfig.json has none; pass --runtime-version (or --{0}-runtime-version)")]
    Missing(Platform),
    /// The config's `runtimeVersion` is neither a string nor a policy object.
    #[error(
        "expoConfig.json has runtimeVersion {0} for {1}, which is neither a string nor {{\"policy\": …}}; fix app.json"
    )]
    Invalid(String, Platform),
    /// A platform flag for a platform that is not published.
    #[error("--{0}-runtime-version is given, but {0} is not published (see --platform and metadata.json)")]
    Unused(Platform),
    /// An empty or blank value.
    #[error("{0} must not be empty")]
    Empty(String),
}

/// What the config says about one platform's runtime version.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Configured {
    Fixed(String),
    Policy { name: Option<String>, json: String },
    Unset,
}

fn configured(config: &Value, platform: Platform) -> Result<Configured, RuntimeVersionError> {
    let value = config
        .get(platform.as_str())
        .and_then(|section| section.get("runtimeVersion"))
        .filter(|v| !v.is_null())
        .or_else(|| config.get("runtimeVersion").filter(|v| !v.is_null()));
    match value {
        None => Ok(Configured::Unset),
        Some(Value::String(text)) => Ok(Configured::Fixed(text.clone())),
        Some(object @ Value::Object(members)) if members.contains_key("policy") => Ok(Configured::Policy {
            name: members.get("policy").and_then(Value::as_str).map(str::to_owned),
            json: object.to_string(),
        }),
        Some(other) => Err(RuntimeVersionError::Invalid(other.to_string(), platform)),
    }
}

/// The runtime version of each published platform, from the flags and the app config.
///
/// # Errors
/// [`RuntimeVersionError`] when a flag contradicts the config, a policy is left unresolved, one value is given for
/// both platforms under the fingerprint policy, or nothing says what a platform's runtime version is.
pub fn runtime_versions(
    config: &Value,
    platforms: &[Platform],
    flags: &RuntimeFlags,
) -> Result<Vec<(Platform, String)>, RuntimeVersionError> {
    for (value, flag) in [
        (&flags.all, "--runtime-version"),
        (&flags.ios, "--ios-runtime-version"),
        (&flags.android, "--android-runtime-version"),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(RuntimeVersionError::Empty(flag.to_owned()));
        }
    }
    for (platform, given) in [(Platform::Ios, &flags.ios), (Platform::Android, &flags.android)] {
        if given.is_some() && !platforms.contains(&platform) {
            return Err(RuntimeVersionError::Unused(platform));
        }
    }
    let mut resolved = Vec::new();
    let mut shared_under_fingerprint = 0;
    for &platform in platforms {
        let configured = configured(config, platform)?;
        let given = flags.for_platform(platform);
        let value = match (configured, given) {
            (Configured::Fixed(configured), Some((given, flag))) if given != configured => {
                return Err(RuntimeVersionError::Contradiction { platform, flag, given: given.to_owned(), configured });
            }
            (Configured::Fixed(configured), _) => configured,
            (Configured::Policy { name, .. }, Some((given, flag))) => {
                if name.as_deref() == Some("fingerprint") && flag == "--runtime-version" {
                    shared_under_fingerprint += 1;
                }
                given.to_owned()
            }
            (Configured::Policy { json, .. }, None) => {
                return Err(RuntimeVersionError::PolicyUnresolved { platform, policy: json });
            }
            (Configured::Unset, Some((given, _))) => given.to_owned(),
            (Configured::Unset, None) => return Err(RuntimeVersionError::Missing(platform)),
        };
        resolved.push((platform, value));
    }
    if shared_under_fingerprint > 1 {
        return Err(RuntimeVersionError::FingerprintShared);
    }
    Ok(resolved)
}

/// The config's `extra.eas` (EAS project settings such as `projectId`), which the manifest carries as `extra.eas`:
/// `Constants.easConfig` reads it there (expo/expo `packages/expo-constants/src/Constants.ts`).
pub fn eas_config(config: &Value) -> Option<&Value> {
    config.get("extra").and_then(|extra| extra.get("eas")).filter(|eas| eas.is_object())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const BOTH: &[Platform] = &[Platform::Ios, Platform::Android];

    fn flags(all: Option<&str>, ios: Option<&str>, android: Option<&str>) -> RuntimeFlags {
        let own = |v: Option<&str>| v.map(str::to_owned);
        RuntimeFlags { all: own(all), ios: own(ios), android: own(android) }
    }

    fn check(config: Value, platforms: &[Platform], given: RuntimeFlags, expected: Result<&[(&str, &str)], &str>) {
        let got = runtime_versions(&config, platforms, &given);
        match (got, expected) {
            (Ok(versions), Ok(expected)) => {
                let versions: Vec<(&str, &str)> = versions.iter().map(|(p, v)| (p.as_str(), v.as_str())).collect();
                assert_eq!(versions, expected, "{config} {given:?}");
            }
            (Err(error), Err(fragment)) => {
                assert!(error.to_string().contains(fragment), "{config} {given:?}: {error}");
            }
            (got, expected) => panic!("{config} {given:?}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn a_string_in_the_config_is_used_and_must_not_be_contradicted() {
        let config = json!({"runtimeVersion": "1.0.0"});
        check(config.clone(), BOTH, flags(None, None, None), Ok(&[("ios", "1.0.0"), ("android", "1.0.0")]));
        check(config.clone(), BOTH, flags(Some("1.0.0"), None, None), Ok(&[("ios", "1.0.0"), ("android", "1.0.0")]));
        check(config.clone(), BOTH, flags(Some("2.0.0"), None, None), Err("--runtime-version \"2.0.0\" contradicts"));
        check(config, BOTH, flags(None, None, Some("2")), Err("--android-runtime-version \"2\" contradicts"));
        // A platform section wins over the top level.
        let split = json!({"runtimeVersion": "1.0.0", "android": {"runtimeVersion": "1.0.1"}});
        check(split.clone(), BOTH, flags(None, None, None), Ok(&[("ios", "1.0.0"), ("android", "1.0.1")]));
        check(split, BOTH, flags(Some("1.0.0"), None, None), Err("for android is \"1.0.1\""));
    }

    #[test]
    fn a_policy_needs_the_resolved_values() {
        let fingerprint = json!({"runtimeVersion": {"policy": "fingerprint"}});
        check(fingerprint.clone(), BOTH, flags(None, None, None), Err("runtimeversion:resolve --platform ios"));
        check(fingerprint.clone(), BOTH, flags(Some("abc"), None, None), Err("different runtime versions"));
        check(fingerprint.clone(), BOTH, flags(None, Some("f1"), Some("f2")), Ok(&[("ios", "f1"), ("android", "f2")]));
        // One platform may still use --runtime-version.
        check(fingerprint.clone(), &[Platform::Ios], flags(Some("f1"), None, None), Ok(&[("ios", "f1")]));
        check(fingerprint, BOTH, flags(Some("f1"), Some("f0"), None), Ok(&[("ios", "f0"), ("android", "f1")]));
        let app_version = json!({"runtimeVersion": {"policy": "appVersion"}});
        check(
            app_version.clone(),
            BOTH,
            flags(Some("1.2.0"), None, None),
            Ok(&[("ios", "1.2.0"), ("android", "1.2.0")]),
        );
        check(app_version, &[Platform::Android], flags(None, None, None), Err("--android-runtime-version"));
    }

    #[test]
    fn nothing_configured_needs_a_flag() {
        check(json!({}), BOTH, flags(Some("7"), None, None), Ok(&[("ios", "7"), ("android", "7")]));
        check(
            json!({"runtimeVersion": null}),
            BOTH,
            flags(None, Some("7"), Some("8")),
            Ok(&[("ios", "7"), ("android", "8")]),
        );
        check(json!({}), BOTH, flags(None, Some("7"), None), Err("no runtime version for android"));
        check(json!({}), BOTH, flags(Some(" "), None, None), Err("--runtime-version must not be empty"));
        check(json!({}), &[Platform::Ios], flags(Some("1"), None, Some("2")), Err("android is not published"));
        check(json!({"runtimeVersion": 3}), BOTH, flags(Some("3"), None, None), Err("neither a string"));
    }

    #[test]
    fn eas_settings_are_found_only_as_an_object() {
        assert_eq!(eas_config(&json!({"extra": {"eas": {"projectId": "p"}}})), Some(&json!({"projectId": "p"})));
        assert_eq!(eas_config(&json!({"extra": {"eas": "p"}})), None);
        assert_eq!(eas_config(&json!({"extra": {}})), None);
        assert_eq!(eas_config(&json!({})), None);
    }
}
