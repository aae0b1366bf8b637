//! The shared state every handler gets: settings, the metadata store, the object store, the release index and the
//! device-report queue. Built once at start-up.

use std::sync::Arc;

use updraft_core::{AppCatalog, AppId, MetadataStore};
use updraft_oss::ObjectStore;

use crate::api_error::ApiError;
use crate::config::Settings;
use crate::release_index::ReleaseIndex;
use crate::write_behind::WriteQueue;

/// Shared state.
pub(crate) struct AppState {
    pub(crate) settings: Settings,
    /// Base URL devices reach, without a trailing slash.
    pub(crate) public_url: String,
    pub(crate) store: Arc<dyn MetadataStore>,
    pub(crate) objects: Arc<dyn ObjectStore>,
    pub(crate) index: Arc<ReleaseIndex>,
    pub(crate) writes: WriteQueue,
    pub(crate) expo: crate::expo_cache::ExpoCache,
    pub(crate) metrics: crate::metrics::Metrics,
    pub(crate) capgo_answers: crate::capgo_answers::CapgoAnswers,
    /// The same store as `store`, for its call counts.
    pub(crate) store_calls: Arc<crate::counting_store::CountingStore>,
    /// The runtime that runs background work (the write-behind task, catalog reloads), not the request workers.
    pub(crate) background: tokio::runtime::Handle,
}

impl AppState {
    /// The catalog of an app, or 404 `app_not_found`.
    pub(crate) fn catalog(&self, app_id: &AppId) -> Result<Arc<AppCatalog>, ApiError> {
        self.index.get(app_id).ok_or_else(|| {
            ApiError::status(
                404,
                updraft_capgo::error_codes::APP_NOT_FOUND,
                format!("app {app_id} does not exist; create it first with POST /app {{\"app_id\":\"{app_id}\"}}"),
            )
        })
    }

    /// Reloads an app into the release index after a write. The load and the building of the catalog (tens of
    /// milliseconds for an app with thousands of bundles) run on the background runtime: the request worker that
    /// made the write only waits for it, and keeps answering the checks of its other connections meanwhile.
    pub(crate) async fn refresh(&self, app_id: &AppId) -> Result<(), ApiError> {
        let started = std::time::Instant::now();
        let (index, store, app) = (self.index.clone(), self.store.clone(), app_id.clone());
        self.background
            .spawn(async move { index.refresh(store.as_ref(), &app).await })
            .await
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("reloading the catalog of {app_id}: {error}")))??;
        self.metrics.observe_refresh(started.elapsed());
        Ok(())
    }

    /// The stable URL of an Expo asset (manifests are cached and signed, so this never changes): the public base
    /// URL in public delivery, else the gateway's asset route (which streams or redirects to a fresh presigned URL).
    pub(crate) fn expo_asset_url(&self, app_id: &AppId, sha256: &str, ext: &str) -> String {
        if let Some(base) = self.public_base() {
            return format!("{base}/{}", crate::storage_layout::StorageKey::ExpoAsset { app_id, sha256 }.object_key());
        }
        let ext = if ext.is_empty() { String::new() } else { format!(".{ext}") };
        format!("{}/expo/{app_id}/assets/{sha256}{ext}", self.public_url)
    }

    /// The URL devices download a stored object from: the public base URL in public delivery, else the gateway.
    pub(crate) fn object_url(&self, object_key: &str) -> String {
        match self.public_base() {
            Some(base) => format!("{base}/{object_key}"),
            None => format!("{}/files/{object_key}", self.public_url),
        }
    }

    fn public_base(&self) -> Option<&str> {
        let storage = &self.settings.storage;
        (storage.delivery == crate::config::Delivery::Public)
            .then(|| storage.public_base_url.as_deref().map(|url| url.trim_end_matches('/')))
            .flatten()
    }

    /// In presigned delivery, a fresh presigned URL for the object, when the backend can make one and it keeps the
    /// scheme of the gateway's public URL (Android's downloader refuses an http↔https redirect). `None`: stream.
    pub(crate) async fn redirect_url(&self, key: &updraft_oss::ObjectKey) -> Option<String> {
        let storage = &self.settings.storage;
        if storage.delivery != crate::config::Delivery::Presigned {
            return None;
        }
        let ttl = std::time::Duration::from_secs(storage.presign_ttl_seconds);
        let url = match self.objects.presigned_get(key, ttl).await {
            Ok(url) => url?,
            Err(error) => {
                tracing::warn!(object.key = %key, "presigning failed, streaming instead: {error}");
                return None;
            }
        };
        let scheme = |u: &str| u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        (scheme(&url) == scheme(&self.public_url)).then_some(url)
    }
}
