//! `export` / `import` between SQLite and PostgreSQL: every table moves with its ids, counts are verified, a damaged
//! file or a non-empty target changes nothing, and the moved store answers like the original.

mod databases;

use chrono::Utc;
use databases::{postgres, postgres_url, sqlite, views};
use updraft_core::{
    ApiKeyRecord, ApiKeyScope, App, AppId, BundlePin, BundleSource, BundleVersion, ChannelName, ChannelUpdate,
    DeviceId, DeviceReport, ExpoAsset, ExpoRelease, ExpoReleaseKind, ManifestEntry, MetadataStore, NewAuditRecord,
    NewBundle, OverrideTarget, Platform, Role, StatsEvent, StoreError,
};
use updraft_store::{SqlStore, TableCount};

/// Writes something into every table through the store's own API.
async fn populate(store: &dyn MetadataStore) -> AppId {
    let app_id = AppId::parse("com.example.moving").unwrap();
    let app = App {
        id: app_id.clone(),
        name: "Moving".into(),
        public_key: Some("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----".into()),
        default_channel: "production".into(),
        created_at: Utc::now(),
    };
    store.create_app(&app).await.unwrap();
    let bundle = |version: &str, manifest: Vec<ManifestEntry>| NewBundle {
        app_id: app_id.clone(),
        version: BundleVersion::parse(version).unwrap(),
        checksum: "cd".repeat(32),
        crc32: None,
        encryption: None,
        min_update_version: Some(semver::Version::new(1, 0, 0)),
        source: BundleSource::Stored { object_key: format!("b/{version}.zip"), size_bytes: 7, sha256: "ef".repeat(32) },
        manifest,
        metadata: updraft_core::BundleMetadata { link: Some("https://example.com/notes".into()), comment: None },
    };
    let production = ChannelName::parse("production").unwrap();
    let first = store
        .insert_bundle(
            &bundle("1.0.0", vec![]),
            Some(&(production.clone(), ChannelUpdate { public: Some(true), ..Default::default() })),
        )
        .await
        .unwrap();
    let files = vec![ManifestEntry {
        file_name: "index.html".into(),
        file_hash: "00".repeat(32),
        object_key: "f/1".into(),
        size_bytes: Some(12),
        br_size_bytes: Some(9),
    }];
    let second = store.insert_bundle(&bundle("1.0.1", files), None).await.unwrap();
    let (beta, _) = store
        .upsert_channel(&app_id, &ChannelName::parse("beta").unwrap(), &ChannelUpdate::default(), Some(Some(second.id)))
        .await
        .unwrap();
    let pinned = DeviceId::parse("pinned-device").unwrap();
    store
        .set_device_override(
            &app_id,
            &pinned,
            &OverrideTarget { channel_id: Some(beta.id), bundle: Some(BundlePin::Bundle(first.id)) },
        )
        .await
        .unwrap();
    let reports: Vec<DeviceReport> = (0..25)
        .map(|n| DeviceReport {
            app_id: app_id.clone(),
            device_id: DeviceId::parse(&format!("device-{n}")).unwrap(),
            platform: if n % 2 == 0 { Platform::Ios } else { Platform::Android },
            version_name: "1.0.0".into(),
            version_build: "1.0".into(),
            version_code: "10".into(),
            version_os: "17".into(),
            plugin_version: "8.51.14".into(),
            custom_id: format!("user {n} \"quoted\" ✓"),
            is_prod: n % 3 != 0,
            is_emulator: n == 4,
            install_source: String::new(),
            default_channel: String::new(),
            key_id: String::new(),
            seen_at: Utc::now(),
        })
        .collect();
    store.upsert_devices(&views(&reports)).await.unwrap();
    let event = |action: &str| StatsEvent {
        app_id: app_id.clone(),
        device_id: DeviceId::parse("device-1").unwrap(),
        action: action.into(),
        version_name: "1.0.1".into(),
        old_version_name: "1.0.0".into(),
        platform: "android".into(),
        plugin_version: "8.51.14".into(),
        received_at: Utc::now(),
        occurred_at: Utc::now() - chrono::Duration::minutes(3),
        metadata: vec![("exit_reason".into(), "anr".into())],
    };
    let mut installed = event("set");
    installed.device_id = DeviceId::parse("device-2").unwrap();
    store.insert_stats(&[event("set"), event("update_fail"), event("get"), installed]).await.unwrap();
    store
        .insert_api_key(&ApiKeyRecord {
            id: "key1".into(),
            name: "ci".into(),
            secret_sha256: "aa".repeat(32),
            scope: ApiKeyScope::App(app_id.clone()),
            role: Role::Publish,
            channel: Some(ChannelName::parse("beta").unwrap()),
            created_at: Utc::now(),
            revoked_at: Some(Utc::now()),
        })
        .await
        .unwrap();
    store
        .insert_audit(&NewAuditRecord {
            at: Utc::now(),
            key_name: "ci".into(),
            app_id: Some(app_id.clone()),
            channel: Some("beta".into()),
            action: "channel.set".into(),
            before: None,
            after: Some(r#"{"bundle":"1.0.0"}"#.into()),
        })
        .await
        .unwrap();
    let launch = ExpoAsset { sha256: "11".repeat(32), md5: "22".repeat(16), ext: "bundle".into() };
    let image = ExpoAsset { sha256: "33".repeat(32), md5: "44".repeat(16), ext: "png".into() };
    for asset in [&launch, &image] {
        store.insert_expo_asset(&app_id, &asset.sha256, &asset.md5, 99).await.unwrap();
    }
    let release = |id: &str, kind| ExpoRelease {
        id: id.into(),
        group_id: "00000000-0000-4000-8000-000000000000".into(),
        app_id: app_id.clone(),
        channel: "production".into(),
        runtime_version: "1.0.0".into(),
        platform: Platform::Ios,
        created_at: Utc::now(),
        message: "first".into(),
        kind,
    };
    let update = ExpoReleaseKind::Update { launch_asset: launch, assets: vec![image], expo_client: "{}".into() };
    store
        .insert_expo_releases(&[
            release("00000000-0000-4000-8000-000000000001", update),
            release("00000000-0000-4000-8000-000000000002", ExpoReleaseKind::RollBackToEmbedded),
        ])
        .await
        .unwrap();
    let key = |key_id: &str, certificate: Option<&str>| updraft_core::SigningKeyRecord {
        key_id: key_id.into(),
        private_key_pem: "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----".into(),
        certificate_pem: certificate.map(str::to_owned),
        created_at: Utc::now(),
    };
    store.put_signing_key(&app_id, &key("main", None), false).await.unwrap();
    store.put_signing_key(&app_id, &key("v2", Some("-----BEGIN CERTIFICATE-----")), false).await.unwrap();
    // A halted rollout, so its halt columns (a flag and counts among them) move too.
    let rollout = updraft_core::Rollout::start(
        updraft_core::RolloutSpec {
            id: updraft_core::RolloutId::parse("moving-rollout").unwrap(),
            app_id: app_id.clone(),
            channel: ChannelName::parse("production").unwrap(),
            candidate: updraft_core::RolloutTarget::ExpoGroup("00000000-0000-4000-8000-000000000000".into()),
            stable: updraft_core::StableTarget::ExpoPrevious,
            percent: updraft_core::RolloutPercent::parse("12.5").unwrap(),
            policy: updraft_core::HaltPolicy::default(),
        },
        Utc::now(),
    )
    .unwrap();
    let change =
        updraft_core::RolloutChange { action: "start".into(), by: "ci".into(), at: Utc::now(), reason: String::new() };
    let stored =
        updraft_core::StoredRollout { rollout, covers: vec![(Platform::Ios, "1.0.0".into())], last_change: change };
    store.start_rollout(&stored, &[]).await.unwrap();
    let halt = updraft_core::Halt {
        reason: "too many failures".into(),
        at: Utc::now(),
        by: updraft_core::HaltCause::Automatic,
        figures: Some(updraft_core::HealthFigures { devices: 60, failures: 9 }),
    };
    let channel = ChannelName::parse("production").unwrap();
    assert!(store.halt_rollout(&app_id, &channel, stored.rollout.id(), &halt, &[], None).await.unwrap());
    // Release health: a device's row, and a recorded halt with its figures.
    let now = Utc::now();
    let row = updraft_core::ReleaseDeviceRow {
        app_id: app_id.clone(),
        release_id: "1.0.1".into(),
        device_id: updraft_core::DeviceId::parse("health-device").unwrap(),
        protocol: updraft_core::HealthProtocol::Capgo,
        group_id: "1.0.1".into(),
        channel: "production".into(),
        offered_at: Some(now),
        running_at: None,
        failed_at: Some(now),
        failure: "update_fail".into(),
        seen_at: now,
    };
    store.upsert_release_devices(&[row]).await.unwrap();
    let record = updraft_core::HaltRecord {
        app_id: app_id.clone(),
        channel: "production".into(),
        rollout_id: "moving-rollout".into(),
        candidate: "1.0.1".into(),
        halted_at: now,
        halted_by: updraft_core::HALTED_BY_HEALTH_RULE.into(),
        instance: "i".into(),
        reason: "6 of 50 devices failed".into(),
        figures: updraft_core::HealthFigures { devices: 50, failures: 6 },
        failure_rate: 0.12,
        lower_bound: 0.056,
        max_failure_rate: 0.05,
        min_devices: 50,
    };
    store.insert_rollout_halt(&record).await.unwrap();
    let patch = updraft_core::ExpoPatch {
        base_sha256: "ab".repeat(32),
        target_sha256: "cd".repeat(32),
        patch_sha256: Some("ef".repeat(32)),
        patch_size: 321,
    };
    store.record_expo_patch(&app_id, &patch).await.unwrap();
    app_id
}

async fn export(store: &SqlStore) -> (Vec<u8>, Vec<TableCount>) {
    let mut file = Vec::new();
    let dump = store.export(&mut file).await.unwrap();
    (file, dump.counts)
}

/// The file without its header line (which names the source database).
fn body(file: &[u8]) -> &[u8] {
    let newline = file.iter().position(|b| *b == b'\n').unwrap();
    &file[newline + 1..]
}

#[tokio::test]
async fn metadata_moves_from_sqlite_to_postgres_and_back() {
    let (source, _dir) = sqlite().await;
    let app_id = populate(&source).await;
    let (file, counts) = export(&source).await;
    assert!(counts.iter().all(|c| c.rows > 0), "every table has rows: {counts:?}");

    let target = postgres().await;
    let loaded = target.import(&mut file.as_slice()).await.unwrap();
    assert_eq!(loaded.counts, counts);
    assert_eq!(target.counts().await.unwrap(), counts);
    let (again, _) = export(&target).await;
    assert_eq!(body(&again), body(&file), "PostgreSQL holds exactly what SQLite held");

    // The moved store answers like the original, and new rows get new ids (sequences moved past the imported ones).
    let original = source.load_catalog(&app_id).await.unwrap().unwrap();
    let moved = target.load_catalog(&app_id).await.unwrap().unwrap();
    assert_eq!(format!("{:?}", moved.channels()), format!("{:?}", original.channels()));
    assert!(moved.device_failed(&DeviceId::parse("device-1").unwrap(), "1.0.1"));
    assert_eq!(target.signing_keys(&app_id).await.unwrap(), source.signing_keys(&app_id).await.unwrap());
    let rollouts = target.rollouts(&app_id).await.unwrap();
    assert_eq!(rollouts, source.rollouts(&app_id).await.unwrap());
    assert_eq!(rollouts[0].rollout.state().as_str(), "halted");
    let newest = original.bundles().map(|b| b.id).max().unwrap();
    let (channel, created) = target
        .upsert_channel(&app_id, &ChannelName::parse("new-one").unwrap(), &ChannelUpdate::default(), None)
        .await
        .unwrap();
    assert!(created && channel.id > original.channels().iter().map(|c| c.id).max().unwrap());
    let third = NewBundle {
        app_id: app_id.clone(),
        version: BundleVersion::parse("1.0.2").unwrap(),
        checksum: "ab".repeat(32),
        crc32: None,
        encryption: None,
        min_update_version: None,
        source: BundleSource::External { url: "https://cdn.example.com/1.0.2.zip".into() },
        manifest: vec![],
        metadata: Default::default(),
    };
    assert!(target.insert_bundle(&third, None).await.unwrap().id > newest);

    // And back into a new SQLite file.
    let (back, _dir2) = sqlite().await;
    let (file2, counts2) = export(&target).await;
    back.import(&mut file2.as_slice()).await.unwrap();
    assert_eq!(back.counts().await.unwrap(), counts2);
}

#[tokio::test]
async fn import_refuses_a_non_empty_database_and_damaged_files() {
    let (source, _dir) = sqlite().await;
    populate(&source).await;
    let (file, _) = export(&source).await;

    let busy = postgres().await;
    populate(&busy).await;
    let refused = busy.import(&mut file.as_slice()).await;
    assert!(matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("not empty")), "{refused:?}");

    let target = postgres().await;
    let text = String::from_utf8(file.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Truncated: the trailer is missing.
    let truncated = lines[..lines.len() - 3].join("\n");
    let error = target.import(&mut truncated.as_bytes()).await.unwrap_err().to_string();
    assert!(error.contains("truncated"), "{error}");
    // A row dropped from the middle: the trailer's counts disagree.
    let mut dropped = lines.clone();
    dropped.remove(lines.len() / 2);
    let error = target.import(&mut dropped.join("\n").as_bytes()).await.unwrap_err().to_string();
    assert!(error.contains("damaged"), "{error}");
    // Not an export at all.
    let error = target.import(&mut &b"{\"hello\":1}\n"[..]).await.unwrap_err().to_string();
    assert!(error.contains("line 1"), "{error}");
    // Nothing of the failed attempts was kept.
    assert!(target.counts().await.unwrap().iter().all(|c| c.rows == 0));
    target.import(&mut file.as_slice()).await.unwrap();
}

/// A column this build does not know (a newer migration, a hand edit) stops export and import instead of being left
/// out of the file.
#[tokio::test]
async fn a_column_the_transfer_does_not_know_is_refused() {
    let (store, dir) = sqlite().await;
    populate(&store).await;
    let url = format!("sqlite://{}", dir.path().join("updraft.db").display());
    let mut connection = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::Executor::execute(&mut connection, "ALTER TABLE devices ADD COLUMN locale TEXT").await.unwrap();
    sqlx::Connection::close(connection).await.unwrap();
    let mut file = Vec::new();
    let error = store.export(&mut file).await.unwrap_err().to_string();
    assert!(error.contains("table devices") && error.contains("locale"), "{error}");

    let (clean, _dir) = sqlite().await;
    populate(&clean).await;
    let (file, _) = export(&clean).await;
    let url = postgres_url().await;
    let target = SqlStore::connect(&url).await.unwrap();
    target.migrate().await.unwrap();
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::Executor::execute(&mut connection, "ALTER TABLE apps ADD COLUMN owner TEXT").await.unwrap();
    sqlx::Connection::close(connection).await.unwrap();
    let error = target.import(&mut file.as_slice()).await.unwrap_err().to_string();
    assert!(error.contains("table apps") && error.contains("owner"), "{error}");
}
