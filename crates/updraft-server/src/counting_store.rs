//! `CountingStore`: a `MetadataStore` that counts the reads and writes it passes to the real store, exported in
//! `/metrics` (`updraft_store_reads_total`, `updraft_store_writes_total`). It makes "an update check does no
//! database round-trip" observable: checks must leave the read count unchanged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use updraft_core::SigningKeyRecord;
use updraft_core::{
    ApiKeyRecord, App, AppCatalog, AppId, Bundle, Channel, ChannelName, ChannelUpdate, DeviceCursor, DeviceId,
    DeviceReport, ExpoRelease, MetadataStore, NewBundle, OverrideTarget, StatsEvent, StatsSummary, StoreResult,
};

/// Counts store calls by kind.
pub(crate) struct CountingStore {
    inner: Arc<dyn MetadataStore>,
    reads: AtomicU64,
    writes: AtomicU64,
}

impl CountingStore {
    pub(crate) fn new(inner: Arc<dyn MetadataStore>) -> Self {
        Self { inner, reads: AtomicU64::new(0), writes: AtomicU64::new(0) }
    }

    /// Calls that read.
    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Calls that write.
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl MetadataStore for CountingStore {
    async fn create_app(&self, app: &App) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.create_app(app).await
    }

    async fn list_app_ids(&self) -> StoreResult<Vec<AppId>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.list_app_ids().await
    }

    async fn load_catalog(&self, app_id: &AppId) -> StoreResult<Option<AppCatalog>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.load_catalog(app_id).await
    }

    async fn upsert_channel(
        &self,
        app_id: &AppId,
        name: &ChannelName,
        update: &ChannelUpdate,
        bundle_id: Option<Option<i64>>,
    ) -> StoreResult<(Channel, bool)> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.upsert_channel(app_id, name, update, bundle_id).await
    }

    async fn delete_channel(&self, app_id: &AppId, name: &ChannelName) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.delete_channel(app_id, name).await
    }

    async fn insert_bundle(
        &self,
        bundle: &NewBundle,
        channel: Option<&(ChannelName, ChannelUpdate)>,
    ) -> StoreResult<Bundle> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.insert_bundle(bundle, channel).await
    }

    async fn set_device_override(
        &self,
        app_id: &AppId,
        device_id: &DeviceId,
        target: &OverrideTarget,
    ) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.set_device_override(app_id, device_id, target).await
    }

    async fn delete_device_override(&self, app_id: &AppId, device_id: &DeviceId) -> StoreResult<bool> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.delete_device_override(app_id, device_id).await
    }

    async fn upsert_devices(&self, reports: &[DeviceReport]) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.upsert_devices(reports).await
    }

    async fn get_device(&self, app_id: &AppId, device_id: &DeviceId) -> StoreResult<Option<DeviceReport>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.get_device(app_id, device_id).await
    }

    async fn list_devices(&self, app_id: &AppId, offset: u64, limit: u64) -> StoreResult<Vec<DeviceReport>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.list_devices(app_id, offset, limit).await
    }

    async fn list_devices_after(
        &self,
        app_id: &AppId,
        after: Option<&DeviceCursor>,
        limit: u64,
        descending: bool,
    ) -> StoreResult<Vec<DeviceReport>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.list_devices_after(app_id, after, limit, descending).await
    }

    async fn set_app_public_key(&self, app_id: &AppId, public_key: Option<&str>) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.set_app_public_key(app_id, public_key).await
    }

    async fn set_app_default_channel(&self, app_id: &AppId, channel: &str) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.set_app_default_channel(app_id, channel).await
    }

    async fn insert_expo_asset(&self, app_id: &AppId, sha256: &str, md5: &str, size_bytes: u64) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.insert_expo_asset(app_id, sha256, md5, size_bytes).await
    }

    async fn expo_asset_md5s(
        &self,
        app_id: &AppId,
        sha256s: &[String],
    ) -> StoreResult<std::collections::HashMap<String, String>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.expo_asset_md5s(app_id, sha256s).await
    }

    async fn insert_expo_releases(&self, releases: &[ExpoRelease]) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.insert_expo_releases(releases).await
    }

    async fn put_signing_key(&self, app_id: &AppId, key: &SigningKeyRecord, replace: bool) -> StoreResult<bool> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.put_signing_key(app_id, key, replace).await
    }

    async fn signing_keys(&self, app_id: &AppId) -> StoreResult<Vec<SigningKeyRecord>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.signing_keys(app_id).await
    }

    async fn delete_bundle(&self, app_id: &AppId, bundle_id: i64) -> StoreResult<Vec<String>> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.delete_bundle(app_id, bundle_id).await
    }

    async fn insert_stats(&self, events: &[StatsEvent]) -> StoreResult<Vec<AppId>> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.insert_stats(events).await
    }

    async fn stats_summary(&self, app_id: &AppId, n_recent: u64) -> StoreResult<StatsSummary> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.stats_summary(app_id, n_recent).await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.insert_api_key(key).await
    }

    async fn find_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.find_api_key(id).await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.list_api_keys().await
    }

    async fn revoke_api_key(&self, id: &str, at: chrono::DateTime<chrono::Utc>) -> StoreResult<bool> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.revoke_api_key(id, at).await
    }
    async fn delete_expo_asset(&self, app_id: &AppId, sha256: &str) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.delete_expo_asset(app_id, sha256).await
    }

    async fn referenced_objects(&self) -> StoreResult<updraft_core::ReferencedObjects> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.referenced_objects().await
    }
}
