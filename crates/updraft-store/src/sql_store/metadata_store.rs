//! The one `impl MetadataStore for SqlStore`: a table of contents, one line per trait method, that hands each call
//! to the concern module that holds its SQL.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use updraft_core::{
    ApiKeyRecord, App, AppCatalog, AppId, Bundle, Channel, ChannelName, ChannelUpdate, DeviceCursor, DeviceId,
    DeviceReport, ExpoRelease, MetadataStore, NewBundle, OverrideTarget, ReferencedObjects, StatsEvent, StatsSummary,
    StoreResult,
};

use super::{SqlStore, api_keys, apps, bundles, catalog, channels, devices, expo, objects, signing_keys, stats};

#[async_trait]
impl MetadataStore for SqlStore {
    async fn create_app(&self, app: &App) -> StoreResult<()> {
        apps::create_app(self, app).await
    }

    async fn list_app_ids(&self) -> StoreResult<Vec<AppId>> {
        apps::list_app_ids(self).await
    }

    async fn load_catalog(&self, app_id: &AppId) -> StoreResult<Option<AppCatalog>> {
        catalog::load_catalog(self, app_id).await
    }

    async fn upsert_channel(
        &self,
        app_id: &AppId,
        name: &ChannelName,
        update: &ChannelUpdate,
        bundle_id: Option<Option<i64>>,
    ) -> StoreResult<(Channel, bool)> {
        channels::upsert_channel(self, app_id, name, update, bundle_id).await
    }

    async fn delete_channel(&self, app_id: &AppId, name: &ChannelName) -> StoreResult<()> {
        channels::delete_channel(self, app_id, name).await
    }

    async fn insert_bundle(
        &self,
        bundle: &NewBundle,
        channel: Option<&(ChannelName, ChannelUpdate)>,
    ) -> StoreResult<Bundle> {
        bundles::insert_bundle(self, bundle, channel).await
    }

    async fn set_device_override(
        &self,
        app_id: &AppId,
        device_id: &DeviceId,
        target: &OverrideTarget,
    ) -> StoreResult<()> {
        devices::set_device_override(self, app_id, device_id, target).await
    }

    async fn delete_device_override(&self, app_id: &AppId, device_id: &DeviceId) -> StoreResult<bool> {
        devices::delete_device_override(self, app_id, device_id).await
    }

    async fn upsert_devices(&self, reports: &[DeviceReport]) -> StoreResult<()> {
        devices::upsert_devices(self, reports).await
    }

    async fn get_device(&self, app_id: &AppId, device_id: &DeviceId) -> StoreResult<Option<DeviceReport>> {
        devices::get_device(self, app_id, device_id).await
    }

    async fn list_devices(&self, app_id: &AppId, offset: u64, limit: u64) -> StoreResult<Vec<DeviceReport>> {
        devices::list_devices(self, app_id, offset, limit).await
    }

    async fn list_devices_after(
        &self,
        app_id: &AppId,
        after: Option<&DeviceCursor>,
        limit: u64,
        descending: bool,
    ) -> StoreResult<Vec<DeviceReport>> {
        devices::list_devices_after(self, app_id, after, limit, descending).await
    }

    async fn set_app_public_key(&self, app_id: &AppId, public_key: Option<&str>) -> StoreResult<()> {
        apps::set_app_public_key(self, app_id, public_key).await
    }

    async fn set_app_default_channel(&self, app_id: &AppId, channel: &str) -> StoreResult<()> {
        apps::set_app_default_channel(self, app_id, channel).await
    }

    async fn insert_expo_asset(&self, app_id: &AppId, sha256: &str, md5: &str, size_bytes: u64) -> StoreResult<()> {
        expo::insert_expo_asset(self, app_id, sha256, md5, size_bytes).await
    }

    async fn expo_asset_md5s(&self, app_id: &AppId, sha256s: &[String]) -> StoreResult<HashMap<String, String>> {
        expo::expo_asset_md5s(self, app_id, sha256s).await
    }

    async fn delete_expo_asset(&self, app_id: &AppId, sha256: &str) -> StoreResult<()> {
        expo::delete_expo_asset(self, app_id, sha256).await
    }

    async fn referenced_objects(&self) -> StoreResult<ReferencedObjects> {
        objects::referenced_objects(self).await
    }

    async fn insert_expo_releases(&self, releases: &[ExpoRelease]) -> StoreResult<()> {
        expo::insert_expo_releases(self, releases).await
    }

    async fn put_signing_key(&self, app_id: &AppId, key_id: &str, private_key_pem: &str) -> StoreResult<()> {
        signing_keys::put_signing_key(self, app_id, key_id, private_key_pem).await
    }

    async fn signing_keys(&self, app_id: &AppId) -> StoreResult<Vec<(String, String)>> {
        signing_keys::signing_keys(self, app_id).await
    }

    async fn delete_bundle(&self, app_id: &AppId, bundle_id: i64) -> StoreResult<Vec<String>> {
        bundles::delete_bundle(self, app_id, bundle_id).await
    }

    async fn insert_stats(&self, events: &[StatsEvent]) -> StoreResult<()> {
        stats::insert_stats(self, events).await
    }

    async fn stats_summary(&self, app_id: &AppId, n_recent: u64) -> StoreResult<StatsSummary> {
        stats::stats_summary(self, app_id, n_recent).await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        api_keys::insert_api_key(self, key).await
    }

    async fn find_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        api_keys::find_api_key(self, id).await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        api_keys::list_api_keys(self).await
    }

    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        api_keys::revoke_api_key(self, id, at).await
    }
}
