//! The in-memory view of one app that update checks are answered from: its channels, live bundles and device
//! overrides. Built from the metadata store after every write and swapped in whole, so a check never reads the
//! database and always sees one consistent state.

use std::collections::HashMap;

use crate::app::App;
use crate::bundle::Bundle;
use crate::channel::Channel;
use crate::device::OverrideTarget;
use crate::ids::DeviceId;

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
        let bundle_ids_by_version = bundles
            .iter()
            .map(|b| (b.version.as_str().to_owned(), b.id))
            .collect();
        Self {
            app,
            channels,
            bundles: bundles.into_iter().map(|b| (b.id, b)).collect(),
            bundle_ids_by_version,
            overrides: overrides.into_iter().collect(),
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

    /// A live bundle by version name.
    pub fn bundle_by_version(&self, version: &str) -> Option<&Bundle> {
        self.bundle_ids_by_version
            .get(version)
            .and_then(|id| self.bundles.get(id))
    }

    /// The override an operator set for a device, if any.
    pub fn override_for(&self, device_id: &DeviceId) -> Option<&OverrideTarget> {
        self.overrides.get(device_id)
    }
}
