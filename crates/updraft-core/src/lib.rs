//! Updraft's domain: apps, channels, bundles, devices, and the update selection rules.
//!
//! This crate only computes. It has no tokio, no sqlx, no actix and no HTTP: every rule here is a pure function of
//! its inputs, so it can be tested with tables and reused by every protocol crate. Persistence is described by the
//! [`MetadataStore`] trait and implemented in `updraft-store`; wire formats live in the protocol crates.
#![warn(missing_docs)]

mod app;
mod bundle;
mod bundle_layout;
mod capgo_rules;
mod catalog;
mod channel;
mod channel_self;
mod device;
mod expo_release;
mod ids;
mod packed_report;
mod stats;
mod store;
mod version;

pub use app::App;
pub use bundle::{Bundle, BundleEncryption, BundleSource, ManifestEntry, NewBundle};
pub use bundle_layout::{BundleLayout, BundleLayoutError, check_bundle_entries};
pub use capgo_rules::{ChannelRoute, Refusal, UpdateCheck, UpdateDecision, resolve_channel, select_update};
pub use catalog::AppCatalog;
pub use channel::{Channel, ChannelSettings, ChannelTarget, ChannelUpdate, DisableAutoUpdate};
pub use channel_self::{SelfSetRefusal, listable_channels, self_assignable};
pub use device::{BundlePin, DeviceOverride, DeviceReport, OverrideTarget};
pub use expo_release::{
    ExpoAsset, ExpoCheck, ExpoDecision, ExpoRelease, ExpoReleaseKind, expo_time, next_release_time, select_expo_release,
};
pub use ids::{AppId, BundleVersion, ChannelName, DeviceId, IdError, Platform};
pub use packed_report::{DeviceReportRef, PackedReport};
pub use stats::{ActionKind, StatsEvent, action_kind, is_rollback, strip_file_suffix};
pub use store::{
    ApiKeyRecord, ApiKeyScope, BundleCounts, DeviceCursor, MetadataStore, ReferencedObjects, StatsSummary, StoreError,
    StoreResult,
};
pub use version::{PluginVersion, coerce_version_build};
