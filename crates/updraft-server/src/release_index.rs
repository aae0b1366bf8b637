//! The release index: per instance, the in-memory [`AppCatalog`] of every app, which answers every update check.
//!
//! A check reads one `Arc` under a short read lock and never touches the database. Every management write reloads
//! the app's catalog from the store and swaps it in whole, so the next check sees the new state at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use updraft_core::{AppCatalog, AppId, MetadataStore, StoreResult};

/// Catalogs by app.
#[derive(Default)]
pub(crate) struct ReleaseIndex {
    catalogs: RwLock<HashMap<AppId, Arc<AppCatalog>>>,
}

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
        self.read().get(app_id).cloned()
    }

    /// Every app in the index.
    pub(crate) fn app_ids(&self) -> Vec<AppId> {
        self.read().keys().cloned().collect()
    }

    /// Reloads one app from the store (after a write) and swaps it in.
    pub(crate) async fn refresh(&self, store: &dyn MetadataStore, app_id: &AppId) -> StoreResult<()> {
        let catalog = store.load_catalog(app_id).await?;
        let mut catalogs = self.catalogs.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match catalog {
            Some(catalog) => catalogs.insert(app_id.clone(), Arc::new(catalog)),
            None => catalogs.remove(app_id),
        };
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<AppId, Arc<AppCatalog>>> {
        self.catalogs.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
