//! The one `impl MetadataStore for SqlStore`: a table of contents, one line per trait method, that counts the call
//! as a read or a write ([`super::StoreCalls`]) and hands it to the concern module that holds its SQL.
//!
//! Deciding read or write in the line that dispatches the method keeps the `/metrics` counters next to what they
//! count: the compiler makes every trait method appear in this block, and the store story
//! (`tests/story.rs`, `*_stories_call_every_store_method`) fails for a method not counted under its own name.
//! Methods that change rows are writes; methods that only read rows are reads.

use std::collections::HashMap;
use std::future::Future;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use updraft_core::ExpoPatch;
use updraft_core::{
    ApiKeyRecord, App, AppCatalog, AppId, Bundle, Channel, ChannelName, ChannelUpdate, DeviceCursor, DeviceId,
    DeviceReport, ExpoRelease, MetadataStore, NewBundle, OverrideTarget, ReferencedObjects, SigningKeyRecord,
    StatsEvent, StatsSummary, StoreResult,
};
use updraft_core::{DeviceReportView, DeviceRowMark, DeviceTable};
use updraft_core::{Halt, RolloutId, StoredRollout};

use super::calls::CallKind;
use super::device_rows;
use super::expo_patches;
use super::release_health;
use super::rollouts;
use super::{SqlStore, api_keys, apps, audit, bundles, catalog, channels, devices, expo, objects, signing_keys, stats};
use updraft_core::{HaltRecord, HealthFigures, ReleaseDeviceRow, ReleaseHealth};

impl SqlStore {
    /// Counts a call of `method` that only reads, then hands back the call.
    fn reading<F: Future>(&self, method: &'static str, call: F) -> F {
        self.calls.count(CallKind::Read, method);
        call
    }

    /// Counts a call of `method` that writes, then hands back the call.
    fn writing<F: Future>(&self, method: &'static str, call: F) -> F {
        self.calls.count(CallKind::Write, method);
        call
    }
}

#[async_trait]
impl MetadataStore for SqlStore {
    async fn create_app(&self, app: &App) -> StoreResult<()> {
        self.writing("create_app", apps::create_app(self, app)).await
    }

    async fn list_app_ids(&self) -> StoreResult<Vec<AppId>> {
        self.reading("list_app_ids", apps::list_app_ids(self)).await
    }

    async fn load_catalog(&self, app_id: &AppId) -> StoreResult<Option<AppCatalog>> {
        self.reading("load_catalog", catalog::load_catalog(self, app_id)).await
    }

    async fn upsert_channel(
        &self,
        app_id: &AppId,
        name: &ChannelName,
        update: &ChannelUpdate,
        bundle_id: Option<Option<i64>>,
    ) -> StoreResult<(Channel, bool)> {
        self.writing("upsert_channel", channels::upsert_channel(self, app_id, name, update, bundle_id)).await
    }

    async fn delete_channel(&self, app_id: &AppId, name: &ChannelName) -> StoreResult<()> {
        self.writing("delete_channel", channels::delete_channel(self, app_id, name)).await
    }

    async fn insert_bundle(
        &self,
        bundle: &NewBundle,
        channel: Option<&(ChannelName, ChannelUpdate)>,
    ) -> StoreResult<Bundle> {
        self.writing("insert_bundle", bundles::insert_bundle(self, bundle, channel)).await
    }

    async fn set_device_override(
        &self,
        app_id: &AppId,
        device_id: &DeviceId,
        target: &OverrideTarget,
    ) -> StoreResult<()> {
        self.writing("set_device_override", devices::set_device_override(self, app_id, device_id, target)).await
    }

    async fn delete_device_override(&self, app_id: &AppId, device_id: &DeviceId) -> StoreResult<bool> {
        self.writing("delete_device_override", devices::delete_device_override(self, app_id, device_id)).await
    }

    async fn upsert_devices(&self, reports: &[DeviceReportView<'_>]) -> StoreResult<()> {
        self.writing("upsert_devices", devices::upsert_devices(self, reports)).await
    }

    async fn get_device(&self, app_id: &AppId, device_id: &DeviceId) -> StoreResult<Option<DeviceReport>> {
        self.reading("get_device", devices::get_device(self, app_id, device_id)).await
    }

    async fn list_devices(&self, app_id: &AppId, offset: u64, limit: u64) -> StoreResult<Vec<DeviceReport>> {
        self.reading("list_devices", devices::list_devices(self, app_id, offset, limit)).await
    }

    async fn list_devices_after(
        &self,
        app_id: &AppId,
        after: Option<&DeviceCursor>,
        limit: u64,
        descending: bool,
    ) -> StoreResult<Vec<DeviceReport>> {
        self.reading("list_devices_after", devices::list_devices_after(self, app_id, after, limit, descending)).await
    }

    async fn set_app_public_key(&self, app_id: &AppId, public_key: Option<&str>) -> StoreResult<()> {
        self.writing("set_app_public_key", apps::set_app_public_key(self, app_id, public_key)).await
    }

    async fn set_app_default_channel(&self, app_id: &AppId, channel: &str) -> StoreResult<()> {
        self.writing("set_app_default_channel", apps::set_app_default_channel(self, app_id, channel)).await
    }

    async fn insert_expo_asset(&self, app_id: &AppId, sha256: &str, md5: &str, size_bytes: u64) -> StoreResult<()> {
        self.writing("insert_expo_asset", expo::insert_expo_asset(self, app_id, sha256, md5, size_bytes)).await
    }

    async fn expo_asset_md5s(&self, app_id: &AppId, sha256s: &[String]) -> StoreResult<HashMap<String, String>> {
        self.reading("expo_asset_md5s", expo::expo_asset_md5s(self, app_id, sha256s)).await
    }

    async fn delete_expo_asset(&self, app_id: &AppId, sha256: &str) -> StoreResult<()> {
        self.writing("delete_expo_asset", expo::delete_expo_asset(self, app_id, sha256)).await
    }

    async fn referenced_objects(&self) -> StoreResult<ReferencedObjects> {
        self.reading("referenced_objects", objects::referenced_objects(self)).await
    }

    async fn insert_expo_releases(&self, releases: &[ExpoRelease]) -> StoreResult<()> {
        self.writing("insert_expo_releases", expo::insert_expo_releases(self, releases)).await
    }

    async fn put_signing_key(&self, app_id: &AppId, key: &SigningKeyRecord, replace: bool) -> StoreResult<bool> {
        self.writing("put_signing_key", signing_keys::put_signing_key(self, app_id, key, replace)).await
    }

    async fn signing_keys(&self, app_id: &AppId) -> StoreResult<Vec<SigningKeyRecord>> {
        self.reading("signing_keys", signing_keys::signing_keys(self, app_id)).await
    }

    async fn delete_bundle(&self, app_id: &AppId, bundle_id: i64) -> StoreResult<Vec<String>> {
        self.writing("delete_bundle", bundles::delete_bundle(self, app_id, bundle_id)).await
    }

    async fn insert_stats(&self, events: &[StatsEvent]) -> StoreResult<Vec<AppId>> {
        self.writing("insert_stats", stats::insert_stats(self, events)).await
    }

    async fn stats_summary(&self, app_id: &AppId, n_recent: u64) -> StoreResult<StatsSummary> {
        self.reading("stats_summary", stats::stats_summary(self, app_id, n_recent)).await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        self.writing("insert_api_key", api_keys::insert_api_key(self, key)).await
    }

    async fn find_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.reading("find_api_key", api_keys::find_api_key(self, id)).await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.reading("list_api_keys", api_keys::list_api_keys(self)).await
    }

    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        self.writing("revoke_api_key", api_keys::revoke_api_key(self, id, at)).await
    }

    // The audit log.

    async fn insert_audit(&self, record: &updraft_core::NewAuditRecord) -> StoreResult<()> {
        self.writing("insert_audit", audit::insert_audit(self, record)).await
    }

    async fn list_audit(&self, app_id: Option<&AppId>, limit: u64) -> StoreResult<Vec<updraft_core::AuditRecord>> {
        self.reading("list_audit", audit::list_audit(self, app_id, limit)).await
    }

    // Rollouts.

    async fn start_rollout(&self, rollout: &StoredRollout, releases: &[ExpoRelease]) -> StoreResult<()> {
        self.writing("start_rollout", rollouts::start_rollout(self, rollout, releases)).await
    }

    async fn halt_rollout(
        &self,
        app_id: &AppId,
        channel: &ChannelName,
        rollout_id: &RolloutId,
        halt: &Halt,
        releases: &[ExpoRelease],
        judged: Option<&StoredRollout>,
    ) -> StoreResult<bool> {
        self.writing("halt_rollout", rollouts::halt_rollout(self, app_id, channel, rollout_id, halt, releases, judged))
            .await
    }

    async fn update_rollout(
        &self,
        rollout: &StoredRollout,
        seen: &StoredRollout,
        releases: &[ExpoRelease],
        channel_bundle_id: Option<i64>,
    ) -> StoreResult<bool> {
        self.writing("update_rollout", rollouts::update_rollout(self, rollout, seen, releases, channel_bundle_id)).await
    }

    async fn rollouts(&self, app_id: &AppId) -> StoreResult<Vec<StoredRollout>> {
        self.reading("rollouts", rollouts::rollouts(self, app_id)).await
    }

    // Release health and halt records (issue #14, part B).

    async fn upsert_release_devices(&self, rows: &[ReleaseDeviceRow]) -> StoreResult<()> {
        self.writing("upsert_release_devices", release_health::upsert_release_devices(self, rows)).await
    }

    async fn release_health(&self, app_id: &AppId, channel: Option<&str>) -> StoreResult<Vec<ReleaseHealth>> {
        self.reading("release_health", release_health::release_health(self, app_id, channel)).await
    }

    async fn rollout_figures(
        &self,
        app_id: &AppId,
        channel: &str,
        group_id: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<HealthFigures> {
        self.reading("rollout_figures", release_health::rollout_figures(self, app_id, channel, group_id, since)).await
    }

    async fn insert_rollout_halt(&self, halt: &HaltRecord) -> StoreResult<()> {
        self.writing("insert_rollout_halt", release_health::insert_rollout_halt(self, halt)).await
    }

    async fn rollout_halts(&self, app_id: &AppId, channel: Option<&str>) -> StoreResult<Vec<HaltRecord>> {
        self.reading("rollout_halts", release_health::rollout_halts(self, app_id, channel)).await
    }

    // bsdiff patches of Expo launch assets.

    async fn record_expo_patch(&self, app_id: &AppId, patch: &ExpoPatch) -> StoreResult<()> {
        self.writing("record_expo_patch", expo_patches::record_expo_patch(self, app_id, patch)).await
    }

    async fn expo_patch(
        &self,
        app_id: &AppId,
        base_sha256: &str,
        target_sha256: &str,
    ) -> StoreResult<Option<ExpoPatch>> {
        self.reading("expo_patch", expo_patches::expo_patch(self, app_id, base_sha256, target_sha256)).await
    }

    // Sizes of delta files recorded before brotli copies existed.

    async fn delta_files_without_br_size(&self, after: &str, limit: u64) -> StoreResult<Vec<String>> {
        self.reading("delta_files_without_br_size", super::delta_sizes::delta_files_without_br_size(self, after, limit))
            .await
    }

    async fn set_delta_file_sizes(&self, object_key: &str, size_bytes: u64, br_size_bytes: u64) -> StoreResult<u64> {
        let call = super::delta_sizes::set_delta_file_sizes(self, object_key, size_bytes, br_size_bytes);
        self.writing("set_delta_file_sizes", call).await
    }

    // Ageing and capping the rows devices create.

    async fn device_rows_cutoff(
        &self,
        table: DeviceTable,
        app_id: &AppId,
        keep: u64,
    ) -> StoreResult<Option<DeviceRowMark>> {
        self.reading("device_rows_cutoff", device_rows::device_rows_cutoff(self, table, app_id, keep)).await
    }

    async fn delete_device_rows(
        &self,
        table: DeviceTable,
        app_id: &AppId,
        through: &DeviceRowMark,
        limit: u64,
    ) -> StoreResult<u64> {
        self.writing("delete_device_rows", device_rows::delete_device_rows(self, table, app_id, through, limit)).await
    }
}
