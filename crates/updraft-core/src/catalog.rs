//! The in-memory view of one app that update checks are answered from: its channels, live bundles and device
//! overrides. Built from the metadata store after every write and swapped in whole, so a check never reads the
//! database and always sees one consistent state.

use std::collections::{HashMap, HashSet};

use crate::app::App;
use crate::bundle::Bundle;
use crate::channel::{Channel, ChannelUpdate};
use crate::device::OverrideTarget;
use crate::expo_release::ExpoRelease;
use crate::ids::DeviceId;
use crate::rollout::StoredRollout;

/// A consistent snapshot of one app.
///
/// Invariants: channels are ordered by (name, id), which is the order Capgo picks the public channel in; bundles are
/// the live (not deleted) ones.
#[derive(Debug, Clone)]
pub struct AppCatalog {
    app: App,
    channels: Vec<Channel>,
    bundles: HashMap<i64, Bundle>,
    bundle_ids_by_version: HashMap<String, i64>,
    overrides: HashMap<DeviceId, OverrideTarget>,
    failed_versions: HashMap<DeviceId, HashSet<String>>,
    expo_releases: Vec<ExpoRelease>,
    file_sizes: HashMap<String, u64>,
    /// The size of each delta file's brotli copy, by the file's hash.
    br_file_sizes: HashMap<String, u64>,
    /// Every (SHA-256, extension) an Expo release names, and whether it is a launch asset there.
    expo_files: HashMap<(String, String), bool>,
    /// The current rollout of each channel that has one (active, halted or completed), by channel name.
    rollouts: HashMap<String, StoredRollout>,
}

impl AppCatalog {
    /// Builds a snapshot.
    pub fn new(
        app: App,
        mut channels: Vec<Channel>,
        bundles: Vec<Bundle>,
        overrides: Vec<(DeviceId, OverrideTarget)>,
    ) -> Self {
        channels.sort_by(|a, b| (a.name.as_str(), a.id).cmp(&(b.name.as_str(), b.id)));
        let bundle_ids_by_version = bundles.iter().map(|b| (b.version.as_str().to_owned(), b.id)).collect();
        // Delta files are content-addressed and served as stored, so a file's hash decides its size.
        let file_sizes = bundles
            .iter()
            .flat_map(|b| &b.manifest)
            .filter_map(|entry| entry.size_bytes.map(|size| (entry.file_hash.clone(), size)))
            .collect();
        let br_file_sizes = bundles
            .iter()
            .flat_map(|b| &b.manifest)
            .filter_map(|entry| entry.br_size_bytes.map(|size| (entry.file_hash.clone(), size)))
            .collect();
        Self {
            br_file_sizes,
            app,
            channels,
            bundles: bundles.into_iter().map(|b| (b.id, b)).collect(),
            bundle_ids_by_version,
            overrides: overrides.into_iter().collect(),
            failed_versions: HashMap::new(),
            expo_releases: Vec::new(),
            file_sizes,
            expo_files: HashMap::new(),
            rollouts: HashMap::new(),
        }
    }

    /// The app.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// All channels, ordered by (name, id).
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// A channel by exact name.
    pub fn channel_by_name(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name.as_str() == name)
    }

    /// A channel by id.
    pub fn channel_by_id(&self, id: i64) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }

    /// A live bundle by id.
    pub fn bundle(&self, id: i64) -> Option<&Bundle> {
        self.bundles.get(&id)
    }

    /// Every live bundle, in no particular order.
    pub fn bundles(&self) -> impl Iterator<Item = &Bundle> {
        self.bundles.values()
    }

    /// A live bundle by version name.
    pub fn bundle_by_version(&self, version: &str) -> Option<&Bundle> {
        self.bundle_ids_by_version.get(version).and_then(|id| self.bundles.get(id))
    }

    /// The settings a channel named in a publish is created with when it does not exist yet: Capgo's defaults, made
    /// public when the app has no public channel, so that an app's first channel serves devices without another
    /// step (as Capgo Cloud's default channel does). An existing channel is left as it is.
    pub fn channel_update_for_publish(&self, name: &str) -> ChannelUpdate {
        let creates_first_public =
            self.channel_by_name(name).is_none() && !self.channels.iter().any(|c| c.settings.public);
        ChannelUpdate { public: creates_first_public.then_some(true), ..ChannelUpdate::default() }
    }

    /// Sets the app's Expo releases.
    pub fn set_expo_releases(&mut self, releases: Vec<ExpoRelease>) {
        self.expo_files.clear();
        for release in &releases {
            if let crate::ExpoReleaseKind::Update { launch_asset, assets, .. } = &release.kind {
                let mut note = |asset: &crate::ExpoAsset, launch: bool| {
                    let entry = self.expo_files.entry((asset.sha256.clone(), asset.ext.clone())).or_insert(launch);
                    *entry |= launch;
                };
                note(launch_asset, true);
                assets.iter().for_each(|asset| note(asset, false));
            }
        }
        self.expo_releases = releases;
    }

    /// Whether a release names the asset with this SHA-256 and extension: `Some(true)` as a launch asset (the JS
    /// bundle), `Some(false)` as another asset, `None` when no release names it. The asset route serves the content
    /// type the manifest announced, never one taken from the request's URL.
    pub fn expo_file_is_launch(&self, sha256: &str, ext: &str) -> Option<bool> {
        self.expo_files.get(&(sha256.to_owned(), ext.to_owned())).copied()
    }

    /// The app's Expo releases (every channel, runtime and platform).
    pub fn expo_releases(&self) -> &[ExpoRelease] {
        &self.expo_releases
    }

    /// An Expo release by id (case-insensitive).
    pub fn expo_release(&self, id: &str) -> Option<&ExpoRelease> {
        self.expo_releases.iter().find(|r| r.id.eq_ignore_ascii_case(id))
    }

    /// Sets the app's rollouts (one per channel at most).
    pub fn set_rollouts(&mut self, rollouts: Vec<StoredRollout>) {
        self.rollouts = rollouts.into_iter().map(|r| (r.rollout.channel().as_str().to_owned(), r)).collect();
    }

    /// The current rollout of a channel (by name), whatever its state.
    pub fn rollout(&self, channel: &str) -> Option<&StoredRollout> {
        self.rollouts.get(channel)
    }

    /// Every rollout of the app, in no particular order.
    pub fn rollouts(&self) -> impl Iterator<Item = &StoredRollout> {
        self.rollouts.values()
    }

    /// Records that a device rolled back from a version (it reported `update_fail`).
    pub fn record_failure(&mut self, device_id: &DeviceId, version: &str) {
        self.failed_versions.entry(device_id.clone()).or_default().insert(version.to_owned());
    }

    /// Whether a device rolled back from a version.
    pub fn device_failed(&self, device_id: &DeviceId, version: &str) -> bool {
        self.failed_versions.get(device_id).is_some_and(|versions| versions.contains(version))
    }

    /// The download size of a delta file of a live bundle, by its `file_hash` (`None` when no live bundle has it,
    /// or it was stored before sizes were recorded).
    pub fn delta_file_size(&self, file_hash: &str) -> Option<u64> {
        self.file_sizes.get(file_hash).copied()
    }

    /// The download size of the brotli copy of a delta file (what a manifest entry named `<file>.br` downloads).
    pub fn delta_file_br_size(&self, file_hash: &str) -> Option<u64> {
        self.br_file_sizes.get(file_hash).copied()
    }

    /// The override an operator set for a device, if any.
    pub fn override_for(&self, device_id: &DeviceId) -> Option<&OverrideTarget> {
        self.overrides.get(device_id)
    }

    /// How many devices have an override.
    pub fn override_count(&self) -> usize {
        self.overrides.len()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::channel::ChannelSettings;
    use crate::ids::{AppId, ChannelName};

    fn catalog_with(public: &[(&str, bool)]) -> AppCatalog {
        let app = App {
            id: AppId::parse("com.example.app").unwrap(),
            name: "x".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        };
        let channels = public
            .iter()
            .enumerate()
            .map(|(i, (name, public))| Channel {
                id: i as i64,
                app_id: app.id.clone(),
                name: ChannelName::parse(name).unwrap(),
                bundle_id: None,
                settings: ChannelSettings { public: *public, ..ChannelSettings::default() },
                created_at: Utc::now(),
                updated_at: Utc::now(),
            })
            .collect();
        AppCatalog::new(app, channels, vec![], vec![])
    }

    #[test]
    fn expo_files_are_known_with_their_role() {
        use crate::{ExpoAsset, ExpoRelease, ExpoReleaseKind, Platform};
        let asset = |sha: char, ext: &str| ExpoAsset {
            sha256: sha.to_string().repeat(64),
            md5: "b".repeat(32),
            ext: ext.into(),
        };
        let release = |id: &str, kind| ExpoRelease {
            id: id.into(),
            group_id: "g".into(),
            app_id: AppId::parse("com.example.app").unwrap(),
            channel: "production".into(),
            runtime_version: "1".into(),
            platform: Platform::Ios,
            created_at: Utc::now(),
            message: String::new(),
            kind,
        };
        let mut catalog = catalog_with(&[]);
        catalog.set_expo_releases(vec![
            release(
                "u1",
                ExpoReleaseKind::Update {
                    launch_asset: asset('a', "hbc"),
                    assets: vec![asset('c', "png")],
                    expo_client: "{}".into(),
                },
            ),
            release("rb", ExpoReleaseKind::RollBackToEmbedded),
        ]);
        assert_eq!(catalog.expo_file_is_launch(&"a".repeat(64), "hbc"), Some(true));
        assert_eq!(catalog.expo_file_is_launch(&"c".repeat(64), "png"), Some(false));
        assert_eq!(catalog.expo_file_is_launch(&"c".repeat(64), "html"), None, "only the published extension");
        assert_eq!(catalog.expo_file_is_launch(&"d".repeat(64), "png"), None);
        catalog.set_expo_releases(vec![]);
        assert_eq!(catalog.expo_file_is_launch(&"a".repeat(64), "hbc"), None, "rebuilt from the releases");
    }

    #[test]
    fn first_published_channel_becomes_public() {
        assert_eq!(catalog_with(&[]).channel_update_for_publish("production").public, Some(true));
        assert_eq!(catalog_with(&[("beta", false)]).channel_update_for_publish("production").public, Some(true));
    }

    #[test]
    fn publish_never_changes_existing_or_adds_a_second_public_channel() {
        assert_eq!(catalog_with(&[("production", false)]).channel_update_for_publish("production").public, None);
        assert_eq!(catalog_with(&[("production", true)]).channel_update_for_publish("beta").public, None);
    }
}
