//! What the server's unit tests build a real store from: a fresh SQLite file with one app, and bundles that live
//! elsewhere (so nothing needs storage).

use std::sync::Arc;

use chrono::Utc;
use updraft_core::{App, AppId, BundleSource, BundleVersion, MetadataStore, NewBundle};
use updraft_store::SqlStore;

/// A migrated store on a fresh SQLite file with app `app_id`; returns the directory (keep it), the URL and the store.
pub(crate) async fn store_with_app(app_id: &str) -> (tempfile::TempDir, String, Arc<SqlStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("updraft.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let app = App {
        id: AppId::parse(app_id).unwrap(),
        name: "x".into(),
        public_key: None,
        default_channel: "production".into(),
        created_at: Utc::now(),
    };
    store.create_app(&app).await.unwrap();
    (dir, url, Arc::new(store))
}

/// Records Capgo bundle `version` of the app, served from an external URL.
pub(crate) async fn publish_external(store: &SqlStore, app_id: &str, version: &str) {
    let bundle = NewBundle {
        app_id: AppId::parse(app_id).unwrap(),
        version: BundleVersion::parse(version).unwrap(),
        checksum: "ab".repeat(32),
        crc32: None,
        encryption: None,
        min_update_version: None,
        source: BundleSource::External { url: format!("https://example.com/{version}.zip") },
        manifest: vec![],
        metadata: Default::default(),
    };
    store.insert_bundle(&bundle, None).await.unwrap();
}
