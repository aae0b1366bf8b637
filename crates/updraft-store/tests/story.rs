//! The `MetadataStore` story: one sequence of operations every implementation must get right, run on SQLite and on
//! a real PostgreSQL (`UPDRAFT_TEST_DATABASE_URL`, started by `tests/run.sh`; each test gets a fresh database).
//!
//! Together the stories call every trait method: `*_stories_call_every_store_method` runs them all on one store of
//! each database and fails, naming the method, when one is never called (see [`trait_methods`]).

mod databases;

use std::collections::{BTreeSet, HashMap};

use chrono::{SubsecRound, Utc};
use databases::{postgres, sqlite, views};
use updraft_core::ExpoPatch;
use updraft_core::{
    ApiKeyRecord, ApiKeyScope, App, AppId, BundleSource, BundleVersion, ChannelName, ChannelUpdate, DeviceId,
    DeviceReport, ExpoAsset, ExpoRelease, ExpoReleaseKind, ManifestEntry, MetadataStore, NewAuditRecord, NewBundle,
    OverrideTarget, Platform, Role, SigningKeyRecord, StoreError,
};
use updraft_store::SqlStore;

/// Two tests of one story: `$sqlite` on a fresh SQLite file, `$postgres` on a fresh PostgreSQL database.
macro_rules! on_both_databases {
    ($story:ident: $sqlite:ident, $postgres:ident) => {
        on_both_databases!(#[tokio::test] $story: $sqlite, $postgres);
    };
    (#[$test:meta] $story:ident: $sqlite:ident, $postgres:ident) => {
        #[$test]
        async fn $sqlite() {
            let (store, _dir) = sqlite().await;
            $story(&store).await;
        }

        #[$test]
        async fn $postgres() {
            $story(&postgres().await).await;
        }
    };
}

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
        manifest: vec![],
        metadata: Default::default(),
    }
}

async fn story(store: &dyn MetadataStore) {
    let app_id = AppId::parse("com.example.story").unwrap();
    store
        .create_app(&App {
            id: app_id.clone(),
            name: "Story".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let again = store
        .create_app(&App {
            id: app_id.clone(),
            name: "Again".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        })
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.list_app_ids().await.unwrap(), vec![app_id.clone()]);

    // A bundle published with a channel creates the channel, pointing at the bundle.
    let production = ChannelName::parse("production").unwrap();
    let make_public = ChannelUpdate { public: Some(true), ..Default::default() };
    let first =
        store.insert_bundle(&new_bundle(&app_id, "1.0.0"), Some(&(production.clone(), make_public))).await.unwrap();
    let duplicate = store.insert_bundle(&new_bundle(&app_id, "1.0.0"), None).await;
    assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "{duplicate:?}");
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    let channel = catalog.channel_by_name("production").unwrap();
    assert_eq!(channel.bundle_id, Some(first.id));
    assert!(channel.settings.public);
    assert_eq!(catalog.bundle_by_version("1.0.0").unwrap().crc32.as_deref(), Some("0badf00d"));

    // Channel upsert keeps unspecified fields and the target.
    let (updated, created) = store
        .upsert_channel(&app_id, &production, &ChannelUpdate { ios: Some(false), ..Default::default() }, None)
        .await
        .unwrap();
    assert!(!created);
    assert!(updated.settings.public && !updated.settings.ios);
    assert_eq!(updated.bundle_id, Some(first.id));
    let beta = ChannelName::parse("beta").unwrap();
    let (beta_channel, created) =
        store.upsert_channel(&app_id, &beta, &ChannelUpdate::default(), Some(None)).await.unwrap();
    assert!(created && beta_channel.bundle_id.is_none() && !beta_channel.settings.public);

    // Overrides appear in the catalog and go away with their channel.
    let device = DeviceId::parse("AAAA-1").unwrap();
    store
        .set_device_override(&app_id, &device, &OverrideTarget { channel_id: Some(beta_channel.id), bundle: None })
        .await
        .unwrap();
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    assert_eq!(catalog.override_for(&device).unwrap().channel_id, Some(beta_channel.id));
    store.delete_channel(&app_id, &beta).await.unwrap();
    assert!(matches!(store.delete_channel(&app_id, &beta).await, Err(StoreError::NotFound(_))));
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    assert!(catalog.override_for(&device).is_none());
    assert!(!store.delete_device_override(&app_id, &device).await.unwrap());

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
        .upsert_devices(&views(&[report("1.0.1", now), report("1.0.0", now - chrono::Duration::seconds(5))]))
        .await
        .unwrap();
    assert_eq!(store.get_device(&app_id, &device).await.unwrap(), Some(report("1.0.1", now)));
    store.upsert_devices(&views(&[report("1.0.2", now + chrono::Duration::seconds(1))])).await.unwrap();
    let latest = store.get_device(&app_id, &device).await.unwrap().unwrap();
    assert_eq!(latest.version_name, "1.0.2");

    // API keys by id.
    let key = ApiKeyRecord {
        id: "k1".into(),
        name: "ci".into(),
        secret_sha256: "cd".repeat(32),
        scope: ApiKeyScope::App(app_id.clone()),
        role: Role::Publish,
        channel: Some(ChannelName::parse("beta").unwrap()),
        created_at: Utc::now().trunc_subsecs(3),
        revoked_at: None,
    };
    store.insert_api_key(&key).await.unwrap();
    assert_eq!(store.find_api_key("k1").await.unwrap(), Some(key.clone()));
    assert_eq!(store.find_api_key("nope").await.unwrap(), None);
    let admin = ApiKeyRecord {
        id: "k2".into(),
        name: "ops".into(),
        secret_sha256: "ef".repeat(32),
        scope: ApiKeyScope::All,
        role: Role::Admin,
        channel: None,
        created_at: key.created_at + chrono::Duration::seconds(1),
        revoked_at: None,
    };
    store.insert_api_key(&admin).await.unwrap();
    assert_eq!(store.list_api_keys().await.unwrap(), vec![key.clone(), admin.clone()]);
    // Revoking keeps the record, marked; a second revocation changes nothing.
    let revoked_at = Utc::now().trunc_subsecs(3);
    assert!(store.revoke_api_key("k1", revoked_at).await.unwrap());
    assert!(!store.revoke_api_key("k1", revoked_at + chrono::Duration::seconds(9)).await.unwrap());
    assert!(!store.revoke_api_key("nope", revoked_at).await.unwrap());
    let found = store.find_api_key("k1").await.unwrap().unwrap();
    assert_eq!(found.revoked_at, Some(revoked_at));
    assert!(!found.is_active());
    assert!(store.find_api_key("k2").await.unwrap().unwrap().is_active());
    assert_eq!(store.list_api_keys().await.unwrap().len(), 2);
    assert!(store.load_catalog(&AppId::parse("com.example.none").unwrap()).await.unwrap().is_none());

    // The audit log: appended in order, read newest first, per app or for the whole installation.
    let record = |app: Option<&AppId>, action: &str, seconds: i64| NewAuditRecord {
        at: key.created_at + chrono::Duration::seconds(seconds),
        key_name: "ci".into(),
        app_id: app.cloned(),
        channel: app.map(|_| "beta".to_owned()),
        action: action.into(),
        before: app.map(|_| r#"{"bundle":"1.0.0"}"#.to_owned()),
        after: Some(r#"{"bundle":"1.0.1"}"#.into()),
    };
    store.insert_audit(&record(Some(&app_id), "channel.set", 1)).await.unwrap();
    store.insert_audit(&record(None, "apikey.create", 2)).await.unwrap();
    store.insert_audit(&record(Some(&app_id), "channel.delete", 3)).await.unwrap();
    let of_app = store.list_audit(Some(&app_id), 10).await.unwrap();
    let actions: Vec<&str> = of_app.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["channel.delete", "channel.set"]);
    assert!(of_app[0].id > of_app[1].id);
    let first = &of_app[1];
    let expected = record(Some(&app_id), "channel.set", 1);
    assert_eq!(
        (&first.at, &first.key_name, &first.app_id, &first.channel, &first.before, &first.after),
        (&expected.at, &expected.key_name, &expected.app_id, &expected.channel, &expected.before, &expected.after)
    );
    assert_eq!(store.list_audit(None, 10).await.unwrap().len(), 3);
    assert_eq!(store.list_audit(None, 1).await.unwrap()[0].action, "channel.delete");
}

/// Device listings (offset and cursor), bundle deletion, stats and failed versions, app keys.
async fn capgo_surface_story(store: &dyn MetadataStore) {
    let app_id = AppId::parse("com.example.surface").unwrap();
    let app = App {
        id: app_id.clone(),
        name: "S".into(),
        public_key: None,
        default_channel: "production".into(),
        created_at: Utc::now(),
    };
    store.create_app(&app).await.unwrap();
    store.set_app_public_key(&app_id, Some("-----BEGIN RSA PUBLIC KEY-----")).await.unwrap();
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    assert_eq!(catalog.app().public_key.as_deref(), Some("-----BEGIN RSA PUBLIC KEY-----"));
    assert!(matches!(
        store.set_app_public_key(&AppId::parse("com.example.none").unwrap(), None).await,
        Err(StoreError::NotFound(_))
    ));

    // 120 devices: offset pages and cursor pages see each exactly once.
    let base = Utc::now().trunc_subsecs(3);
    let reports: Vec<DeviceReport> = (0..120)
        .map(|n| DeviceReport {
            app_id: app_id.clone(),
            device_id: DeviceId::parse(&format!("dev-{n:03}")).unwrap(),
            platform: Platform::Android,
            version_name: if n % 2 == 0 { "1.0.0".into() } else { "1.0.1".into() },
            version_build: "1.0.0".into(),
            version_code: "1".into(),
            version_os: "14".into(),
            plugin_version: "8.51.14".into(),
            custom_id: String::new(),
            is_prod: true,
            is_emulator: false,
            install_source: String::new(),
            default_channel: String::new(),
            key_id: String::new(),
            seen_at: base + chrono::Duration::milliseconds(n / 3),
        })
        .collect();
    store.upsert_devices(&views(&reports)).await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for page in 0..3 {
        for device in store.list_devices(&app_id, page * 50, 50).await.unwrap() {
            assert!(seen.insert(device.device_id.as_str().to_owned()));
        }
    }
    assert_eq!(seen.len(), 120);
    for descending in [false, true] {
        let mut cursor: Option<updraft_core::DeviceCursor> = None;
        let mut walked = Vec::new();
        loop {
            let page = store.list_devices_after(&app_id, cursor.as_ref(), 50, descending).await.unwrap();
            let Some(last) = page.last() else { break };
            cursor = Some(updraft_core::DeviceCursor { updated_at: last.seen_at, device_id: last.device_id.clone() });
            walked.extend(page.into_iter().map(|d| d.device_id.as_str().to_owned()));
        }
        assert_eq!(walked.len(), 120, "descending={descending}");
        assert_eq!(walked.iter().collect::<std::collections::BTreeSet<_>>().len(), 120);
    }

    // Bundles sharing an object: deleting one keeps the object; deleting the last returns it as orphaned.
    let mut shared = new_bundle(&app_id, "1.0.0");
    shared.source =
        BundleSource::Stored { object_key: "bundles/shared.zip".into(), size_bytes: 1, sha256: "ab".repeat(32) };
    shared.manifest = vec![updraft_core::ManifestEntry {
        file_name: "index.html".into(),
        file_hash: "cd".repeat(32),
        object_key: "files/cd".into(),
        size_bytes: Some(3),
        br_size_bytes: Some(7),
    }];
    shared.metadata = updraft_core::BundleMetadata {
        link: Some("https://example.com/notes/1.0.0".into()),
        comment: Some("Fixes the \"login\" screen ✓".into()),
    };
    let first = store.insert_bundle(&shared, None).await.unwrap();
    let mut second_bundle = shared.clone();
    second_bundle.version = BundleVersion::parse("1.0.1").unwrap();
    let production = ChannelName::parse("production").unwrap();
    let second =
        store.insert_bundle(&second_bundle, Some(&(production.clone(), ChannelUpdate::default()))).await.unwrap();
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    assert_eq!(catalog.bundle(first.id).unwrap().manifest, shared.manifest);
    assert_eq!(catalog.bundle(first.id).unwrap().metadata, shared.metadata);
    assert_eq!(first.metadata, shared.metadata);
    assert_eq!(catalog.delta_file_size(&"cd".repeat(32)), Some(3));
    assert_eq!(catalog.delta_file_size(&"ef".repeat(32)), None);
    let linked = store.delete_bundle(&app_id, second.id).await;
    assert!(matches!(linked, Err(StoreError::Conflict(_))), "{linked:?}");
    assert_eq!(store.delete_bundle(&app_id, first.id).await.unwrap(), Vec::<String>::new());
    assert!(matches!(store.delete_bundle(&app_id, first.id).await, Err(StoreError::NotFound(_))));
    store.upsert_channel(&app_id, &production, &ChannelUpdate::default(), Some(None)).await.unwrap();
    let mut orphaned = store.delete_bundle(&app_id, second.id).await.unwrap();
    orphaned.sort();
    assert_eq!(orphaned, ["bundles/shared.zip", "files/cd"]);
    assert!(store.load_catalog(&app_id).await.unwrap().unwrap().bundle_by_version("1.0.1").is_none());
    // The version can be uploaded again once deleted.
    store.insert_bundle(&second_bundle, None).await.unwrap();

    // Stats: rollbacks and install failures mark the version failed for that device (not the bundle it runs, which
    // several failure reports name); devices per bundle follow set / update_fail / reset; counts per bundle.
    // Even devices last reported 1.0.0, odd ones 1.0.1.
    let received = Utc::now().trunc_subsecs(3);
    let event = |device: &str, action: &str, version: &str| updraft_core::StatsEvent {
        app_id: app_id.clone(),
        device_id: DeviceId::parse(device).unwrap(),
        action: action.into(),
        version_name: version.into(),
        old_version_name: String::new(),
        platform: "android".into(),
        plugin_version: "8.51.14".into(),
        received_at: received,
        occurred_at: received,
        metadata: vec![],
    };
    let mut crash = event("dev-007", "app_crash", "1.0.0");
    crash.occurred_at = received - chrono::Duration::hours(20);
    crash.metadata = vec![("exit_reason".into(), "crash \"native\"".into()), ("pss_kb".into(), "1024".into())];
    let changed = store
        .insert_stats(&[
            event("dev-000", "set", "1.0.1"),
            event("dev-001", "update_fail", "1.0.1"),
            event("dev-001", "update_fail", "1.0.1"),
            event("dev-002", "download_50", "1.0.1"),
            event("dev-003", "checksum_fail", "1.0.1"),
            event("dev-005", "checksum_fail", "1.0.0"),
            event("dev-004", "set", "1.0.0"),
            event("dev-004", "set", "1.0.1"),
            event("dev-004", "update_fail", "1.0.1"),
            event("dev-006", "set", "1.0.1"),
            event("dev-006", "reset", "1.0.0"),
            crash.clone(),
        ])
        .await
        .unwrap();
    assert_eq!(changed, std::slice::from_ref(&app_id));
    let repeated = store
        .insert_stats(&[event("dev-001", "update_fail", "1.0.1"), event("dev-003", "download_fail", "1.0.1")])
        .await
        .unwrap();
    assert_eq!(repeated, [], "nothing new failed");
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    let failed = |device: &str, version: &str| catalog.device_failed(&DeviceId::parse(device).unwrap(), version);
    assert!(failed("dev-001", "1.0.1") && failed("dev-004", "1.0.1") && failed("dev-005", "1.0.0"));
    assert!(!failed("dev-000", "1.0.1") && !failed("dev-003", "1.0.1"), "the running bundle is not blocked");
    let summary = store.stats_summary(&app_id, 3).await.unwrap();
    assert_eq!(summary.recent.len(), 3);
    let newest: Vec<&str> = summary.recent.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(newest, ["download_fail", "update_fail", "app_crash"]);
    let stored_crash = summary.recent.iter().find(|e| e.action == "app_crash").unwrap();
    assert_eq!(stored_crash.occurred_at, crash.occurred_at);
    assert_eq!(stored_crash.received_at, received);
    let mut metadata = stored_crash.metadata.clone();
    metadata.sort();
    assert_eq!(metadata, crash.metadata);
    let counts: Vec<(String, u64, u64, u64)> =
        summary.per_bundle.iter().map(|c| (c.version_name.clone(), c.devices, c.installs, c.failures)).collect();
    assert_eq!(counts, [("1.0.0".into(), 0, 1, 1), ("1.0.1".into(), 1, 3, 6)]);
}

/// Expo signing keys: several ids per app; an id that exists is replaced only when asked, and a replacement is
/// reported.
async fn signing_key_story(store: &dyn MetadataStore) {
    let app_id = AppId::parse("com.example.keys").unwrap();
    store
        .create_app(&App {
            id: app_id.clone(),
            name: "Keys".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(store.signing_keys(&app_id).await.unwrap(), vec![]);
    let key = |key_id: &str, pem: &str, certificate: Option<&str>| SigningKeyRecord {
        key_id: key_id.into(),
        private_key_pem: pem.into(),
        certificate_pem: certificate.map(str::to_owned),
        created_at: Utc::now().trunc_subsecs(3),
    };
    let main = key("main", "first", Some("certificate"));
    assert!(!store.put_signing_key(&app_id, &main, false).await.unwrap(), "nothing replaced");
    let taken = store.put_signing_key(&app_id, &key("main", "second", None), false).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let v2 = key("v2", "other", None);
    store.put_signing_key(&app_id, &v2, false).await.unwrap();
    assert_eq!(store.signing_keys(&app_id).await.unwrap(), vec![main.clone(), v2.clone()]);
    let replacement = key("main", "second", None);
    assert!(store.put_signing_key(&app_id, &replacement, true).await.unwrap(), "replaced");
    assert_eq!(store.signing_keys(&app_id).await.unwrap(), vec![replacement, v2]);
    // Replacing may also create.
    assert!(!store.put_signing_key(&app_id, &key("v3", "third", None), true).await.unwrap());
    assert_eq!(store.signing_keys(&app_id).await.unwrap().len(), 3);
}

on_both_databases!(signing_key_story: sqlite_signing_key_story, postgres_signing_key_story);

on_both_databases!(capgo_surface_story: sqlite_capgo_surface_story, postgres_capgo_surface_story);

#[tokio::test]
async fn sqlite_story() {
    let (store, _dir) = sqlite().await;
    story(&store).await;
    // Migrating twice is a no-op.
    store.migrate().await.unwrap();
}

#[tokio::test]
async fn postgres_story() {
    let store = postgres().await;
    story(&store).await;
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
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let name = ChannelName::parse("production").unwrap();
    for round in 0..200 {
        let ios = round % 2 == 0;
        store
            .upsert_channel(&app_id, &name, &ChannelUpdate { ios: Some(ios), ..Default::default() }, None)
            .await
            .unwrap();
        let _ = store.find_api_key("nope").await.unwrap();
        let _ = store.get_device(&app_id, &DeviceId::parse("x").unwrap()).await.unwrap();
        let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
        assert_eq!(catalog.channel_by_name("production").unwrap().settings.ios, ios, "round {round}");
    }
}

on_both_databases!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    reads_see_previous_writes: sqlite_reads_see_previous_writes, postgres_reads_see_previous_writes
);

/// Expo assets and releases, an app's default Expo channel, and what garbage collection must keep (signing keys are
/// `signing_key_story`).
async fn expo_story(store: &dyn MetadataStore) {
    let app_id = AppId::parse("com.example.expo").unwrap();
    let nobody = AppId::parse("com.example.none").unwrap();
    store
        .create_app(&App {
            id: app_id.clone(),
            name: "Expo".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    store.set_app_default_channel(&app_id, "staging").await.unwrap();
    assert_eq!(store.load_catalog(&app_id).await.unwrap().unwrap().app().default_channel, "staging");
    let missing_app = store.set_app_default_channel(&nobody, "staging").await;
    assert!(matches!(missing_app, Err(StoreError::NotFound(_))), "{missing_app:?}");

    // Assets are recorded once (a second upload keeps the first record) and looked up per app.
    let sha256 = |letter: char| letter.to_string().repeat(64);
    store.insert_expo_asset(&app_id, &sha256('a'), "md5-a", 10).await.unwrap();
    store.insert_expo_asset(&app_id, &sha256('a'), "md5-other", 11).await.unwrap();
    store.insert_expo_asset(&app_id, &sha256('b'), "md5-b", 20).await.unwrap();
    store.insert_expo_asset(&app_id, &sha256('c'), "md5-c", 30).await.unwrap();
    // More hashes than one statement takes (they are asked in chunks): the stored ones are found in any chunk.
    let mut asked: Vec<String> = (0..1200).map(|n| format!("{n:064x}")).collect();
    asked.extend([sha256('a'), sha256('b')]);
    let found = store.expo_asset_md5s(&app_id, &asked).await.unwrap();
    let expected: HashMap<String, String> =
        HashMap::from([(sha256('a'), "md5-a".into()), (sha256('b'), "md5-b".into())]);
    assert_eq!(found, expected);
    assert!(store.expo_asset_md5s(&nobody, &[sha256('a')]).await.unwrap().is_empty());

    // One publish records a release per platform; the catalog gives them back, oldest first, with the assets' MD5s.
    let launch = ExpoAsset { sha256: sha256('a'), md5: "md5-a".into(), ext: "hbc".into() };
    let image = ExpoAsset { sha256: sha256('b'), md5: "md5-b".into(), ext: "png".into() };
    let published_at = Utc::now().trunc_subsecs(3);
    let release = |id: &str, platform, created_at, kind| ExpoRelease {
        id: id.into(),
        group_id: format!("group-{id}"),
        app_id: app_id.clone(),
        channel: "production".into(),
        runtime_version: "1.0.0".into(),
        platform,
        created_at,
        message: "story".into(),
        kind,
    };
    let update = ExpoReleaseKind::Update {
        launch_asset: launch.clone(),
        assets: vec![image.clone()],
        expo_client: r#"{"name":"story"}"#.into(),
    };
    let ios = release("r-ios", Platform::Ios, published_at, update.clone());
    let android = release("r-android", Platform::Android, published_at + chrono::Duration::milliseconds(1), update);
    store.insert_expo_releases(&[ios.clone(), android.clone()]).await.unwrap();
    let rollback = release(
        "r-rollback",
        Platform::Ios,
        published_at + chrono::Duration::seconds(1),
        ExpoReleaseKind::RollBackToEmbedded,
    );
    // One transaction: a batch with a taken id records none of its releases.
    let later = release(
        "r-later",
        Platform::Ios,
        published_at + chrono::Duration::seconds(2),
        ExpoReleaseKind::RollBackToEmbedded,
    );
    let taken = store.insert_expo_releases(&[later.clone(), ios.clone()]).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    store.insert_expo_releases(std::slice::from_ref(&rollback)).await.unwrap();
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    assert_eq!(catalog.expo_releases(), [ios, android, rollback]);
    assert!(catalog.expo_release("r-later").is_none());

    // Garbage collection keeps the objects of live bundles (zip and delta files) and the assets releases name; the
    // objects of a deleted bundle and an asset no release names are not kept, and the asset can be forgotten.
    let mut bundle = NewBundle {
        source: BundleSource::Stored {
            object_key: "bundles/expo-story.zip".into(),
            size_bytes: 1,
            sha256: "ef".repeat(32),
        },
        ..new_bundle(&app_id, "1.0.0")
    };
    bundle.manifest = vec![ManifestEntry {
        file_name: "a.js".into(),
        file_hash: "12".repeat(32),
        object_key: "files/expo-a".into(),
        size_bytes: Some(2),
        br_size_bytes: None,
    }];
    let live = store.insert_bundle(&bundle, None).await.unwrap();
    bundle.version = BundleVersion::parse("1.0.1").unwrap();
    bundle.source =
        BundleSource::Stored { object_key: "bundles/expo-gone.zip".into(), size_bytes: 1, sha256: "fe".repeat(32) };
    bundle.manifest[0].object_key = "files/expo-gone".into();
    let gone = store.insert_bundle(&bundle, None).await.unwrap();
    store.delete_bundle(&app_id, gone.id).await.unwrap();
    let referenced = store.referenced_objects().await.unwrap();
    for key in ["bundles/expo-story.zip", "files/expo-a"] {
        assert!(referenced.object_keys.contains(key), "{key} is live: {:?}", referenced.object_keys);
    }
    for key in ["bundles/expo-gone.zip", "files/expo-gone"] {
        assert!(!referenced.object_keys.contains(key), "{key} is deleted: {:?}", referenced.object_keys);
    }
    assert!(referenced.expo_assets.contains(&(app_id.clone(), sha256('a'))), "the launch asset is named");
    assert!(referenced.expo_assets.contains(&(app_id.clone(), sha256('b'))), "the image is named");
    assert!(!referenced.expo_assets.contains(&(app_id.clone(), sha256('c'))), "no release names c");
    store.delete_expo_asset(&app_id, &sha256('c')).await.unwrap();
    assert!(store.expo_asset_md5s(&app_id, &[sha256('c')]).await.unwrap().is_empty());
    assert_eq!(store.expo_asset_md5s(&app_id, &[sha256('a')]).await.unwrap().len(), 1, "other assets stay");
    // Forgetting an asset that is not recorded is not an error (a repeated collection).
    store.delete_expo_asset(&app_id, &sha256('c')).await.unwrap();
    assert!(store.load_catalog(&app_id).await.unwrap().unwrap().bundle(live.id).is_some());
}

on_both_databases!(expo_story: sqlite_expo_story, postgres_expo_story);

/// A write-behind batch of thousands of reports (statements of every size each database uses: up to 64 rows on
/// SQLite, 1 024 on PostgreSQL), with several reports of some devices: every device gets one row, holding its newest
/// report, and an older report given after a newer one changes nothing.
async fn large_device_batch_story(store: &dyn MetadataStore) {
    let app_id = AppId::parse("com.example.fleet").unwrap();
    let app = App {
        id: app_id.clone(),
        name: "F".into(),
        public_key: None,
        default_channel: "production".into(),
        created_at: Utc::now(),
    };
    store.create_app(&app).await.unwrap();
    let base = Utc::now().trunc_subsecs(3);
    let report = |n: usize, version: usize, seconds: i64| DeviceReport {
        app_id: app_id.clone(),
        device_id: DeviceId::parse(&format!("fleet-{n:05}")).unwrap(),
        platform: Platform::Ios,
        version_name: format!("1.0.{version}"),
        version_build: "1.0.0".into(),
        version_code: "1".into(),
        version_os: "17".into(),
        plugin_version: "8.51.14".into(),
        custom_id: format!("{n}-{version}"),
        is_prod: true,
        is_emulator: false,
        install_source: String::new(),
        default_channel: String::new(),
        key_id: String::new(),
        seen_at: base + chrono::Duration::seconds(seconds),
    };
    // 3 001 devices (2 048 + 512 + 256 + ... + 1 rows on PostgreSQL); every third also reported twice more.
    let mut reports: Vec<DeviceReport> = (0..3001).map(|n| report(n, 0, 0)).collect();
    reports.extend((0..3001).step_by(3).map(|n| report(n, 2, 2)));
    reports.extend((0..3001).step_by(3).map(|n| report(n, 1, 1)));
    store.upsert_devices(&views(&reports)).await.unwrap();
    for n in [0, 1, 2, 63, 64, 1023, 1024, 2047, 2048, 2999, 3000] {
        let device = DeviceId::parse(&format!("fleet-{n:05}")).unwrap();
        let stored = store.get_device(&app_id, &device).await.unwrap().unwrap();
        let newest = if n % 3 == 0 { 2 } else { 0 };
        assert_eq!((stored.version_name, stored.custom_id), (format!("1.0.{newest}"), format!("{n}-{newest}")), "{n}");
    }
    let mut listed = 0;
    for page in 0..4 {
        listed += store.list_devices(&app_id, page * 1000, 1000).await.unwrap().len();
    }
    assert_eq!(listed, 3001, "one row per device");
}

on_both_databases!(large_device_batch_story: sqlite_large_device_batch_story, postgres_large_device_batch_story);

/// Rollouts: one per channel in the catalog; a start with the releases it publishes; halts, resumes and completions
/// conditional on the state the caller saw (of two halts, one wins and the other writes nothing); a completion
/// that points the channel at the candidate; a new rollout replacing a finished one but never an active one.
async fn rollout_story(store: &dyn MetadataStore) {
    use updraft_core::{
        Halt, HaltCause, HaltPolicy, HealthFigures, Rollout, RolloutChange, RolloutId, RolloutPercent, RolloutSpec,
        RolloutState, RolloutTarget, StableTarget, StoredRollout,
    };
    let app_id = AppId::parse("com.example.rollouts").unwrap();
    store
        .create_app(&App {
            id: app_id.clone(),
            name: "Rollouts".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let production = ChannelName::parse("production").unwrap();
    let stable = store
        .insert_bundle(&new_bundle(&app_id, "1.0.0"), Some(&(production.clone(), ChannelUpdate::default())))
        .await
        .unwrap();
    let candidate = store.insert_bundle(&new_bundle(&app_id, "1.1.0"), None).await.unwrap();
    let now = Utc::now().trunc_subsecs(3);
    // Each change a millisecond after the one before (the store tells changes apart by their time).
    let changes = std::cell::Cell::new(0);
    let change = |action: &str, reason: &str| {
        changes.set(changes.get() + 1);
        RolloutChange {
            action: action.into(),
            by: "release-bot".into(),
            at: now + chrono::Duration::milliseconds(changes.get()),
            reason: reason.into(),
        }
    };
    let spec = |id: &str, channel: &ChannelName, candidate, stable, percent: &str| RolloutSpec {
        id: RolloutId::parse(id).unwrap(),
        app_id: app_id.clone(),
        channel: channel.clone(),
        candidate,
        stable,
        percent: RolloutPercent::parse(percent).unwrap(),
        policy: HaltPolicy::new(0.025, 20).unwrap(),
    };
    let capgo = StoredRollout {
        rollout: Rollout::start(
            spec(
                "r-capgo",
                &production,
                RolloutTarget::CapgoBundle(BundleVersion::parse("1.1.0").unwrap()),
                StableTarget::CapgoBundle(BundleVersion::parse("1.0.0").unwrap()),
                "10",
            ),
            now,
        )
        .unwrap(),
        covers: vec![],
        last_change: change("start", "started at 10%"),
    };
    store.start_rollout(&capgo, &[]).await.unwrap();
    assert_eq!(store.rollouts(&app_id).await.unwrap(), std::slice::from_ref(&capgo));
    // No channel points at the candidate, but the rollout serves it: it cannot be deleted.
    let refused = store.delete_bundle(&app_id, candidate.id).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    assert_eq!(catalog.rollout("production"), Some(&capgo), "the catalog holds the channel's rollout");
    // Another active rollout on the channel is refused; the first stays.
    let second = StoredRollout {
        rollout: Rollout::start(
            spec(
                "r-second",
                &production,
                RolloutTarget::CapgoBundle(BundleVersion::parse("1.1.0").unwrap()),
                StableTarget::Builtin,
                "5",
            ),
            now,
        )
        .unwrap(),
        ..capgo.clone()
    };
    let refused = store.start_rollout(&second, &[]).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");

    // A change is written only over the rollout it was made from: one made from an older copy is refused.
    let raised = StoredRollout {
        rollout: capgo.rollout.set_percent(RolloutPercent::parse("50").unwrap()).unwrap(),
        last_change: change("set", "raised to 50%"),
        ..capgo.clone()
    };
    assert!(store.update_rollout(&raised, &capgo, &[], None).await.unwrap());
    let from_old_copy = StoredRollout {
        rollout: capgo.rollout.set_policy(HaltPolicy::new(0.5, 20).unwrap()).unwrap(),
        last_change: change("set", "max failure rate 0.5"),
        ..capgo.clone()
    };
    assert!(!store.update_rollout(&from_old_copy, &capgo, &[], None).await.unwrap(), "the 50% stays");
    assert_eq!(store.rollouts(&app_id).await.unwrap(), std::slice::from_ref(&raised));

    // Two halts of the same active rollout: one halts, the other learns it did not.
    let halt = Halt {
        reason: "6 of 50 devices failed".into(),
        at: now,
        by: HaltCause::Automatic,
        figures: Some(HealthFigures { devices: 50, failures: 6 }),
    };
    let id = capgo.rollout.id().clone();
    // The health rule halts only the rollout its figures were judged against.
    assert!(!store.halt_rollout(&app_id, &production, &id, &halt, &[], Some(&capgo)).await.unwrap(), "changed since");
    assert!(store.halt_rollout(&app_id, &production, &id, &halt, &[], Some(&raised)).await.unwrap());
    assert!(!store.halt_rollout(&app_id, &production, &id, &halt, &[], None).await.unwrap());
    let [halted] = store.rollouts(&app_id).await.unwrap().try_into().unwrap();
    assert_eq!(halted.rollout.state(), &RolloutState::Halted(halt.clone()));
    assert_eq!(halted.rollout.percent(), RolloutPercent::parse("50").unwrap());
    assert_eq!((halted.last_change.action.as_str(), halted.last_change.by.as_str()), ("halt", "automatic"));
    let unknown = RolloutId::parse("r-unknown").unwrap();
    assert!(!store.halt_rollout(&app_id, &production, &unknown, &halt, &[], None).await.unwrap());

    // Resumed, then completed: the channel now serves the candidate.
    let resumed = StoredRollout {
        rollout: halted.rollout.resume(now).unwrap(),
        last_change: change("resume", ""),
        ..halted.clone()
    };
    assert!(store.update_rollout(&resumed, &halted, &[], None).await.unwrap());
    let completed = StoredRollout {
        rollout: resumed.rollout.complete(now).unwrap(),
        last_change: change("complete", ""),
        ..resumed.clone()
    };
    assert!(store.update_rollout(&completed, &resumed, &[], Some(candidate.id)).await.unwrap());
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    assert_eq!(catalog.rollout("production"), Some(&completed));
    assert_eq!(catalog.channel_by_name("production").unwrap().bundle_id, Some(candidate.id), "was {}", stable.id);

    // A new rollout replaces the completed one; an Expo rollout starts with the releases it publishes, which are
    // recorded in the same transaction, and its halt records the releases that move devices back.
    let expo_channel = ChannelName::parse("expo-prod").unwrap();
    store.insert_expo_asset(&app_id, &"d".repeat(64), "md5-d", 1).await.unwrap();
    let release = |id: &str, group: &str, millis: i64| ExpoRelease {
        id: id.into(),
        group_id: group.into(),
        app_id: app_id.clone(),
        channel: "expo-prod".into(),
        runtime_version: "1.0.0 (7)".into(),
        platform: Platform::Ios,
        created_at: now + chrono::Duration::milliseconds(millis),
        message: String::new(),
        kind: ExpoReleaseKind::Update {
            launch_asset: ExpoAsset { sha256: "d".repeat(64), md5: "md5-d".into(), ext: "hbc".into() },
            assets: vec![],
            expo_client: "{}".into(),
        },
    };
    let expo = StoredRollout {
        rollout: Rollout::start(
            spec(
                "r-expo",
                &expo_channel,
                RolloutTarget::ExpoGroup("g-candidate".into()),
                StableTarget::ExpoPrevious,
                "12.5",
            ),
            now,
        )
        .unwrap(),
        covers: vec![(Platform::Ios, "1.0.0 (7)".into())],
        last_change: change("start", "published with its rollout"),
    };
    store.start_rollout(&expo, &[release("e-candidate", "g-candidate", 1)]).await.unwrap();
    let mint = release("e-back", "g-halt", 2);
    let operator =
        Halt { reason: "crash reports".into(), at: now, by: HaltCause::Operator("ci".into()), figures: None };
    assert!(
        store
            .halt_rollout(&app_id, &expo_channel, expo.rollout.id(), &operator, std::slice::from_ref(&mint), None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .halt_rollout(&app_id, &expo_channel, expo.rollout.id(), &operator, &[release("e-twice", "g-x", 3)], None)
            .await
            .unwrap()
    );
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    let ids: Vec<&str> = catalog.expo_releases().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["e-candidate", "e-back"], "the losing halt minted nothing");
    let stored = catalog.rollout("expo-prod").unwrap();
    assert_eq!(stored.covers, expo.covers);
    assert!(stored.covers(Platform::Ios, "1.0.0 (7)") && !stored.covers(Platform::Android, "1.0.0 (7)"));
    assert_eq!(stored.rollout.state(), &RolloutState::Halted(operator));
    let restarted = StoredRollout {
        rollout: Rollout::start(
            spec("r-expo-2", &expo_channel, RolloutTarget::ExpoGroup("g-fix".into()), StableTarget::ExpoPrevious, "1"),
            now,
        )
        .unwrap(),
        ..expo.clone()
    };
    store.start_rollout(&restarted, &[]).await.unwrap();
    assert_eq!(store.rollouts(&app_id).await.unwrap().len(), 2, "one per channel");
    assert_eq!(store.load_catalog(&app_id).await.unwrap().unwrap().rollout("expo-prod"), Some(&restarted));
    // Deleting a channel deletes its rollout: a channel made again under that name starts without it.
    store.delete_channel(&app_id, &production).await.unwrap();
    let left = store.rollouts(&app_id).await.unwrap();
    assert_eq!(left.iter().map(|r| r.rollout.channel().as_str()).collect::<Vec<_>>(), ["expo-prod"]);
}

on_both_databases!(rollout_story: sqlite_rollout_story, postgres_rollout_story);

/// Release health (issue #14, part B): rows from the write-behind and from stats events count distinct devices per
/// release and channel; a rollout's figures count only what happened since its health window opened; halts are
/// recorded and listed newest first.
async fn release_health_story(store: &dyn MetadataStore) {
    use chrono::TimeDelta;
    use updraft_core::{HaltRecord, HealthFigures, HealthProtocol, ReleaseDeviceRow, StatsEvent};
    let app_id = AppId::parse("com.example.health").unwrap();
    let app = App {
        id: app_id.clone(),
        name: "H".into(),
        public_key: None,
        default_channel: "production".into(),
        created_at: Utc::now(),
    };
    store.create_app(&app).await.unwrap();
    let t0 = Utc::now().trunc_subsecs(3) - TimeDelta::minutes(10);
    let at = |minutes: i64| t0 + TimeDelta::minutes(minutes);
    let row = |device: &str, release: &str, offered: Option<i64>, running: Option<i64>, failed: Option<i64>| {
        ReleaseDeviceRow {
            app_id: app_id.clone(),
            release_id: release.into(),
            device_id: DeviceId::parse(device).unwrap(),
            protocol: HealthProtocol::Capgo,
            group_id: release.into(),
            channel: if offered.is_some() { "production".into() } else { String::new() },
            offered_at: offered.map(at),
            running_at: running.map(at),
            failed_at: failed.map(at),
            failure: if failed.is_some() { "update_fail".into() } else { String::new() },
            seen_at: at([offered, running, failed].into_iter().flatten().max().unwrap()),
        }
    };
    // Ten devices offered 1.0.1, six run it; the same rows again (another instance, a repeat) change no count.
    let mut rows: Vec<ReleaseDeviceRow> =
        (0..10).map(|n| row(&format!("d{n}"), "1.0.1", Some(0), None, None)).collect();
    rows.extend((0..6).map(|n| row(&format!("d{n}"), "1.0.1", None, Some(2), None)).collect::<Vec<_>>());
    for _ in 0..2 {
        for chunk in rows.chunks(7) {
            let mut merged: Vec<ReleaseDeviceRow> = Vec::new();
            for r in chunk {
                match merged.iter_mut().find(|m| m.device_id == r.device_id) {
                    Some(m) => m.absorb(r.clone()),
                    None => merged.push(r.clone()),
                }
            }
            store.upsert_release_devices(&merged).await.unwrap();
        }
    }
    store.upsert_release_devices(&[]).await.unwrap();
    // Stats: d6 installs it (set), d7 rolls back from it (update_fail), d8 reports low memory (not a failure).
    let event = |device: &str, action: &str| StatsEvent {
        app_id: app_id.clone(),
        device_id: DeviceId::parse(device).unwrap(),
        action: action.into(),
        version_name: "1.0.1".into(),
        old_version_name: String::new(),
        platform: "android".into(),
        plugin_version: "8.51.14".into(),
        received_at: at(5),
        occurred_at: at(5),
        metadata: vec![],
    };
    store.insert_stats(&[event("d6", "set"), event("d7", "update_fail"), event("d8", "low_mem_fail")]).await.unwrap();
    // A failure that was recorded already keeps its first time; a later run does not clear it.
    store.upsert_release_devices(&[row("d7", "1.0.1", None, Some(9), Some(9))]).await.unwrap();
    let health = store.release_health(&app_id, None).await.unwrap();
    assert_eq!(health.len(), 1, "{health:?}");
    let h = &health[0];
    assert_eq!((h.channel.as_str(), h.release_id.as_str(), h.protocol), ("production", "1.0.1", HealthProtocol::Capgo));
    assert_eq!((h.offered, h.running, h.failed, h.devices), (10, 8, 1, 8));
    assert_eq!(h.first_offered_at, Some(at(0)));
    assert_eq!(h.last_failed_at, Some(at(5)), "the first failure of d7 (the stats event) is kept");
    assert!(store.release_health(&app_id, Some("beta")).await.unwrap().is_empty());
    assert_eq!(store.release_health(&app_id, Some("production")).await.unwrap(), health);
    // Figures since the start, and since after the failure (a resumed rollout's window).
    let figures = store.rollout_figures(&app_id, "production", "1.0.1", at(-1)).await.unwrap();
    assert_eq!(figures, HealthFigures { devices: 8, failures: 1 });
    let later = store.rollout_figures(&app_id, "production", "1.0.1", at(6)).await.unwrap();
    assert_eq!(later, HealthFigures { devices: 1, failures: 0 }, "only d7 ran it since, and failed before");
    assert_eq!(store.rollout_figures(&app_id, "beta", "1.0.1", at(-1)).await.unwrap(), HealthFigures::default());
    // Halts.
    let halt = |minutes: i64, by: &str| HaltRecord {
        app_id: app_id.clone(),
        channel: "production".into(),
        rollout_id: "r1".into(),
        candidate: "1.0.1".into(),
        halted_at: at(minutes),
        halted_by: by.into(),
        instance: "i-1".into(),
        reason: "6 of 50 devices failed".into(),
        figures: HealthFigures { devices: 50, failures: 6 },
        failure_rate: 0.12,
        lower_bound: 0.056_123,
        max_failure_rate: 0.05,
        min_devices: 50,
    };
    store.insert_rollout_halt(&halt(7, "automatic")).await.unwrap();
    store.insert_rollout_halt(&halt(8, "operator:ci")).await.unwrap();
    let halts = store.rollout_halts(&app_id, Some("production")).await.unwrap();
    assert_eq!(halts, vec![halt(8, "operator:ci"), halt(7, "automatic")]);
    assert!(store.rollout_halts(&app_id, Some("beta")).await.unwrap().is_empty());
    assert_eq!(store.rollout_halts(&app_id, None).await.unwrap().len(), 2);
    // A row whose only change would be its last-seen time is rewritten only once that time is older than
    // LAST_SEEN_RESOLUTION (five minutes); what it records (a run, a first offer, a new channel) is written at once.
    let last_seen = |health: Vec<updraft_core::ReleaseHealth>| {
        let h = health.into_iter().find(|h| h.release_id == "1.0.2").expect("a row of 1.0.2");
        (h.channel, h.offered, h.running, h.last_seen_at)
    };
    let seen_of = || async { last_seen(store.release_health(&app_id, None).await.unwrap()) };
    store.upsert_release_devices(&[row("s1", "1.0.2", Some(0), None, None)]).await.unwrap();
    store.upsert_release_devices(&[row("s1", "1.0.2", Some(3), None, None)]).await.unwrap();
    assert_eq!(seen_of().await, ("production".into(), 1, 0, Some(at(0))), "offered again 3 min later: left alone");
    store.upsert_release_devices(&[row("s1", "1.0.2", Some(6), None, None)]).await.unwrap();
    assert_eq!(seen_of().await, ("production".into(), 1, 0, Some(at(6))), "6 min later: seen again");
    store.upsert_release_devices(&[row("s1", "1.0.2", None, Some(7), None)]).await.unwrap();
    assert_eq!(seen_of().await, ("production".into(), 1, 1, Some(at(7))), "a run is written at once");
    let mut moved = row("s1", "1.0.2", Some(8), None, None);
    moved.channel = "beta".into();
    store.upsert_release_devices(&[moved]).await.unwrap();
    assert_eq!(seen_of().await, ("beta".into(), 1, 1, Some(at(8))), "a new channel is written at once");
}

on_both_databases!(release_health_story: sqlite_release_health_story, postgres_release_health_story);

/// bsdiff patches: recorded once per (app, base, target), the first record winning; "not worth sending" is
/// recorded too, so it is not computed again.
async fn expo_patch_story(store: &dyn MetadataStore) {
    let app_id = AppId::parse("com.example.patches").unwrap();
    let other = AppId::parse("com.example.other").unwrap();
    let sha256 = |letter: char| letter.to_string().repeat(64);
    assert_eq!(store.expo_patch(&app_id, &sha256('a'), &sha256('b')).await.unwrap(), None);
    let patch = ExpoPatch {
        base_sha256: sha256('a'),
        target_sha256: sha256('b'),
        patch_sha256: Some(sha256('p')),
        patch_size: 1234,
    };
    store.record_expo_patch(&app_id, &patch).await.unwrap();
    let again = ExpoPatch { patch_sha256: Some(sha256('q')), patch_size: 99, ..patch.clone() };
    store.record_expo_patch(&app_id, &again).await.unwrap();
    assert_eq!(store.expo_patch(&app_id, &sha256('a'), &sha256('b')).await.unwrap(), Some(patch.clone()));
    assert_eq!(store.expo_patch(&app_id, &sha256('b'), &sha256('a')).await.unwrap(), None, "a patch has a direction");
    assert_eq!(store.expo_patch(&other, &sha256('a'), &sha256('b')).await.unwrap(), None, "per app");
    let useless =
        ExpoPatch { base_sha256: sha256('c'), target_sha256: sha256('b'), patch_sha256: None, patch_size: 5000 };
    store.record_expo_patch(&app_id, &useless).await.unwrap();
    assert_eq!(store.expo_patch(&app_id, &sha256('c'), &sha256('b')).await.unwrap(), Some(useless));
}

on_both_databases!(expo_patch_story: sqlite_expo_patch_story, postgres_expo_patch_story);

/// Delta files recorded before brotli copies existed: listed once per object key in pages, then given their sizes on
/// every row naming them (an existing `size_bytes` is kept), after which they are no longer listed.
async fn delta_sizes_story(store: &dyn MetadataStore) {
    let app_id = AppId::parse("com.example.deltasizes").unwrap();
    store
        .create_app(&App {
            id: app_id.clone(),
            name: "Delta sizes".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let entry = |name: &str, key: &str, size: Option<u64>, br: Option<u64>| ManifestEntry {
        file_name: name.into(),
        file_hash: "aa".repeat(32),
        object_key: key.into(),
        size_bytes: size,
        br_size_bytes: br,
    };
    let mut old = new_bundle(&app_id, "1.0.0");
    old.manifest = vec![
        entry("a.js", "files/ds/a", None, None),
        entry("b.js", "files/ds/b", Some(20), None),
        entry("c.js", "files/ds/c", Some(30), Some(9)),
    ];
    let first = store.insert_bundle(&old, None).await.unwrap();
    let mut again = old.clone();
    again.version = BundleVersion::parse("1.0.1").unwrap();
    again.manifest.truncate(1);
    let second = store.insert_bundle(&again, None).await.unwrap();
    // Other stories share the database: only this app's keys (all under `files/ds/`) are looked at.
    let listed = |after: &'static str| async move {
        let page = store.delta_files_without_br_size(after, 10).await.unwrap();
        page.into_iter().filter(|key| key.starts_with("files/ds/")).collect::<Vec<_>>()
    };
    assert_eq!(store.delta_files_without_br_size("files/ds/", 1).await.unwrap(), ["files/ds/a"], "in pages");
    assert_eq!(listed("files/ds/").await, ["files/ds/a", "files/ds/b"], "each key once");
    assert_eq!(listed("files/ds/a").await, ["files/ds/b"]);
    assert_eq!(store.set_delta_file_sizes("files/ds/a", 100, 40).await.unwrap(), 2, "both bundles' rows");
    assert_eq!(store.set_delta_file_sizes("files/ds/b", 999, 8).await.unwrap(), 1);
    assert_eq!(store.set_delta_file_sizes("files/ds/b", 999, 8).await.unwrap(), 0, "idempotent");
    assert!(listed("files/ds/").await.is_empty());
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    let sizes = |id: i64| -> Vec<(Option<u64>, Option<u64>)> {
        catalog.bundle(id).unwrap().manifest.iter().map(|e| (e.size_bytes, e.br_size_bytes)).collect()
    };
    assert_eq!(sizes(first.id), [(Some(100), Some(40)), (Some(20), Some(8)), (Some(30), Some(9))]);
    assert_eq!(sizes(second.id), [(Some(100), Some(40))]);
}

on_both_databases!(delta_sizes_story: sqlite_delta_sizes_story, postgres_delta_sizes_story);

/// Every story on one store, then: each `MetadataStore` method was called, and counted under its own name (so the
/// `/metrics` read and write counters miss none).
async fn stories_call_every_store_method(store: &SqlStore) {
    story(store).await;
    capgo_surface_story(store).await;
    signing_key_story(store).await;
    expo_story(store).await;
    expo_patch_story(store).await;
    delta_sizes_story(store).await;
    rollout_story(store).await;
    release_health_story(store).await;
    device_rows_age_out_story(store).await;
    let calls = store.calls();
    let called = calls.by_method();
    let methods = trait_methods();
    let never_called: Vec<&str> = methods.iter().copied().filter(|method| !called.contains_key(method)).collect();
    assert!(never_called.is_empty(), "no store story calls {never_called:?}: cover them in tests/story.rs");
    let not_methods: Vec<&str> = called.keys().copied().filter(|name| !methods.contains(name)).collect();
    assert!(not_methods.is_empty(), "calls counted under names that are not trait methods: {not_methods:?}");
    assert_eq!(calls.reads() + calls.writes(), called.values().sum::<u64>());
}

/// The names of the `MetadataStore` methods, read from the trait's source: a guard that needs no list kept by hand,
/// so a method added to the trait fails `*_stories_call_every_store_method` until a story calls it. Reading source
/// text is crude but enough here: the trait's methods are exactly its `async fn` lines.
fn trait_methods() -> BTreeSet<&'static str> {
    const SOURCE: &str = include_str!("../../updraft-core/src/store.rs");
    let (_, body) = SOURCE.split_once("pub trait MetadataStore").expect("updraft-core/src/store.rs has the trait");
    let (body, _) = body.split_once("\n}\n").expect("the trait ends with a closing brace on its own line");
    let methods: BTreeSet<&str> =
        body.split("async fn ").skip(1).map(|rest| rest.split_once('(').expect("a method has arguments").0).collect();
    assert!(methods.contains("create_app") && methods.contains("load_catalog"), "parsed {methods:?}");
    methods
}

on_both_databases!(
    stories_call_every_store_method: sqlite_stories_call_every_store_method, postgres_stories_call_every_store_method
);

/// Failed versions are the one kind of catalog row an unauthenticated caller creates (any device can report a
/// rollback), so each device keeps at most `MAX_FAILED_VERSIONS_PER_DEVICE` and each app at most
/// `MAX_FAILED_VERSIONS_PER_APP`, the oldest aged out first.
async fn failed_versions_age_out_story(store: &dyn MetadataStore) {
    let app_id = AppId::parse("com.example.flood").unwrap();
    store
        .create_app(&App {
            id: app_id.clone(),
            name: "Flood".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let start = Utc::now().trunc_subsecs(3) - chrono::Duration::hours(1);
    let event = |device: &str, version: String, seconds: i64| updraft_core::StatsEvent {
        app_id: app_id.clone(),
        device_id: DeviceId::parse(device).unwrap(),
        action: "update_fail".into(),
        version_name: version,
        old_version_name: String::new(),
        platform: "android".into(),
        plugin_version: "8.51.14".into(),
        received_at: start + chrono::Duration::seconds(seconds),
        occurred_at: start + chrono::Duration::seconds(seconds),
        metadata: vec![],
    };
    let per_device = updraft_core::MAX_FAILED_VERSIONS_PER_DEVICE as i64;
    let events: Vec<_> = (0..per_device + 4).map(|n| event("dev-one", format!("1.0.{n}"), n)).collect();
    store.insert_stats(&events).await.unwrap();
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    let device = DeviceId::parse("dev-one").unwrap();
    let kept: Vec<i64> = (0..per_device + 4).filter(|n| catalog.device_failed(&device, &format!("1.0.{n}"))).collect();
    assert_eq!(kept, (4..per_device + 4).collect::<Vec<_>>(), "the newest failures of the device are kept");
    // Past the per-app cap, the oldest rows of the app go, whichever device they belong to.
    let per_app = updraft_core::MAX_FAILED_VERSIONS_PER_APP as i64;
    let flood: Vec<_> = (0..per_app).map(|n| event(&format!("rnd-{n}"), "9.9.9".into(), 1000 + n)).collect();
    for chunk in flood.chunks(5000) {
        store.insert_stats(chunk).await.unwrap();
    }
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    assert!(!catalog.device_failed(&device, &format!("1.0.{}", per_device + 3)), "the oldest rows were aged out");
    assert!(catalog.device_failed(&DeviceId::parse(&format!("rnd-{}", per_app - 1)).unwrap(), "9.9.9"));
    assert!(catalog.device_failed(&DeviceId::parse("rnd-0").unwrap(), "9.9.9"));
}

on_both_databases!(failed_versions_age_out_story: sqlite_failed_versions_age_out_story, postgres_failed_versions_age_out_story);

/// The rows any device can create (reports, installs, release health, stats events) are found by when they were
/// last seen: `device_rows_cutoff` marks the row past an app's newest rows, `delete_device_rows` deletes an app's
/// rows at or before a mark (a time, and a key between rows seen at once) in batches, least recently seen first,
/// and never another app's.
async fn device_rows_age_out_story(store: &dyn MetadataStore) {
    use chrono::TimeDelta;
    use updraft_core::{DeviceRowMark, DeviceTable, HealthProtocol, ReleaseDeviceRow, StatsEvent};
    let seen = |mark: Option<DeviceRowMark>| mark.map(|m| m.seen_at);
    let app_id = AppId::parse("com.example.ageing").unwrap();
    let other = AppId::parse("com.example.other").unwrap();
    for id in [&app_id, &other] {
        let app = App {
            id: id.clone(),
            name: "A".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: Utc::now(),
        };
        store.create_app(&app).await.unwrap();
    }
    let t0 = Utc::now().trunc_subsecs(3) - TimeDelta::hours(2);
    let at = |n: i64| t0 + TimeDelta::minutes(n);
    let device = |n: i64| DeviceId::parse(&format!("dev-{n:02}")).unwrap();
    let report = |app: &AppId, n: i64| DeviceReport {
        app_id: app.clone(),
        device_id: device(n),
        platform: Platform::Android,
        version_name: "1.0.0".into(),
        version_build: "1.0.0".into(),
        version_code: "1".into(),
        version_os: "14".into(),
        plugin_version: "8.51.14".into(),
        custom_id: String::new(),
        is_prod: true,
        is_emulator: false,
        install_source: String::new(),
        default_channel: String::new(),
        key_id: String::new(),
        seen_at: at(n),
    };
    // Fifteen devices of the app, seen a minute apart, and one of another app seen first of all.
    let mut reports: Vec<DeviceReport> = (0..15).map(|n| report(&app_id, n)).collect();
    reports.push(DeviceReport { seen_at: at(-1), ..report(&other, 99) });
    store.upsert_devices(&views(&reports)).await.unwrap();
    let table = DeviceTable::Devices;
    assert_eq!(store.device_rows_cutoff(table, &app_id, 15).await.unwrap(), None, "15 rows fit a cap of 15");
    assert_eq!(store.device_rows_cutoff(table, &app_id, 100).await.unwrap(), None);
    assert_eq!(seen(store.device_rows_cutoff(table, &app_id, 10).await.unwrap()), Some(at(4)), "the 11th newest row");
    assert_eq!(seen(store.device_rows_cutoff(table, &app_id, 0).await.unwrap()), Some(at(14)));
    // Deleting through the cut-off goes oldest first, a batch at a time, and leaves the ten newest.
    assert_eq!(store.delete_device_rows(table, &app_id, &DeviceRowMark::at(at(4)), 3).await.unwrap(), 3);
    assert_eq!(store.get_device(&app_id, &device(2)).await.unwrap(), None, "the oldest went first");
    assert!(store.get_device(&app_id, &device(3)).await.unwrap().is_some(), "the batch stopped at its limit");
    assert_eq!(store.delete_device_rows(table, &app_id, &DeviceRowMark::at(at(4)), 100).await.unwrap(), 2);
    assert_eq!(store.delete_device_rows(table, &app_id, &DeviceRowMark::at(at(4)), 100).await.unwrap(), 0);
    let kept: Vec<String> =
        store.list_devices(&app_id, 0, 100).await.unwrap().iter().map(|r| r.device_id.as_str().to_owned()).collect();
    assert_eq!(kept, (5..15).rev().map(|n| device(n).as_str().to_owned()).collect::<Vec<_>>());
    assert_eq!(store.device_rows_cutoff(table, &app_id, 10).await.unwrap(), None);
    // A device seen again after the cut-off was computed is newer than it, so it stays.
    store.upsert_devices(&views(&[DeviceReport { seen_at: at(30), ..report(&app_id, 5) }])).await.unwrap();
    assert_eq!(store.delete_device_rows(table, &app_id, &DeviceRowMark::at(at(5)), 100).await.unwrap(), 0);
    assert!(store.get_device(&app_id, &device(5)).await.unwrap().is_some());
    // The other app's device is older than all of them, yet untouched.
    assert!(store.get_device(&other, &device(99)).await.unwrap().is_some());
    assert_eq!(store.delete_device_rows(table, &other, &DeviceRowMark::at(at(-1)), 100).await.unwrap(), 1);
    assert!(store.list_devices(&other, 0, 100).await.unwrap().is_empty());

    // Release health: one row per release a device met, counted per release.
    let health = |device_n: i64, release: &str, minute: i64| ReleaseDeviceRow {
        app_id: app_id.clone(),
        release_id: release.into(),
        device_id: device(device_n),
        protocol: HealthProtocol::Capgo,
        group_id: release.into(),
        channel: "production".into(),
        offered_at: Some(at(minute)),
        running_at: None,
        failed_at: None,
        failure: String::new(),
        seen_at: at(minute),
    };
    let rows: Vec<ReleaseDeviceRow> =
        (0..6).map(|n| health(n, "1.0.1", n)).chain((0..6).map(|n| health(n, "1.0.2", 10 + n))).collect();
    store.upsert_release_devices(&rows).await.unwrap();
    let offered = |releases: &[updraft_core::ReleaseHealth], release: &str| {
        releases.iter().find(|r| r.release_id == release).map_or(0, |r| r.offered)
    };
    let table = DeviceTable::ReleaseDevices;
    assert_eq!(seen(store.device_rows_cutoff(table, &app_id, 6).await.unwrap()), Some(at(5)));
    assert_eq!(store.delete_device_rows(table, &app_id, &DeviceRowMark::at(at(5)), 4).await.unwrap(), 4);
    assert_eq!(store.delete_device_rows(table, &app_id, &DeviceRowMark::at(at(5)), 4).await.unwrap(), 2);
    let releases = store.release_health(&app_id, None).await.unwrap();
    assert_eq!((offered(&releases, "1.0.1"), offered(&releases, "1.0.2")), (0, 6), "the older release's rows went");

    // Stats events and the installs they record: retention is by when the gateway received an event, and by
    // when a device installed what it runs.
    let event = |device_n: i64, minute: i64| StatsEvent {
        app_id: app_id.clone(),
        device_id: device(device_n),
        action: "set".into(),
        version_name: format!("2.0.{device_n}"),
        old_version_name: String::new(),
        platform: "android".into(),
        plugin_version: "8.51.14".into(),
        received_at: at(minute),
        occurred_at: at(minute),
        metadata: vec![],
    };
    store.insert_stats(&(0..8).map(|n| event(n, 20 + n)).collect::<Vec<_>>()).await.unwrap();
    let summary = store.stats_summary(&app_id, 100).await.unwrap();
    assert_eq!(summary.recent.len(), 8);
    assert_eq!(summary.per_bundle.iter().map(|b| b.devices).sum::<u64>(), 8);
    let table = DeviceTable::StatsEvents;
    let table_events = table;
    assert_eq!(seen(store.device_rows_cutoff(table, &app_id, 5).await.unwrap()), Some(at(22)));
    assert_eq!(store.delete_device_rows(table, &app_id, &DeviceRowMark::at(at(22)), 100).await.unwrap(), 3);
    let table = DeviceTable::DeviceInstalls;
    assert_eq!(seen(store.device_rows_cutoff(table, &app_id, 7).await.unwrap()), Some(at(20)));
    assert_eq!(store.delete_device_rows(table, &app_id, &DeviceRowMark::at(at(20)), 100).await.unwrap(), 1);
    let summary = store.stats_summary(&app_id, 100).await.unwrap();
    let oldest: Vec<&str> = summary.recent.iter().map(|e| e.device_id.as_str()).rev().take(1).collect();
    assert_eq!((summary.recent.len(), oldest), (5, vec!["dev-03"]), "the three oldest events went");
    let devices: Vec<(String, u64)> =
        summary.per_bundle.iter().filter(|b| b.devices > 0).map(|b| (b.version_name.clone(), b.devices)).collect();
    assert_eq!(devices.len(), 7, "the oldest install went: {devices:?}");
    assert!(devices.iter().all(|(version, _)| version != "2.0.0"));
    // Events received at one instant (a batch) are cut between their keys: exactly the excess goes.
    let batch: Vec<StatsEvent> = (0..8).map(|n| StatsEvent { received_at: at(40), ..event(n, 40) }).collect();
    store.insert_stats(&batch).await.unwrap();
    let cutoff = store.device_rows_cutoff(table_events, &app_id, 6).await.unwrap().expect("13 events, keep 6");
    assert_eq!((cutoff.seen_at, cutoff.key.len()), (at(40), 1));
    assert_eq!(store.delete_device_rows(table_events, &app_id, &cutoff, 4).await.unwrap(), 4);
    assert_eq!(store.delete_device_rows(table_events, &app_id, &cutoff, 4).await.unwrap(), 3);
    assert_eq!(store.device_rows_cutoff(table_events, &app_id, 6).await.unwrap(), None);
    let summary = store.stats_summary(&app_id, 100).await.unwrap();
    let kept: Vec<&str> = summary.recent.iter().map(|e| e.device_id.as_str()).collect();
    assert_eq!(kept, ["dev-07", "dev-06", "dev-05", "dev-04", "dev-03", "dev-02"], "the batch's last six stay");
    let bad = DeviceRowMark { seen_at: at(40), key: vec!["a".into(), "b".into()] };
    assert!(store.delete_device_rows(table_events, &app_id, &bad, 4).await.is_err(), "a mark of another table");
    // Devices seen at one instant too, cut by device id.
    store
        .upsert_devices(&views(
            &(20..26).map(|n| DeviceReport { seen_at: at(50), ..report(&app_id, n) }).collect::<Vec<_>>(),
        ))
        .await
        .unwrap();
    let cutoff = store.device_rows_cutoff(DeviceTable::Devices, &app_id, 3).await.unwrap().expect("16 devices");
    assert_eq!(cutoff.key, ["dev-22"]);
    assert_eq!(store.delete_device_rows(DeviceTable::Devices, &app_id, &cutoff, 100).await.unwrap(), 13);
    let kept: Vec<String> =
        store.list_devices(&app_id, 0, 100).await.unwrap().iter().map(|r| r.device_id.as_str().to_owned()).collect();
    assert_eq!(kept, ["dev-25", "dev-24", "dev-23"]);
    // Release-health rows of one instant, cut by device then release.
    let rows: Vec<ReleaseDeviceRow> = (0..3).flat_map(|n| [health(n, "3.0.0", 60), health(n, "3.0.1", 60)]).collect();
    store.upsert_release_devices(&rows).await.unwrap();
    // 20 rows: six of 1.0.2, the eight the `set` events recorded (at 40), these six.
    let cutoff = store.device_rows_cutoff(DeviceTable::ReleaseDevices, &app_id, 5).await.unwrap().expect("20 rows");
    assert_eq!(cutoff.key, ["dev-00", "3.0.0"], "the 6th newest");
    assert_eq!(store.delete_device_rows(DeviceTable::ReleaseDevices, &app_id, &cutoff, 100).await.unwrap(), 15);
    let releases = store.release_health(&app_id, None).await.unwrap();
    assert_eq!((offered(&releases, "3.0.0"), offered(&releases, "3.0.1")), (2, 3));
    // Two instances ageing at once delete through the same mark: each row goes once, the newest stay.
    store.upsert_devices(&views(&(30..60).map(|n| report(&app_id, n)).collect::<Vec<_>>())).await.unwrap();
    let cutoff = store.device_rows_cutoff(DeviceTable::Devices, &app_id, 10).await.unwrap().expect("33 devices");
    let (a, b) = tokio::join!(
        store.delete_device_rows(DeviceTable::Devices, &app_id, &cutoff, 1000),
        store.delete_device_rows(DeviceTable::Devices, &app_id, &cutoff, 1000)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 23);
    let kept = store.list_devices(&app_id, 0, 100).await.unwrap();
    assert_eq!(kept.len(), 10);
    assert_eq!(kept.last().map(|r| r.device_id.as_str().to_owned()), Some("dev-50".to_owned()));
    // Nothing left at or before the oldest remaining times.
    for table in DeviceTable::ALL {
        assert_eq!(
            store.delete_device_rows(table, &app_id, &DeviceRowMark::at(at(-10)), 100).await.unwrap(),
            0,
            "{table:?}"
        );
    }
}

on_both_databases!(device_rows_age_out_story: sqlite_device_rows_age_out_story, postgres_device_rows_age_out_story);
