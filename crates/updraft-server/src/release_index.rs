//! The release index: per instance, the in-memory [`AppCatalog`] of every app, which answers every update check.
//!
//! A check reads one `Arc` under a short read lock and never touches the database. Every management write reloads
//! the app's catalog from the store and swaps it in whole, so the next check sees the new state at once.
//!
//! Reloads of one app can overlap: a management write's, the change feed's (a write through another instance), the
//! writer's (a failed install). Each load is numbered when it starts, before it reads, and a catalog replaces only
//! one from an earlier-started load. A load that started later read at least every write committed before it
//! started, so whichever finishes first, the index never goes back to a state without a write whose reload has
//! returned.
//!
//! An app whose reload failed (after a write here, or a change notified by another instance) is kept as stale and
//! reloaded again by [`crate::ops::catalogs::retry_stale`] until it succeeds: otherwise the instance would serve
//! its older catalog until the app's next change.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use updraft_core::{AppCatalog, AppId, MetadataStore, StoreResult};

/// Catalogs by app.
#[derive(Default)]
pub(crate) struct ReleaseIndex {
    catalogs: RwLock<HashMap<AppId, Installed>>,
    loads_started: AtomicU64,
    stale: Mutex<BTreeSet<AppId>>,
}

/// What the index holds for an app, and the load it came from. `None` once a load found the app deleted: an
/// earlier-started load that still saw it must not bring it back.
struct Installed {
    load: Load,
    catalog: Option<Arc<AppCatalog>>,
}

/// The number of a catalog load, in the order the loads started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Load(u64);

impl ReleaseIndex {
    /// Loads every app's catalog.
    pub(crate) async fn load(store: &dyn MetadataStore) -> StoreResult<Self> {
        let index = Self::default();
        for app_id in store.list_app_ids().await? {
            index.refresh(store, &app_id).await?;
        }
        Ok(index)
    }

    /// The current catalog of an app.
    pub(crate) fn get(&self, app_id: &AppId) -> Option<Arc<AppCatalog>> {
        self.read().get(app_id).and_then(|installed| installed.catalog.clone())
    }

    /// Every app in the index.
    pub(crate) fn app_ids(&self) -> Vec<AppId> {
        self.read().iter().filter(|(_, installed)| installed.catalog.is_some()).map(|(id, _)| id.clone()).collect()
    }

    /// Reloads one app from the store (after a write) and swaps it in, unless a load that started later was swapped
    /// in first.
    pub(crate) async fn refresh(&self, store: &dyn MetadataStore, app_id: &AppId) -> StoreResult<()> {
        let load = self.start_load();
        let catalog = store.load_catalog(app_id).await.inspect_err(|_| self.mark_stale(app_id))?;
        self.install(app_id, load, catalog);
        Ok(())
    }

    /// Keeps `app_id` to be reloaded again (its catalog or signing keys could not be read after a change).
    pub(crate) fn mark_stale(&self, app_id: &AppId) {
        self.stale_apps().insert(app_id.clone());
    }

    /// `app_id` was reloaded whole: returns whether it was stale.
    pub(crate) fn unmark_stale(&self, app_id: &AppId) -> bool {
        self.stale_apps().remove(app_id)
    }

    /// The apps to reload again.
    pub(crate) fn stale(&self) -> Vec<AppId> {
        self.stale_apps().iter().cloned().collect()
    }

    fn stale_apps(&self) -> std::sync::MutexGuard<'_, BTreeSet<AppId>> {
        self.stale.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn start_load(&self) -> Load {
        // SeqCst: a load numbered after another's start also starts after everything that happened before it.
        Load(self.loads_started.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Swaps in what `load` read; returns false (and keeps the index as it is) when a later-started load's catalog
    /// is already there.
    fn install(&self, app_id: &AppId, load: Load, catalog: Option<AppCatalog>) -> bool {
        let mut catalogs = self.catalogs.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if catalogs.get(app_id).is_some_and(|installed| installed.load > load) {
            return false;
        }
        catalogs.insert(app_id.clone(), Installed { load, catalog: catalog.map(Arc::new) });
        true
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<AppId, Installed>> {
        self.catalogs.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use updraft_store::SqlStore;

    use super::*;
    use crate::test_store::{publish_external, store_with_app};

    const APP: &str = "com.example.index";

    async fn publish(store: &SqlStore, version: &str) {
        publish_external(store, APP, version).await;
    }

    fn versions(index: &ReleaseIndex) -> Vec<String> {
        let catalog = index.get(&AppId::parse(APP).unwrap()).expect("the app is in the index");
        let mut versions: Vec<String> = catalog.bundles().map(|b| b.version.as_str().to_owned()).collect();
        versions.sort();
        versions
    }

    /// A slow reload that read before a publish finishes after the publish's own reload: the index keeps the
    /// publish (before, the slow reload's older catalog replaced it until the app's next change).
    #[tokio::test]
    async fn a_reload_that_started_earlier_never_replaces_a_later_one() {
        let (_dir, _, store) = store_with_app(APP).await;
        let store = store.as_ref();
        publish(store, "1.0.0").await;
        let index = ReleaseIndex::load(store).await.unwrap();
        let app_id = AppId::parse(APP).unwrap();

        // The slow reload starts and reads 1.0.0 only.
        let slow = index.start_load();
        let before_publish = store.load_catalog(&app_id).await.unwrap();
        // 1.0.1 is published and its reload returns.
        publish(store, "1.0.1").await;
        index.refresh(store, &app_id).await.unwrap();
        assert_eq!(versions(&index), ["1.0.0", "1.0.1"]);
        // The slow reload finishes last.
        assert!(!index.install(&app_id, slow, before_publish), "an earlier-started load is refused");
        assert_eq!(versions(&index), ["1.0.0", "1.0.1"], "the publish stays served");

        // In start order, each load replaces the one before it, whatever it read.
        let first = index.start_load();
        let second = index.start_load();
        let catalog = store.load_catalog(&app_id).await.unwrap();
        assert!(index.install(&app_id, first, catalog));
        let catalog = store.load_catalog(&app_id).await.unwrap();
        assert!(index.install(&app_id, second, catalog));
    }

    /// A load that found the app deleted wins over an earlier-started one that still saw it.
    #[tokio::test]
    async fn a_deleted_app_is_not_brought_back_by_an_earlier_reload() {
        let (_dir, _, store) = store_with_app(APP).await;
        let store = store.as_ref();
        let index = ReleaseIndex::load(store).await.unwrap();
        let app_id = AppId::parse(APP).unwrap();
        let slow = index.start_load();
        let still_there = store.load_catalog(&app_id).await.unwrap();
        assert!(still_there.is_some());
        let deleted = index.start_load();
        assert!(index.install(&app_id, deleted, None));
        assert!(!index.install(&app_id, slow, still_there));
        assert!(index.get(&app_id).is_none());
        assert!(index.app_ids().is_empty(), "a deleted app is not listed");
        // Created again, it is loaded again.
        index.refresh(store, &app_id).await.unwrap();
        assert_eq!(index.app_ids(), [app_id]);
    }
}
