//! The `MetadataStore` trait: everything the gateway persists about apps, channels, bundles, devices and API keys.
//!
//! Implementations live in `updraft-store` (SQLite, PostgreSQL). The trait speaks domain types only; row shapes and
//! SQL stay in the implementation.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::app::App;
use crate::bundle::{Bundle, NewBundle};
use crate::catalog::AppCatalog;
use crate::channel::{Channel, ChannelUpdate};
use crate::device::{DeviceReport, OverrideTarget};
use crate::device_rows::{DeviceRowMark, DeviceTable};
use crate::expo_release::ExpoRelease;
use crate::health::HealthFigures;
use crate::ids::{AppId, ChannelName, DeviceId};
use crate::packed_report::DeviceReportView;
use crate::release_health::{HaltRecord, ReleaseDeviceRow, ReleaseHealth};
use crate::rollout::{Halt, RolloutId, StoredRollout};
use crate::stats::StatsEvent;
use std::collections::HashMap;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique key is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// The database cannot be reached right now (pool timeout, closed connection).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("database error: {0}")]
    Other(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// What an API key may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyScope {
    /// Every app, and app creation.
    All,
    /// One app only.
    App(AppId),
}

/// A stored API key. The secret itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public identifier, embedded in the key so it can be looked up without the secret.
    pub id: String,
    /// Operator-given name.
    pub name: String,
    /// Lowercase hex SHA-256 of the whole key.
    pub secret_sha256: String,
    /// What the key may touch.
    pub scope: ApiKeyScope,
    /// What the key may do there (keys stored before roles existed are `admin`, which is what they could do).
    pub role: crate::access::Role,
    /// The one channel the key may change, if it is narrowed to one.
    pub channel: Option<crate::ids::ChannelName>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the key was revoked (a revoked key authenticates nothing; its record stays for the audit trail).
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyRecord {
    /// Whether the key still authenticates.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// What the key may touch, as one value.
    #[must_use]
    pub fn grant(&self) -> crate::access::Grant {
        crate::access::Grant {
            role: self.role,
            app: match &self.scope {
                ApiKeyScope::All => None,
                ApiKeyScope::App(app_id) => Some(app_id.clone()),
            },
            channel: self.channel.clone(),
        }
    }
}

/// Where a cursor-paginated device listing continues: after this (updated_at, device_id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCursor {
    /// Last seen time of the last device of the previous page.
    pub updated_at: DateTime<Utc>,
    /// Its device id (ties on time are broken by id).
    pub device_id: DeviceId,
}

/// Counts for one bundle version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleCounts {
    /// Bundle version name.
    pub version_name: String,
    /// Devices that run this bundle: their latest install (`set`) is this version, and they have neither rolled
    /// back from it (`update_fail`) nor reset to builtin since.
    pub devices: u64,
    /// `set` events (installs).
    pub installs: u64,
    /// Failure events (`update_fail` and other `*_fail`).
    pub failures: u64,
}

/// What `GET /stats` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSummary {
    /// The most recent events, newest first.
    pub recent: Vec<StatsEvent>,
    /// Per bundle version, sorted by version name.
    pub per_bundle: Vec<BundleCounts>,
}

/// What storage objects are in use (see [`MetadataStore::referenced_objects`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferencedObjects {
    /// Object keys of live bundles and their delta files.
    pub object_keys: std::collections::HashSet<String>,
    /// Expo assets named by a release: (app, SHA-256).
    pub expo_assets: std::collections::HashSet<(AppId, String)>,
}

/// A bsdiff patch from one Expo launch asset to another (see [`MetadataStore::record_expo_patch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpoPatch {
    /// The launch asset the device runs (lowercase hex SHA-256).
    pub base_sha256: String,
    /// The launch asset it downloads.
    pub target_sha256: String,
    /// The SHA-256 of the patch object (`patches/<app>/<sha256>`), verified by applying it before it was recorded;
    /// `None` when the patch was computed but is not worth sending.
    pub patch_sha256: Option<String>,
    /// The patch's size in bytes.
    pub patch_size: u64,
}

/// An app's Expo code-signing key, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The key id clients name in `expo-expect-signature` (`codeSigningMetadata.keyid`).
    pub key_id: String,
    /// The private key, PKCS#8 PEM.
    pub private_key_pem: String,
    /// The certificate the gateway generated with the key; `None` for an imported key.
    pub certificate_pem: Option<String>,
    /// When the key was stored.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key never reaches a log line.
        f.debug_struct("SigningKeyRecord")
            .field("key_id", &self.key_id)
            .field("has_certificate", &self.certificate_pem.is_some())
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Persistence for the gateway. Every write is one transaction.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Creates an app.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the id is taken.
    async fn create_app(&self, app: &App) -> StoreResult<()>;

    /// Every app id, sorted.
    async fn list_app_ids(&self) -> StoreResult<Vec<AppId>>;

    /// The whole in-memory view of one app (`None` when the app does not exist).
    async fn load_catalog(&self, app_id: &AppId) -> StoreResult<Option<AppCatalog>>;

    /// Creates or updates a channel. `bundle_id` is `Some(None)` to point it at builtin, `Some(Some(id))` at a
    /// bundle, and `None` to keep its target (builtin for a new channel). Returns the channel and whether it was
    /// created.
    async fn upsert_channel(
        &self,
        app_id: &AppId,
        name: &ChannelName,
        update: &ChannelUpdate,
        bundle_id: Option<Option<i64>>,
    ) -> StoreResult<(Channel, bool)>;

    /// Deletes a channel (and the device overrides that point at it).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such channel.
    async fn delete_channel(&self, app_id: &AppId, name: &ChannelName) -> StoreResult<()>;

    /// Records a fully stored bundle and, when `channel` is given, points that channel at it (creating the channel
    /// with the given settings if it does not exist), in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when a live bundle of that version exists.
    async fn insert_bundle(
        &self,
        bundle: &NewBundle,
        channel: Option<&(ChannelName, ChannelUpdate)>,
    ) -> StoreResult<Bundle>;

    /// Sets (replaces) a device's override.
    async fn set_device_override(
        &self,
        app_id: &AppId,
        device_id: &DeviceId,
        target: &OverrideTarget,
    ) -> StoreResult<()>;

    /// Removes a device's override; `Ok(false)` when it had none.
    async fn delete_device_override(&self, app_id: &AppId, device_id: &DeviceId) -> StoreResult<bool>;

    /// Upserts the latest report of each device (borrowed: the write-behind writer passes views of the packed
    /// reports it holds, [`DeviceReport::view`] gives one of an owned report).
    async fn upsert_devices(&self, reports: &[DeviceReportView<'_>]) -> StoreResult<()>;

    /// The latest report of one device.
    async fn get_device(&self, app_id: &AppId, device_id: &DeviceId) -> StoreResult<Option<DeviceReport>>;

    /// One page of an app's devices, most recently seen first (ties by device id, descending, the order of
    /// [`MetadataStore::list_devices_after`] descending).
    async fn list_devices(&self, app_id: &AppId, offset: u64, limit: u64) -> StoreResult<Vec<DeviceReport>>;

    /// Devices after a cursor, ordered by (updated_at, device_id), ascending or descending.
    async fn list_devices_after(
        &self,
        app_id: &AppId,
        after: Option<&DeviceCursor>,
        limit: u64,
        descending: bool,
    ) -> StoreResult<Vec<DeviceReport>>;

    /// Sets or clears an app's encryption public key.
    async fn set_app_public_key(&self, app_id: &AppId, public_key: Option<&str>) -> StoreResult<()>;

    /// Sets the Expo channel for clients that send no channel header.
    async fn set_app_default_channel(&self, app_id: &AppId, channel: &str) -> StoreResult<()>;

    /// Records a fully stored Expo asset (idempotent).
    async fn insert_expo_asset(&self, app_id: &AppId, sha256: &str, md5: &str, size_bytes: u64) -> StoreResult<()>;

    /// The MD5 of each of these assets that is stored, by SHA-256.
    async fn expo_asset_md5s(&self, app_id: &AppId, sha256s: &[String]) -> StoreResult<HashMap<String, String>>;

    /// Forgets a stored Expo asset (after garbage collection removed its object).
    async fn delete_expo_asset(&self, app_id: &AppId, sha256: &str) -> StoreResult<()>;

    /// What storage objects are in use: every object key of a live bundle or delta manifest, and every Expo asset
    /// (app, SHA-256) an Expo release names.
    async fn referenced_objects(&self) -> StoreResult<ReferencedObjects>;

    /// Records Expo releases (the platforms of one publish, rollback or promotion) in one transaction.
    async fn insert_expo_releases(&self, releases: &[ExpoRelease]) -> StoreResult<()>;

    /// Stores a signing key of an app. An existing key under the same id is replaced only when `replace` is set
    /// (shipped binaries hold its certificate, so replacing it is never silent); returns whether one was replaced.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the key id is taken and `replace` is not set.
    async fn put_signing_key(&self, app_id: &AppId, key: &SigningKeyRecord, replace: bool) -> StoreResult<bool>;

    /// Every signing key of an app, by key id.
    async fn signing_keys(&self, app_id: &AppId) -> StoreResult<Vec<SigningKeyRecord>>;

    /// Soft-deletes a bundle unless a channel or device override points at it. Returns the object keys that no
    /// live bundle references any more (the caller removes them from storage).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the bundle is linked; [`StoreError::NotFound`] when it is not live.
    async fn delete_bundle(&self, app_id: &AppId, bundle_id: i64) -> StoreResult<Vec<String>>;

    /// Appends stats events and applies what they mean, in order: a version an event says failed on the device
    /// ([`crate::failed_version`], judged against the bundle the device last reported) is recorded as failed for
    /// it, once per (app, device, version); the bundle a device runs follows [`crate::install_change`]. Returns
    /// the apps where a device gained a failed version, whose catalogs therefore changed.
    async fn insert_stats(&self, events: &[StatsEvent]) -> StoreResult<Vec<AppId>>;

    /// Recent events and per-bundle counts of an app.
    async fn stats_summary(&self, app_id: &AppId, n_recent: u64) -> StoreResult<StatsSummary>;

    /// Stores a new API key.
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()>;

    /// Finds an API key by its public id (revoked keys too: the caller checks [`ApiKeyRecord::is_active`]).
    async fn find_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>>;

    /// Every stored API key, revoked ones included, oldest first.
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>>;

    /// Marks a key revoked at `at`; `Ok(false)` when there is no such key or it was revoked already.
    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool>;

    // The audit log (one record per management write).

    /// Appends an audit record.
    async fn insert_audit(&self, record: &crate::audit::NewAuditRecord) -> StoreResult<()>;

    /// The newest audit records (of one app, or of the whole installation), newest first.
    async fn list_audit(&self, app_id: Option<&AppId>, limit: u64) -> StoreResult<Vec<crate::audit::AuditRecord>>;

    // Rollouts: the current rollout of each channel, in the catalog. Every write announces the app.

    /// Starts an (active) rollout on its channel, replacing a halted or completed one there, and records
    /// `releases` (an Expo publish that starts with its rollout) in the same transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the channel has an active rollout.
    async fn start_rollout(&self, rollout: &StoredRollout, releases: &[ExpoRelease]) -> StoreResult<()>;

    /// Halts the rollout `rollout_id` of a channel if, and only if, it is active (`UPDATE ... WHERE state =
    /// 'active'`) and, when `judged` is given (the health rule's halt: the rollout as its figures were judged
    /// against), unchanged since (same last change: a resume or a new policy meanwhile makes the figures stale),
    /// recording the halt (who, when, why, figures) and `releases` (the Expo releases that move devices on the
    /// candidate back) in the same transaction. `Ok(false)`, with nothing written, otherwise: another instance or
    /// operator halted, completed or changed it first. So of several deciders, one halts.
    async fn halt_rollout(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        rollout_id: &RolloutId,
        halt: &Halt,
        releases: &[ExpoRelease],
        judged: Option<&StoredRollout>,
    ) -> StoreResult<bool>;

    /// Writes a rollout's new percentage, policy, candidate, state (active or completed; halts go through
    /// [`MetadataStore::halt_rollout`]) and last change if, and only if, the stored rollout is still the one the
    /// caller changed (`seen`: the same state and the same last change), with `releases` and, for a completed Capgo
    /// rollout, the channel pointed at `channel_bundle_id`, in one transaction. `Ok(false)`, with nothing written,
    /// otherwise: a change made meanwhile (through another instance, or another request) is never overwritten by
    /// one made from an older copy.
    async fn update_rollout(
        &self,
        rollout: &StoredRollout,
        seen: &StoredRollout,
        releases: &[ExpoRelease],
        channel_bundle_id: Option<i64>,
    ) -> StoreResult<bool>;

    /// An app's rollouts, one per channel that has one, by channel name.
    async fn rollouts(&self, app_id: &AppId) -> StoreResult<Vec<StoredRollout>>;

    // Release health and halt records (issue #14, part B).

    /// Upserts release-health rows, one per (app, release, device) (the write-behind batches; rows given sorted by
    /// that key, the one order every writer locks them in): the first offer and the first failure are kept, the
    /// last run and the newest time win, an empty channel keeps the stored one.
    async fn upsert_release_devices(&self, rows: &[ReleaseDeviceRow]) -> StoreResult<()>;

    /// Per release and channel, distinct devices offered it, running it and failed on it; `channel` narrows it to
    /// one channel. Newest first within each channel.
    async fn release_health(&self, app_id: &AppId, channel: Option<&str>) -> StoreResult<Vec<ReleaseHealth>>;

    /// A rollout candidate's figures on a channel since `since`: distinct devices that ran a release of the group
    /// or failed on one since then, and of those the ones that failed since then.
    async fn rollout_figures(
        &self,
        app_id: &AppId,
        channel: &str,
        group_id: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<HealthFigures>;

    /// Records a halt.
    async fn insert_rollout_halt(&self, halt: &HaltRecord) -> StoreResult<()>;

    /// The halts of an app's rollouts (of one channel when given), newest first.
    async fn rollout_halts(&self, app_id: &AppId, channel: Option<&str>) -> StoreResult<Vec<HaltRecord>>;

    // bsdiff patches of Expo launch assets.

    /// Records a computed (and verified) patch; the first record of a pair wins (idempotent).
    async fn record_expo_patch(&self, app_id: &AppId, patch: &ExpoPatch) -> StoreResult<()>;

    /// The recorded patch from `base_sha256` to `target_sha256`, if one was computed.
    async fn expo_patch(
        &self,
        app_id: &AppId,
        base_sha256: &str,
        target_sha256: &str,
    ) -> StoreResult<Option<ExpoPatch>>;

    // Sizes of delta files recorded before brotli copies existed (`updraft storage encode` fills them in).

    /// At most `limit` object keys of delta files recorded without the size of their brotli copy, each once, in
    /// key order after `after` (`""` starts at the first).
    async fn delta_files_without_br_size(&self, after: &str, limit: u64) -> StoreResult<Vec<String>>;

    /// Records the size of the delta file stored as `object_key` (where a row has none) and of its brotli copy, on
    /// every bundle row naming it without the latter; returns the rows changed. Each app whose rows changed is
    /// announced, so gateways sharing a PostgreSQL database reload its catalog.
    async fn set_delta_file_sizes(&self, object_key: &str, size_bytes: u64, br_size_bytes: u64) -> StoreResult<u64>;

    // Ageing and capping the rows devices create (issue #17; `crate::DeviceTable`).

    /// The app's `keep + 1`-th most recently seen row of `table`: deleting through it leaves the `keep` newest.
    /// `None` when the app holds at most `keep` rows.
    async fn device_rows_cutoff(
        &self,
        table: DeviceTable,
        app_id: &AppId,
        keep: u64,
    ) -> StoreResult<Option<DeviceRowMark>>;

    /// Deletes at most `limit` of the app's rows of `table` at or before `through` (by last-seen time, then key),
    /// least recently seen first; returns how many it deleted. Safe to run on several instances at once
    /// (PostgreSQL skips rows another transaction holds).
    async fn delete_device_rows(
        &self,
        table: DeviceTable,
        app_id: &AppId,
        through: &DeviceRowMark,
        limit: u64,
    ) -> StoreResult<u64>;
}
