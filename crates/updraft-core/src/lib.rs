//! Updraft's domain: apps, channels, bundles, devices, and the update selection rules.
//!
//! This crate only computes. It has no tokio, no sqlx, no actix and no HTTP: every rule here is a pure function of
//! its inputs, so it can be tested with tables and reused by every protocol crate. Persistence is described by the
//! [`MetadataStore`] trait and implemented in `updraft-store`; wire formats live in the protocol crates.
#![warn(missing_docs)]

mod access;
mod app;
mod audit;
mod bucket;
mod bundle;
mod bundle_layout;
mod capgo_rules;
mod catalog;
mod channel;
mod channel_self;
mod delivery;
mod device;
mod device_rows;
mod expo_minting;
mod expo_release;
mod failure;
mod health;
mod health_signals;
mod ids;
mod packed_report;
mod release_health;
mod rollout;
mod rollout_selection;
mod stats;
mod store;
mod version;

pub use access::{Access, Denied, Grant, Role};
pub use app::App;
pub use audit::{AuditRecord, NewAuditRecord};
pub use bucket::{BUCKETS, DeviceIdentity, RolloutPercent, bucket, in_rollout};
pub use bundle::{Bundle, BundleEncryption, BundleMetadata, BundleSource, ManifestEntry, NewBundle};
pub use bundle_layout::{
    BundleLayout, BundleLayoutError, DeltaManifestError, check_bundle_entries, delta_manifest_files,
};
pub use capgo_rules::{ChannelRoute, Refusal, UpdateCheck, UpdateDecision, resolve_channel, select_update};
pub use catalog::AppCatalog;
pub use channel::{Channel, ChannelSettings, ChannelTarget, ChannelUpdate, DisableAutoUpdate};
pub use channel_self::{ChannelReport, SelfSetRefusal, channel_report, listable_channels, self_assignable};
pub use channel_self::{MAX_DEVICE_OVERRIDES_PER_APP, self_set_has_room};
pub use channel_self::{SelfSetChange, SelfSetDenied, public_channel, self_set_change, self_unset_allowed};
pub use delivery::{
    DeltaBrotli, DeltaFileForm, Encoding, compressible_bytes, compressible_type, delta_brotli, delta_file_forms,
    negotiate_encoding, patch_worthwhile, worth_keeping,
};
pub use device::{BundlePin, DeviceOverride, DeviceReport, OverrideTarget};
pub use device_rows::{DeviceRowMark, DeviceTable, LAST_SEEN_RESOLUTION, check_time};
pub use expo_minting::{PlatformUpdate, ReleaseMint, manifest_assets, referenced_releases};
pub use expo_release::{
    ExpoAsset, ExpoCheck, ExpoDecision, ExpoRelease, ExpoReleaseKind, expo_time, next_release_time,
    select_expo_release, select_expo_release_outside,
};
pub use expo_release::{UnsafeAsset, check_asset_extension};
pub use failure::{Failure, FailureKind, codes};
pub use health::{
    DEFAULT_MAX_FAILURE_RATE, DEFAULT_MIN_DEVICES, HaltReason, HealthFigures, WILSON_Z_95, should_halt,
    wilson_lower_bound,
};
pub use health_signals::{HealthSignalRef, HealthSignals, MAX_SIGNALS};
pub use ids::sha256_hex;
pub use ids::{AppId, BundleVersion, ChannelName, DeviceId, IdError, Platform};
pub use packed_report::{DeviceReportFields, DeviceReportRef, DeviceReportView, PackedReport};
pub use release_health::{
    FAILURE_DETAIL_MAX_BYTES, HALTED_BY_HEALTH_RULE, HaltRecord, HealthObservation, HealthProtocol, HealthSignal,
    KnownRelease, ReleaseDeviceRow, ReleaseHealth, merge_observations,
};
pub use rollout::codes as rollout_codes;
pub use rollout::{
    Halt, HaltCause, HaltPolicy, Rollout, RolloutChange, RolloutError, RolloutId, RolloutSpec, RolloutState,
    RolloutTarget, StableTarget, StoredRollout, rollout_state_label,
};
pub use rollout_selection::{RolloutCheck, Serve, select_expo_release_in_rollout, select_rollout};
pub use stats::{
    ActionKind, EVENT_TIME_FUTURE, EVENT_TIME_PAST, InstallChange, METADATA_MAX_BYTES, METADATA_MAX_ENTRIES,
    METADATA_MAX_KEY_CHARS, METADATA_MAX_VALUE_CHARS, StatsEvent, action_kind, bound_metadata, event_time,
    failed_version, install_change, is_install_failure, is_rollback, strip_file_suffix,
};
pub use stats::{MAX_FAILED_VERSIONS_PER_APP, MAX_FAILED_VERSIONS_PER_DEVICE};
pub use store::ExpoPatch;
pub use store::SigningKeyRecord;
pub use store::{
    ApiKeyRecord, ApiKeyScope, BundleCounts, DeviceCursor, MetadataStore, ReferencedObjects, StatsSummary, StoreError,
    StoreResult,
};
pub use version::{PluginVersion, coerce_version_build};
