//! The `MetadataStore` story: one sequence of operations every implementation must get right. Runs on SQLite here.

use chrono::{SubsecRound, Utc};
use updraft_core::{
    ApiKeyRecord, ApiKeyScope, App, AppId, BundleSource, BundleVersion, ChannelName, ChannelUpdate,
    DeviceId, DeviceReport, MetadataStore, NewBundle, OverrideTarget, Platform, StoreError,
};
use updraft_store::SqliteStore;

fn new_bundle(app: &AppId, version: &str) -> NewBundle {
    NewBundle {
        app_id: app.clone(),
        version: BundleVersion::parse(version).unwrap(),
        checksum: "ab".repeat(32),
        crc32: Some("0badf00d".into()),
        encryption: None,
        min_update_version: None,
        source: BundleSource::Stored {
            object_key: format!("bundles/{version}.zip"),
            size_bytes: 42,
            sha256: "ab".repeat(32),
        },
    }
}

async fn story(store: &dyn MetadataStore) {
    let app_id = AppId::parse("com.example.story").unwrap();
    store
        .create_app(&App {
            id: app_id.clone(),
            name: "Story".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let again = store
        .create_app(&App {
            id: app_id.clone(),
            name: "Again".into(),
            created_at: Utc::now(),
        })
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.list_app_ids().await.unwrap(), vec![app_id.clone()]);

    // A bundle published with a channel creates the channel, pointing at the bundle.
    let production = ChannelName::parse("production").unwrap();
    let make_public = ChannelUpdate {
        public: Some(true),
        ..Default::default()
    };
    let first = store
        .insert_bundle(
            &new_bundle(&app_id, "1.0.0"),
            Some(&(production.clone(), make_public)),
        )
        .await
        .unwrap();
    let duplicate = store
        .insert_bundle(&new_bundle(&app_id, "1.0.0"), None)
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "{duplicate:?}"
    );
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    let channel = catalog.channel_by_name("production").unwrap();
    assert_eq!(channel.bundle_id, Some(first.id));
    assert!(channel.settings.public);
    assert_eq!(
        catalog.bundle_by_version("1.0.0").unwrap().crc32.as_deref(),
        Some("0badf00d")
    );

    // Channel upsert keeps unspecified fields and the target.
    let (updated, created) = store
        .upsert_channel(
            &app_id,
            &production,
            &ChannelUpdate {
                ios: Some(false),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert!(!created);
    assert!(updated.settings.public && !updated.settings.ios);
    assert_eq!(updated.bundle_id, Some(first.id));
    let beta = ChannelName::parse("beta").unwrap();
    let (beta_channel, created) = store
        .upsert_channel(&app_id, &beta, &ChannelUpdate::default(), Some(None))
        .await
        .unwrap();
    assert!(created && beta_channel.bundle_id.is_none() && !beta_channel.settings.public);

    // Overrides appear in the catalog and go away with their channel.
    let device = DeviceId::parse("AAAA-1").unwrap();
    store
        .set_device_override(
            &app_id,
            &device,
            &OverrideTarget {
                channel_id: Some(beta_channel.id),
                bundle_id: None,
            },
        )
        .await
        .unwrap();
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    assert_eq!(
        catalog.override_for(&device).unwrap().channel_id,
        Some(beta_channel.id)
    );
    store.delete_channel(&app_id, &beta).await.unwrap();
    assert!(matches!(
        store.delete_channel(&app_id, &beta).await,
        Err(StoreError::NotFound(_))
    ));
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    assert!(catalog.override_for(&device).is_none());
    assert!(
        !store
            .delete_device_override(&app_id, &device)
            .await
            .unwrap()
    );

    // Device reports upsert; an older report never overwrites a newer one.
    let report = |version: &str, seen_at| DeviceReport {
        app_id: app_id.clone(),
        device_id: device.clone(),
        platform: Platform::Ios,
        version_name: version.into(),
        version_build: "1.0.0".into(),
        version_code: "1".into(),
        version_os: "17".into(),
        plugin_version: "8.51.14".into(),
        custom_id: String::new(),
        is_prod: true,
        is_emulator: false,
        install_source: String::new(),
        default_channel: String::new(),
        key_id: String::new(),
        seen_at,
    };
    let now = Utc::now().trunc_subsecs(3);
    store
        .upsert_devices(&[
            report("1.0.1", now),
            report("1.0.0", now - chrono::Duration::seconds(5)),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get_device(&app_id, &device).await.unwrap(),
        Some(report("1.0.1", now))
    );
    store
        .upsert_devices(&[report("1.0.2", now + chrono::Duration::seconds(1))])
        .await
        .unwrap();
    let latest = store.get_device(&app_id, &device).await.unwrap().unwrap();
    assert_eq!(latest.version_name, "1.0.2");

    // API keys by id.
    let key = ApiKeyRecord {
        id: "k1".into(),
        name: "ci".into(),
        secret_sha256: "cd".repeat(32),
        scope: ApiKeyScope::App(app_id.clone()),
        created_at: Utc::now().trunc_subsecs(3),
    };
    store.insert_api_key(&key).await.unwrap();
    assert_eq!(store.find_api_key("k1").await.unwrap(), Some(key));
    assert_eq!(store.find_api_key("nope").await.unwrap(), None);
    assert!(
        store
            .load_catalog(&AppId::parse("com.example.none").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn sqlite_story() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("story.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    story(&store).await;
    // Migrating twice is a no-op.
    store.migrate().await.unwrap();
}

/// Every write is visible to the next read, whichever pooled connection serves it (WAL snapshots must not leak
/// between requests).
async fn reads_see_previous_writes(store: &dyn MetadataStore) {
    let app_id = AppId::parse("com.example.ryw").unwrap();
    store
        .create_app(&App {
            id: app_id.clone(),
            name: "RYW".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let name = ChannelName::parse("production").unwrap();
    for round in 0..200 {
        let ios = round % 2 == 0;
        store
            .upsert_channel(
                &app_id,
                &name,
                &ChannelUpdate {
                    ios: Some(ios),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
        let _ = store.find_api_key("nope").await.unwrap();
        let _ = store
            .get_device(&app_id, &DeviceId::parse("x").unwrap())
            .await
            .unwrap();
        let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
        assert_eq!(
            catalog.channel_by_name("production").unwrap().settings.ios,
            ios,
            "round {round}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_see_previous_writes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ryw.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    reads_see_previous_writes(&store).await;
}
