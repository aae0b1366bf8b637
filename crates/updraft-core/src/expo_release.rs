//! Expo releases: what one `updraft publish expo` (or a rollback or promotion) records per platform, and the
//! rules that pick what an `expo-updates` client gets.
//!
//! The client only moves to an update whose `createdAt` is strictly newer than the one it runs, so rollbacks and
//! promotions always mint a new release (new id, new time) instead of re-serving an old one.

use chrono::{DateTime, Utc};

use crate::ids::{AppId, Platform};

/// One asset of an Expo release, content-addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpoAsset {
    /// Lowercase hex SHA-256 of the bytes (the storage address).
    pub sha256: String,
    /// Lowercase hex MD5 of the bytes: the manifest `key`, which is the file name on the device.
    pub md5: String,
    /// File extension without the dot, as `metadata.json` gives it (`png`, `ttf`, `hbc`, `js`).
    pub ext: String,
}

/// What a release serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpoReleaseKind {
    /// An update: a launch asset (the JS bundle) and assets.
    Update {
        /// The JS (or Hermes bytecode) bundle.
        launch_asset: ExpoAsset,
        /// Every other asset, deduplicated.
        assets: Vec<ExpoAsset>,
        /// The public app config (`extra.expoClient`), as JSON text.
        expo_client: String,
    },
    /// Roll devices back to the update embedded in the binary.
    RollBackToEmbedded,
}

/// A release for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpoRelease {
    /// Lowercase UUID: the manifest `id`.
    pub id: String,
    /// Shared by the per-platform releases of one publish.
    pub group_id: String,
    /// App.
    pub app_id: AppId,
    /// Channel name (the `expo-channel-name` header).
    pub channel: String,
    /// Runtime version, matched byte for byte.
    pub runtime_version: String,
    /// iOS or Android.
    pub platform: Platform,
    /// `createdAt` (a rollback's `commitTime`), millisecond precision.
    pub created_at: DateTime<Utc>,
    /// Operator's note.
    pub message: String,
    /// Update or rollback.
    pub kind: ExpoReleaseKind,
}

/// Why an asset cannot be named in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeAsset {
    /// A file extension outside the safe set.
    #[error(
        "file extension {0:?} is not allowed: use 1 to 32 letters, digits, '_', '-' or inner '.' (such as png, ttf or hbc); expo-updates stores each asset as <key>.<extension>, rejects a whole update whose names hold a path separator (57.0.14 and later), and older clients write such files outside their directory"
    )]
    Extension(String),
    /// A key that is not the lowercase hex MD5 the gateway computed.
    #[error("asset key {0:?} is not a lowercase hex MD5")]
    Key(String),
}

/// Checks a file extension (without its leading dot) before it is published. expo-updates names each downloaded
/// asset `<key><fileExtension>` inside its updates directory and refuses names with `/`, `\` or NUL since 57.0.14
/// (android `UpdatesUtils.isSafeFilename`, called from `manifest/ExpoUpdatesUpdate.kt` and
/// `loader/FileDownloader.kt`; ios `UpdatesUtils.isSafeFilename` from `Update/Update.swift`); older clients follow
/// them out of the directory. Updraft accepts a narrower, portable set. Empty means "none" (served as `.bundle`).
///
/// # Errors
/// [`UnsafeAsset::Extension`].
pub fn check_asset_extension(ext: &str) -> Result<(), UnsafeAsset> {
    let safe = ext.is_empty()
        || (ext.len() <= 32
            && ext.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !ext.starts_with('.')
            && !ext.ends_with('.')
            && !ext.contains(".."));
    if safe { Ok(()) } else { Err(UnsafeAsset::Extension(ext.to_owned())) }
}

impl ExpoAsset {
    /// Checks that the asset's key and extension make a safe file name on the device.
    ///
    /// # Errors
    /// [`UnsafeAsset`].
    pub fn check(&self) -> Result<(), UnsafeAsset> {
        if self.md5.len() != 32 || !self.md5.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(UnsafeAsset::Key(self.md5.clone()));
        }
        check_asset_extension(&self.ext)
    }
}

impl ExpoReleaseKind {
    /// Checks every file an update names (a rollback names none).
    ///
    /// # Errors
    /// The first [`UnsafeAsset`].
    pub fn check_files(&self) -> Result<(), UnsafeAsset> {
        match self {
            Self::Update { launch_asset, assets, .. } => {
                std::iter::once(launch_asset).chain(assets).try_for_each(ExpoAsset::check)
            }
            Self::RollBackToEmbedded => Ok(()),
        }
    }
}

/// What an `expo-updates` client asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpoCheck {
    /// `expo-protocol-version` (0 or 1).
    pub protocol: u8,
    /// Platform.
    pub platform: Platform,
    /// `expo-runtime-version`.
    pub runtime_version: String,
    /// Channel asked for (or the app's default).
    pub channel: String,
    /// `expo-current-update-id`, lowercased.
    pub current_update_id: Option<String>,
    /// `expo-embedded-update-id`, lowercased.
    pub embedded_update_id: Option<String>,
}

/// The answer to an Expo update check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpoDecision<'a> {
    /// Send this release's manifest.
    Serve(&'a ExpoRelease),
    /// Tell the device to go back to its embedded update, with this commit time.
    RollBackToEmbedded(&'a ExpoRelease),
    /// Nothing to do (protocol 1 only).
    NoUpdate,
    /// Protocol 0 cannot express the answer (no release, or a rollback): the server answers 404.
    NotAvailable,
}

/// Picks the answer: the newest release for (channel, runtime version, platform) decides.
pub fn select_expo_release<'a>(releases: &'a [ExpoRelease], check: &ExpoCheck) -> ExpoDecision<'a> {
    select_expo_release_outside(releases, check, None)
}

/// [`select_expo_release`] among the releases outside one publish group (a rollout's candidate, for a device that
/// keeps the stable release), or among all of them with `None`.
pub fn select_expo_release_outside<'a>(
    releases: &'a [ExpoRelease],
    check: &ExpoCheck,
    excluded_group: Option<&str>,
) -> ExpoDecision<'a> {
    let latest = releases
        .iter()
        .filter(|r| {
            r.channel == check.channel && r.runtime_version == check.runtime_version && r.platform == check.platform
        })
        .filter(|r| excluded_group.is_none_or(|group| r.group_id != group))
        .max_by_key(|r| r.created_at);
    let v1 = check.protocol >= 1;
    match latest {
        None if v1 => ExpoDecision::NoUpdate,
        None => ExpoDecision::NotAvailable,
        Some(release) => match &release.kind {
            ExpoReleaseKind::RollBackToEmbedded if !v1 => ExpoDecision::NotAvailable,
            ExpoReleaseKind::RollBackToEmbedded => {
                // A device already running its embedded update has nothing to roll back.
                let on_embedded =
                    check.current_update_id.is_some() && check.current_update_id == check.embedded_update_id;
                if on_embedded { ExpoDecision::NoUpdate } else { ExpoDecision::RollBackToEmbedded(release) }
            }
            ExpoReleaseKind::Update { .. } => {
                let running = check.current_update_id.as_deref() == Some(release.id.as_str());
                if v1 && running { ExpoDecision::NoUpdate } else { ExpoDecision::Serve(release) }
            }
        },
    }
}

/// The `createdAt` of a new release: now, but strictly after every earlier release on the channel (the client
/// ignores an update that is not strictly newer, and two releases in one millisecond would collide on devices).
pub fn next_release_time(now: DateTime<Utc>, latest_on_channel: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let now = truncate_to_millis(now);
    match latest_on_channel {
        Some(latest) if latest >= now => truncate_to_millis(latest) + chrono::Duration::milliseconds(1),
        _ => now,
    }
}

fn truncate_to_millis(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time)
}

/// Formats a time exactly as JavaScript's `toISOString()` (`YYYY-MM-DDTHH:mm:ss.sssZ`), the only form both
/// platforms parse.
pub fn expo_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(id: &str, channel: &str, runtime: &str, platform: Platform, millis: i64, rollback: bool) -> ExpoRelease {
        let asset = ExpoAsset { sha256: "a".repeat(64), md5: "b".repeat(32), ext: "hbc".into() };
        ExpoRelease {
            id: id.into(),
            group_id: "g".into(),
            app_id: AppId::parse("com.example.app").unwrap(),
            channel: channel.into(),
            runtime_version: runtime.into(),
            platform,
            created_at: DateTime::from_timestamp_millis(millis).unwrap(),
            message: String::new(),
            kind: if rollback {
                ExpoReleaseKind::RollBackToEmbedded
            } else {
                ExpoReleaseKind::Update { launch_asset: asset, assets: vec![], expo_client: "{}".into() }
            },
        }
    }

    fn check(protocol: u8, current: Option<&str>, embedded: Option<&str>) -> ExpoCheck {
        ExpoCheck {
            protocol,
            platform: Platform::Ios,
            runtime_version: "1.0.0".into(),
            channel: "production".into(),
            current_update_id: current.map(str::to_owned),
            embedded_update_id: embedded.map(str::to_owned),
        }
    }

    fn id_of(decision: ExpoDecision<'_>) -> String {
        match decision {
            ExpoDecision::Serve(r) => format!("serve {}", r.id),
            ExpoDecision::RollBackToEmbedded(r) => format!("rollback {}", r.id),
            ExpoDecision::NoUpdate => "no update".into(),
            ExpoDecision::NotAvailable => "not available".into(),
        }
    }

    #[test]
    fn newest_release_for_channel_runtime_platform_wins() {
        let releases = vec![
            release("old", "production", "1.0.0", Platform::Ios, 1, false),
            release("new", "production", "1.0.0", Platform::Ios, 2, false),
            release("android", "production", "1.0.0", Platform::Android, 3, false),
            release("other-runtime", "production", "2.0.0", Platform::Ios, 4, false),
            release("staging", "staging", "1.0.0", Platform::Ios, 5, false),
        ];
        assert_eq!(id_of(select_expo_release(&releases, &check(1, None, None))), "serve new");
        assert_eq!(id_of(select_expo_release(&releases, &check(1, Some("new"), None))), "no update");
        // Protocol 0 has no directives: it always gets the manifest.
        assert_eq!(id_of(select_expo_release(&releases, &check(0, Some("new"), None))), "serve new");
    }

    #[test]
    fn nothing_published() {
        assert_eq!(id_of(select_expo_release(&[], &check(1, None, None))), "no update");
        assert_eq!(id_of(select_expo_release(&[], &check(0, None, None))), "not available");
    }

    #[test]
    fn rollback_to_embedded() {
        let releases = vec![
            release("u1", "production", "1.0.0", Platform::Ios, 1, false),
            release("rb", "production", "1.0.0", Platform::Ios, 2, true),
        ];
        assert_eq!(id_of(select_expo_release(&releases, &check(1, Some("u1"), Some("emb")))), "rollback rb");
        assert_eq!(id_of(select_expo_release(&releases, &check(1, Some("emb"), Some("emb")))), "no update");
        assert_eq!(id_of(select_expo_release(&releases, &check(0, Some("u1"), Some("emb")))), "not available");
        // A publish after the rollback wins again.
        let mut later = releases.clone();
        later.push(release("u2", "production", "1.0.0", Platform::Ios, 3, false));
        assert_eq!(id_of(select_expo_release(&later, &check(1, Some("emb"), Some("emb")))), "serve u2");
    }

    #[test]
    fn asset_extensions_are_a_safe_set() {
        let check = |ext: &str, ok: bool| assert_eq!(check_asset_extension(ext).is_ok(), ok, "{ext:?}");
        for ext in ["", "png", "ttf", "hbc", "js", "woff2", "tar.gz", "lottie-json", "x_1"] {
            check(ext, true);
        }
        for ext in ["png/../../evil", "a/b", "a\\b", ".", "..", ".png", "png.", "a..b", "p\0g", "p g", "pñg", "é"] {
            check(ext, false);
        }
        check(&"a".repeat(32), true);
        check(&"a".repeat(33), false);
        let asset = |md5: &str, ext: &str| ExpoAsset { sha256: "a".repeat(64), md5: md5.into(), ext: ext.into() };
        assert!(asset(&"0f".repeat(16), "png").check().is_ok());
        assert_eq!(asset("../x", "png").check(), Err(UnsafeAsset::Key("../x".into())));
        assert_eq!(asset(&"0F".repeat(16), "png").check(), Err(UnsafeAsset::Key("0F".repeat(16))));
        let kind = ExpoReleaseKind::Update {
            launch_asset: asset(&"0f".repeat(16), "hbc"),
            assets: vec![asset(&"1f".repeat(16), "png/x")],
            expo_client: "{}".into(),
        };
        assert_eq!(kind.check_files(), Err(UnsafeAsset::Extension("png/x".into())));
        assert!(ExpoReleaseKind::RollBackToEmbedded.check_files().is_ok());
    }

    #[test]
    fn release_times_strictly_increase() {
        let now = DateTime::from_timestamp_millis(1_000).unwrap();
        assert_eq!(next_release_time(now, None), now);
        assert_eq!(next_release_time(now, Some(now)).timestamp_millis(), 1_001);
        let future = DateTime::from_timestamp_millis(5_000).unwrap();
        assert_eq!(next_release_time(now, Some(future)).timestamp_millis(), 5_001);
        assert_eq!(expo_time(now), "1970-01-01T00:00:01.000Z");
    }
}
