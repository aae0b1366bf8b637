//! Use cases: what the management API, uploads and the change feed do, as functions of checked domain values (an
//! `AppId`, a parsed request), knowing no HTTP. Each one checks, stores bytes first, then writes one store
//! transaction, then refreshes the release index, so a half-finished operation is never served.
//!
//! The metadata store and the object store are private to this module: `AppState`'s `store` and `objects` fields
//! are visible only here and below, so a handler in `routes/` cannot reach them and has to call a use case. Pure
//! rules (release minting, self-assignment) are `updraft_core`'s; wire shapes are the protocol crates'.

pub(crate) mod api_keys;
pub(crate) mod apps;
pub(crate) mod audit;
pub(crate) mod bundles;
pub(crate) mod catalogs;
pub(crate) mod channel_self;
pub(crate) mod channels;
pub(crate) mod console;
pub(crate) mod device_ageing;
pub(crate) mod devices;
pub(crate) mod encodings;
pub(crate) mod expo_keys;
pub(crate) mod expo_patches;
pub(crate) mod expo_releases;
pub(crate) mod objects;
pub(crate) mod release_health;
pub(crate) mod rollouts;
pub(crate) mod stats;

use std::sync::Arc;

use updraft_core::{AppCatalog, AppId, MetadataStore};
use updraft_oss::ObjectStore;

use crate::api_error::ApiError;
use crate::config::Settings;
use crate::release_index::ReleaseIndex;
use crate::write_behind::WriteQueue;

/// The shared state every handler gets: settings, the release index, the device-report queue and caches, and,
/// reachable only through the use cases of this module, the metadata store and the object store. Built once at
/// start-up.
pub(crate) struct AppState {
    pub(crate) settings: Settings,
    /// Base URL devices reach, without a trailing slash.
    pub(crate) public_url: String,
    store: Arc<dyn MetadataStore>,
    objects: Arc<dyn ObjectStore>,
    pub(crate) index: Arc<ReleaseIndex>,
    pub(crate) writes: WriteQueue,
    pub(crate) expo: crate::expo_cache::ExpoCache,
    pub(crate) metrics: crate::metrics::Metrics,
    pub(crate) capgo_answers: crate::capgo_answers::CapgoAnswers,
    /// The call counts of `store`, for `/metrics`.
    pub(crate) store_calls: Arc<updraft_store::StoreCalls>,
    /// The runtime that runs background work (the write-behind task, catalog reloads), not the request workers.
    background: tokio::runtime::Handle,
    /// The console's signed-in sessions and failed sign-ins (in memory: a restart signs everyone out).
    pub(crate) console: crate::console_sessions::ConsoleSessions,
    /// Publishes, rollout changes and halts POSTed to `UPDRAFT_WEBHOOK_URL` (nothing when unset).
    pub(crate) webhooks: crate::webhooks::Webhooks,
    /// Compressed copies and Expo patches: what downloads remember and the patch queue.
    pub(crate) bytes: crate::ops::encodings::DeliveryState,
    /// Hot downloaded objects in memory (`crate::object_cache`).
    pub(crate) object_cache: crate::object_cache::ObjectCache,
    /// What the device-row ageing task deleted (`crate::device_ageing`), for `/metrics`.
    pub(crate) device_ageing: crate::device_ageing::AgeingCounts,
}

/// What `AppState` is built from.
pub(crate) struct StateParts {
    pub(crate) settings: Settings,
    pub(crate) public_url: String,
    pub(crate) store: Arc<dyn MetadataStore>,
    pub(crate) objects: Arc<dyn ObjectStore>,
    pub(crate) index: Arc<ReleaseIndex>,
    pub(crate) writes: WriteQueue,
    pub(crate) expo: crate::expo_cache::ExpoCache,
    pub(crate) store_calls: Arc<updraft_store::StoreCalls>,
    pub(crate) background: tokio::runtime::Handle,
    pub(crate) webhooks: crate::webhooks::Webhooks,
}

impl AppState {
    /// The state, with fresh metrics and answer caches.
    pub(crate) fn new(parts: StateParts) -> Self {
        let StateParts { settings, public_url, store, objects, index, writes, expo, store_calls, background, webhooks } =
            parts;
        let object_cache = crate::object_cache::ObjectCache::new(settings.object_cache_mb);
        Self {
            object_cache,
            settings,
            public_url,
            store,
            objects,
            index,
            writes,
            expo,
            metrics: Default::default(),
            capgo_answers: Default::default(),
            store_calls,
            background,
            console: Default::default(),
            webhooks,
            bytes: Default::default(),
            device_ageing: Default::default(),
        }
    }

    /// The catalog of an app, or 404 `app_not_found`.
    pub(crate) fn catalog(&self, app_id: &AppId) -> Result<Arc<AppCatalog>, ApiError> {
        self.index.get(app_id).ok_or_else(|| {
            ApiError::not_found(
                updraft_core::codes::APP_NOT_FOUND,
                format!("app {app_id} does not exist; create it first with POST /app {{\"app_id\":\"{app_id}\"}}"),
            )
        })
    }

    /// Reloads an app into the release index after a write. The load and the building of the catalog (tens of
    /// milliseconds for an app with thousands of bundles) run on the background runtime: the request worker that
    /// made the write only waits for it, and keeps answering the checks of its other connections meanwhile.
    async fn refresh(&self, app_id: &AppId) -> Result<(), ApiError> {
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
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(sources(&path));
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path, text));
            }
        }
        found
    }

    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    /// The compile-time boundary (private `store`/`objects` fields) keeps handlers off the stores; this keeps them
    /// off the release-index refresh too, which only a use case that wrote may do.
    #[test]
    fn routes_reach_the_stores_only_through_use_cases() {
        let forbidden = [".store.", ".objects.", ".refresh(", "MetadataStore", "ObjectStore"];
        let routes = sources(&src().join("routes"));
        assert!(routes.len() > 10, "the routes folder moved");
        for (path, text) in routes {
            for pattern in forbidden {
                assert!(!text.contains(pattern), "{} uses {pattern}; call a use case in crate::ops", path.display());
            }
        }
    }

    /// Capgo's error codes and rendering are Capgo's wire format: only the Capgo rendering (`api_error.rs`) uses
    /// them; everything else speaks `updraft_core::Failure` with neutral codes.
    #[test]
    fn only_the_capgo_rendering_knows_capgo_error_types() {
        let forbidden = [["updraft_capgo", "::error_codes"].concat(), ["updraft_capgo", "::failure"].concat()];
        for (path, text) in sources(&src()) {
            if path.ends_with("api_error.rs") {
                continue;
            }
            for pattern in &forbidden {
                assert!(!text.contains(pattern.as_str()), "{} uses {pattern}", path.display());
            }
        }
    }
}
