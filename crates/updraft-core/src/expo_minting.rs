//! Minting Expo releases: what a publish, a rollback or a promotion records. Every operation mints new releases
//! (new ids, one group id, one `createdAt` strictly after everything on the channel), because `expo-updates` only
//! moves to an update strictly newer than the one it runs.
//!
//! Ids come from the caller (this crate has no randomness); storing the releases is the server's.

use chrono::{DateTime, Utc};

use crate::catalog::AppCatalog;
use crate::expo_release::{ExpoAsset, ExpoRelease, ExpoReleaseKind, next_release_time};
use crate::ids::{AppId, Platform};

/// What one platform of a publish serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformUpdate {
    /// iOS or Android.
    pub platform: Platform,
    /// The runtime version this platform's update is for.
    pub runtime_version: String,
    /// The JS (or Hermes bytecode) bundle.
    pub launch_asset: ExpoAsset,
    /// The other assets, as the export lists them (duplicates are dropped when minting).
    pub assets: Vec<ExpoAsset>,
}

/// The common part of the releases one operation mints: app, channel, group and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseMint {
    app_id: AppId,
    channel: String,
    group_id: String,
    created_at: DateTime<Utc>,
}

impl ReleaseMint {
    /// Releases for `channel` of the catalog's app, created at `now` but strictly after every release already on
    /// the channel.
    pub fn new(catalog: &AppCatalog, channel: &str, group_id: String, now: DateTime<Utc>) -> Self {
        let latest = catalog.expo_releases().iter().filter(|r| r.channel == channel).map(|r| r.created_at).max();
        Self {
            app_id: catalog.app().id.clone(),
            channel: channel.to_owned(),
            group_id,
            created_at: next_release_time(now, latest),
        }
    }

    /// The `createdAt` every release of this operation gets.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// A published update for one platform.
    pub fn update(&self, id: String, files: PlatformUpdate, message: &str, expo_client: &str) -> ExpoRelease {
        let assets = manifest_assets(&files.launch_asset, files.assets);
        let kind =
            ExpoReleaseKind::Update { launch_asset: files.launch_asset, assets, expo_client: expo_client.to_owned() };
        self.release(id, files.platform, &files.runtime_version, message.to_owned(), kind)
    }

    /// A directive sending one platform back to the update embedded in the binary.
    pub fn embedded_rollback(&self, id: String, platform: Platform, runtime_version: &str) -> ExpoRelease {
        let message = "roll back to the embedded update".to_owned();
        self.release(id, platform, runtime_version, message, ExpoReleaseKind::RollBackToEmbedded)
    }

    /// An earlier release served again on its channel, for its own runtime version (a rollback to it).
    pub fn rollback_to(&self, id: String, source: &ExpoRelease) -> ExpoRelease {
        let message = format!("roll back to {}", source.id);
        self.release(id, source.platform, &source.runtime_version, message, source.kind.clone())
    }

    /// A release served on this mint's channel as well (a promotion), with its own runtime version.
    pub fn promotion_of(&self, id: String, source: &ExpoRelease) -> ExpoRelease {
        let message = format!("promoted from {} ({})", source.channel, source.id);
        self.release(id, source.platform, &source.runtime_version, message, source.kind.clone())
    }

    fn release(
        &self,
        id: String,
        platform: Platform,
        runtime_version: &str,
        message: String,
        kind: ExpoReleaseKind,
    ) -> ExpoRelease {
        ExpoRelease {
            id,
            group_id: self.group_id.clone(),
            app_id: self.app_id.clone(),
            channel: self.channel.clone(),
            runtime_version: runtime_version.to_owned(),
            platform,
            created_at: self.created_at,
            message,
            kind,
        }
    }
}

impl ReleaseMint {
    /// What halting an Expo rollout mints on this mint's channel: for each covered (platform, runtime version), the
    /// stable release (the newest there outside the candidate group) served again, or a roll back to the embedded
    /// update when there was none. The mint is newer than the candidate, so devices running the candidate accept
    /// it (the client only loads an update newer than the one it runs), and it is outside the candidate group, so
    /// it is what every device of that runtime version is served from then on.
    pub fn halt_of(
        &self,
        catalog: &AppCatalog,
        candidate_group: &str,
        covers: &[(Platform, String)],
        mut new_id: impl FnMut() -> String,
    ) -> Vec<ExpoRelease> {
        covers
            .iter()
            .map(|(platform, runtime_version)| {
                let stable = catalog
                    .expo_releases()
                    .iter()
                    .filter(|r| r.channel == self.channel && r.platform == *platform)
                    .filter(|r| r.runtime_version == *runtime_version && r.group_id != candidate_group)
                    .max_by_key(|r| r.created_at);
                let mut release = match stable {
                    Some(stable) => self.rollback_to(new_id(), stable),
                    None => self.embedded_rollback(new_id(), *platform, runtime_version),
                };
                release.message = format!("rollout of {candidate_group} halted: {}", release.message);
                release
            })
            .collect()
    }

    /// The candidate group's covered releases served again as this mint's group (newer than a halt's mint), for a
    /// rollout resumed or completed after a halt.
    pub fn republish_group(
        &self,
        catalog: &AppCatalog,
        candidate_group: &str,
        covers: &[(Platform, String)],
        mut new_id: impl FnMut() -> String,
    ) -> Vec<ExpoRelease> {
        catalog
            .expo_releases()
            .iter()
            .filter(|r| r.channel == self.channel && r.group_id == candidate_group)
            .filter(|r| covers.iter().any(|(p, v)| *p == r.platform && *v == r.runtime_version))
            .map(|source| {
                let mut release = self.rollback_to(new_id(), source);
                release.message = format!("rollout candidate {} offered again", source.id);
                release
            })
            .collect()
    }
}

/// The assets a manifest lists besides its launch asset: the launch asset is not repeated, and each key (MD5, the
/// file name on the device) appears once, first occurrence kept.
pub fn manifest_assets(launch_asset: &ExpoAsset, assets: Vec<ExpoAsset>) -> Vec<ExpoAsset> {
    let mut kept: Vec<ExpoAsset> = Vec::with_capacity(assets.len());
    for asset in assets {
        if asset.md5 != launch_asset.md5 && !kept.iter().any(|a| a.md5 == asset.md5) {
            kept.push(asset);
        }
    }
    kept
}

/// The releases a reference names: a release id gives that release, a group id every platform of that publish
/// (case-insensitively, as UUIDs are).
pub fn referenced_releases<'a>(catalog: &'a AppCatalog, reference: &str) -> Vec<&'a ExpoRelease> {
    match catalog.expo_release(reference) {
        Some(release) => vec![release],
        None => catalog.expo_releases().iter().filter(|r| r.group_id.eq_ignore_ascii_case(reference)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::App;

    fn asset(md5: &str) -> ExpoAsset {
        ExpoAsset { sha256: format!("sha-{md5}"), md5: md5.to_owned(), ext: "png".to_owned() }
    }

    fn catalog(releases: Vec<ExpoRelease>) -> AppCatalog {
        let app = App {
            id: AppId::parse("com.example.app").unwrap(),
            name: "x".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        };
        let mut catalog = AppCatalog::new(app, vec![], vec![], vec![]);
        catalog.set_expo_releases(releases);
        catalog
    }

    fn time(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(millis).unwrap()
    }

    #[test]
    fn manifest_assets_drop_the_launch_asset_and_repeated_keys() {
        let check = |launch: &str, assets: &[&str], expected: &[&str]| {
            let kept = manifest_assets(&asset(launch), assets.iter().map(|m| asset(m)).collect());
            assert_eq!(kept.iter().map(|a| a.md5.as_str()).collect::<Vec<_>>(), expected, "{assets:?}");
        };
        check("l", &["a", "b"], &["a", "b"]);
        check("l", &["a", "l", "b"], &["a", "b"]);
        check("l", &["a", "a", "b", "a"], &["a", "b"]);
        check("l", &[], &[]);
    }

    #[test]
    fn minted_releases_are_strictly_newer_than_the_channel() {
        let empty = catalog(vec![]);
        let first = ReleaseMint::new(&empty, "production", "g1".into(), time(1_000));
        assert_eq!(first.created_at(), time(1_000));
        let files = PlatformUpdate {
            platform: Platform::Ios,
            runtime_version: "1.0.0".into(),
            launch_asset: asset("l"),
            assets: vec![asset("l"), asset("a")],
        };
        let published = first.update("r1".into(), files, "note", "{}");
        let ExpoReleaseKind::Update { assets, .. } = &published.kind else { panic!("an update") };
        assert_eq!(assets.len(), 1, "the launch asset is not repeated");
        assert_eq!((published.group_id.as_str(), published.channel.as_str()), ("g1", "production"));
        // The clock went backwards (or two operations share a millisecond): still strictly after.
        let later = catalog(vec![published.clone()]);
        assert_eq!(ReleaseMint::new(&later, "production", "g2".into(), time(900)).created_at(), time(1_001));
        // Another channel's releases do not count.
        assert_eq!(ReleaseMint::new(&later, "staging", "g3".into(), time(900)).created_at(), time(900));
    }

    #[test]
    fn rollbacks_and_promotions_copy_the_files_with_their_own_message() {
        let files = PlatformUpdate {
            platform: Platform::Android,
            runtime_version: "2.0.0".into(),
            launch_asset: asset("l"),
            assets: vec![],
        };
        let source = ReleaseMint::new(&catalog(vec![]), "staging", "g1".into(), time(1_000)).update(
            "r1".into(),
            files,
            "",
            "{}",
        );
        let catalog = catalog(vec![source.clone()]);
        let promoted =
            ReleaseMint::new(&catalog, "production", "g2".into(), time(2_000)).promotion_of("r2".into(), &source);
        assert_eq!((promoted.channel.as_str(), promoted.runtime_version.as_str()), ("production", "2.0.0"));
        assert_eq!(promoted.message, "promoted from staging (r1)");
        assert_eq!(promoted.kind, source.kind);
        let back = ReleaseMint::new(&catalog, "staging", "g3".into(), time(500)).rollback_to("r3".into(), &source);
        assert_eq!((back.message.as_str(), back.created_at), ("roll back to r1", time(1_001)));
        let embedded = ReleaseMint::new(&catalog, "staging", "g4".into(), time(500)).embedded_rollback(
            "r4".into(),
            Platform::Ios,
            "2.0.0",
        );
        assert_eq!(embedded.kind, ExpoReleaseKind::RollBackToEmbedded);
        assert_eq!(embedded.message, "roll back to the embedded update");
    }

    #[test]
    fn a_halt_republishes_the_stable_release_of_each_covered_runtime() {
        let files = |platform| PlatformUpdate {
            platform,
            runtime_version: "1".into(),
            launch_asset: asset("l"),
            assets: vec![],
        };
        let stable = ReleaseMint::new(&catalog(vec![]), "production", "g-stable".into(), time(1_000)).update(
            "s-ios".into(),
            files(Platform::Ios),
            "",
            "{}",
        );
        let candidate_mint =
            ReleaseMint::new(&catalog(vec![stable.clone()]), "production", "g-new".into(), time(2_000));
        let candidate_ios = candidate_mint.update("c-ios".into(), files(Platform::Ios), "", "{}");
        let candidate_android = candidate_mint.update("c-android".into(), files(Platform::Android), "", "{}");
        let on_channel = catalog(vec![stable.clone(), candidate_ios, candidate_android]);
        let covers = [(Platform::Ios, "1".to_owned()), (Platform::Android, "1".to_owned())];
        let mint = ReleaseMint::new(&on_channel, "production", "g-halt".into(), time(1_500));
        let mut ids = ["h1", "h2"].into_iter().map(str::to_owned);
        let halt = mint.halt_of(&on_channel, "g-new", &covers, || ids.next().unwrap());
        assert_eq!(halt.len(), 2);
        // iOS had a stable release: served again, newer than the candidate. Android had none: back to embedded.
        assert_eq!((halt[0].platform, halt[0].kind.clone()), (Platform::Ios, stable.kind.clone()));
        assert_eq!(halt[1].kind, ExpoReleaseKind::RollBackToEmbedded);
        assert!(halt.iter().all(|r| r.created_at > time(2_000) && r.group_id == "g-halt"), "{halt:?}");
        // Offered again after the halt: copies of the candidate, newer than the halt's releases.
        let halted = catalog(on_channel.expo_releases().iter().cloned().chain(halt.clone()).collect());
        let again = ReleaseMint::new(&halted, "production", "g-again".into(), time(1_500));
        let mut ids = ["a1", "a2"].into_iter().map(str::to_owned);
        let copies = again.republish_group(&halted, "g-new", &covers[..1], || ids.next().unwrap());
        assert_eq!(copies.iter().map(|r| r.platform).collect::<Vec<_>>(), [Platform::Ios], "covered only");
        assert!(copies[0].created_at > halt[0].created_at);
    }

    #[test]
    fn references_name_a_release_or_a_group() {
        let mint = ReleaseMint::new(&catalog(vec![]), "production", "GROUP-1".into(), time(1_000));
        let ios = mint.embedded_rollback("r1".into(), Platform::Ios, "1");
        let android = mint.embedded_rollback("r2".into(), Platform::Android, "1");
        let catalog = catalog(vec![ios, android]);
        let ids = |reference| referenced_releases(&catalog, reference).iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids("r2"), ["r2"]);
        assert_eq!(ids("group-1"), ["r1", "r2"]);
        assert!(ids("nope").is_empty());
    }
}
