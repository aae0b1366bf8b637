//! A deleted bundle is never pointed at, and a bundle something points at is never deleted, even when the two
//! writes race: the store checks in the writing transaction, not against a catalog read before it. On SQLite write
//! transactions run one at a time; on PostgreSQL (`UPDRAFT_TEST_DATABASE_URL`, started by `tests/run.sh`) row locks
//! order them, which the last two tests hold open from a second connection.

mod databases;

use chrono::Utc;
use databases::{postgres, postgres_url, sqlite};
use sqlx::Connection as _;
use updraft_core::{
    App, AppId, BundlePin, BundleSource, BundleVersion, ChannelName, ChannelUpdate, DeviceId, HaltPolicy,
    MetadataStore, NewBundle, OverrideTarget, Rollout, RolloutChange, RolloutId, RolloutPercent, RolloutSpec,
    RolloutTarget, StableTarget, StoreError, StoredRollout,
};
use updraft_store::SqlStore;

const APP: &str = "com.example.links";

async fn app_with_bundle(store: &dyn MetadataStore, version: &str) -> (AppId, i64) {
    let app_id = AppId::parse(APP).unwrap();
    let app = App {
        id: app_id.clone(),
        name: "Links".into(),
        public_key: None,
        default_channel: "production".into(),
        created_at: Utc::now(),
    };
    store.create_app(&app).await.unwrap();
    let id = publish(store, &app_id, version).await;
    (app_id, id)
}

/// Records bundle `version` of the app, served from an external URL; returns its id.
async fn publish(store: &dyn MetadataStore, app_id: &AppId, version: &str) -> i64 {
    let bundle = NewBundle {
        app_id: app_id.clone(),
        version: BundleVersion::parse(version).unwrap(),
        checksum: "ab".repeat(32),
        crc32: None,
        encryption: None,
        min_update_version: None,
        source: BundleSource::External { url: format!("https://example.com/{version}.zip") },
        manifest: vec![],
        metadata: Default::default(),
    };
    store.insert_bundle(&bundle, None).await.unwrap().id
}

fn rollout_of(app_id: &AppId, version: &str) -> StoredRollout {
    let now = Utc::now();
    let spec = RolloutSpec {
        id: RolloutId::parse("r-links").unwrap(),
        app_id: app_id.clone(),
        channel: ChannelName::parse("production").unwrap(),
        candidate: RolloutTarget::CapgoBundle(BundleVersion::parse(version).unwrap()),
        stable: StableTarget::Builtin,
        percent: RolloutPercent::parse("10").unwrap(),
        policy: HaltPolicy::new(0.025, 20).unwrap(),
    };
    StoredRollout {
        rollout: Rollout::start(spec, now).unwrap(),
        covers: vec![],
        last_change: RolloutChange { action: "start".into(), by: "ci".into(), at: now, reason: String::new() },
    }
}

/// What an in-memory catalog read before a delete would still offer: the deleted bundle's id and version.
async fn deleted_bundles_are_not_pointed_at(store: &dyn MetadataStore) {
    let (app_id, id) = app_with_bundle(store, "1.0.0").await;
    store.delete_bundle(&app_id, id).await.unwrap();
    let production = ChannelName::parse("production").unwrap();
    let pointed = store.upsert_channel(&app_id, &production, &ChannelUpdate::default(), Some(Some(id))).await;
    assert!(matches!(pointed, Err(StoreError::NotFound(_))), "a channel: {pointed:?}");
    let pin = OverrideTarget { channel_id: None, bundle: Some(BundlePin::Bundle(id)) };
    let pinned = store.set_device_override(&app_id, &DeviceId::parse("tester").unwrap(), &pin).await;
    assert!(matches!(pinned, Err(StoreError::NotFound(_))), "a device pin: {pinned:?}");
    let started = store.start_rollout(&rollout_of(&app_id, "1.0.0"), &[]).await;
    assert!(matches!(started, Err(StoreError::NotFound(_))), "a rollout: {started:?}");
    let catalog = store.load_catalog(&app_id).await.unwrap().unwrap();
    assert!(catalog.channel_by_name("production").is_none(), "nothing was written");
    assert!(catalog.rollout("production").is_none());
    assert!(catalog.override_for(&DeviceId::parse("tester").unwrap()).is_none());
}

#[tokio::test]
async fn sqlite_deleted_bundles_are_not_pointed_at() {
    let (store, _dir) = sqlite().await;
    deleted_bundles_are_not_pointed_at(&store).await;
}

#[tokio::test]
async fn postgres_deleted_bundles_are_not_pointed_at() {
    deleted_bundles_are_not_pointed_at(&postgres().await).await;
}

/// A migrated store on a new PostgreSQL database, and two more connections to it: one that holds a transaction
/// open, one that watches for lock waits.
async fn postgres_and_connections() -> (SqlStore, sqlx::PgConnection, sqlx::PgConnection) {
    let url = postgres_url().await;
    let store = SqlStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let holding = sqlx::PgConnection::connect(&url).await.unwrap();
    (store, holding, sqlx::PgConnection::connect(&url).await.unwrap())
}

/// Waits until a statement of another session waits for a row lock (the store's call under test); fails if `call`
/// finishes first, which means it did not wait.
async fn until_blocked_on_a_lock<T: std::fmt::Debug>(
    watcher: &mut sqlx::PgConnection,
    call: &tokio::task::JoinHandle<T>,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        assert!(!call.is_finished(), "the call finished without waiting for the other transaction's row lock");
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *watcher)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the call never waited for a lock");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A channel is being pointed at the bundle (the transaction `upsert_channel` runs, held open) while a delete
/// starts: the delete waits for it, then finds the link and refuses. Before, it counted no link and deleted the
/// bundle (and its objects) under the channel.
#[tokio::test]
async fn postgres_a_delete_waits_for_a_channel_being_pointed_at_the_bundle() {
    let (store, mut pointing, mut watcher) = postgres_and_connections().await;
    let (app_id, id) = app_with_bundle(&store, "1.0.0").await;
    let production = ChannelName::parse("production").unwrap();
    store.upsert_channel(&app_id, &production, &ChannelUpdate::default(), Some(None)).await.unwrap();
    sqlx::query("BEGIN").execute(&mut pointing).await.unwrap();
    sqlx::query("SELECT id FROM bundles WHERE app_id = $1 AND id = $2 AND deleted = 0 FOR SHARE")
        .bind(APP)
        .bind(id)
        .fetch_one(&mut pointing)
        .await
        .unwrap();
    sqlx::query("UPDATE channels SET bundle_id = $1 WHERE app_id = $2 AND name = 'production'")
        .bind(id)
        .bind(APP)
        .execute(&mut pointing)
        .await
        .unwrap();
    let deleting = tokio::spawn({
        let store = store.clone();
        async move { store.delete_bundle(&app_id, id).await }
    });
    until_blocked_on_a_lock(&mut watcher, &deleting).await;
    sqlx::query("COMMIT").execute(&mut pointing).await.unwrap();
    let deleted = deleting.await.unwrap();
    assert!(matches!(deleted, Err(StoreError::Conflict(_))), "{deleted:?}");
}

/// A delete is under way (the transaction `delete_bundle` runs, held open) while a channel is pointed at the
/// bundle: the pointing waits for it, then finds the bundle deleted. Before, it pointed the channel at it.
#[tokio::test]
async fn postgres_pointing_at_a_bundle_waits_for_its_delete() {
    let (store, mut deleting, mut watcher) = postgres_and_connections().await;
    let (app_id, id) = app_with_bundle(&store, "1.0.0").await;
    sqlx::query("BEGIN").execute(&mut deleting).await.unwrap();
    sqlx::query("SELECT id FROM bundles WHERE id = $1 AND app_id = $2 AND deleted = 0 FOR UPDATE")
        .bind(id)
        .bind(APP)
        .fetch_one(&mut deleting)
        .await
        .unwrap();
    sqlx::query("UPDATE bundles SET deleted = 1 WHERE id = $1").bind(id).execute(&mut deleting).await.unwrap();
    let pointing = tokio::spawn({
        let store = store.clone();
        async move {
            let production = ChannelName::parse("production").unwrap();
            store.upsert_channel(&app_id, &production, &ChannelUpdate::default(), Some(Some(id))).await
        }
    });
    until_blocked_on_a_lock(&mut watcher, &pointing).await;
    sqlx::query("COMMIT").execute(&mut deleting).await.unwrap();
    let pointed = pointing.await.unwrap();
    assert!(matches!(pointed, Err(StoreError::NotFound(_))), "{pointed:?}");
}

/// A channel is being pointed at another bundle (held open) while a settings-only change of the same channel runs:
/// the settings change waits for it and keeps the new bundle. Before, it wrote back the bundle it had read, undoing
/// the other change, and pointing the channel at a bundle a delete could remove meanwhile.
#[tokio::test]
async fn postgres_a_settings_change_keeps_a_bundle_pointed_at_meanwhile() {
    let (store, mut pointing, mut watcher) = postgres_and_connections().await;
    let (app_id, old) = app_with_bundle(&store, "1.0.0").await;
    let new = publish(&store, &app_id, "1.0.1").await;
    let production = ChannelName::parse("production").unwrap();
    store.upsert_channel(&app_id, &production, &ChannelUpdate::default(), Some(Some(old))).await.unwrap();
    sqlx::query("BEGIN").execute(&mut pointing).await.unwrap();
    sqlx::query("UPDATE channels SET bundle_id = $1 WHERE app_id = $2 AND name = 'production'")
        .bind(new)
        .bind(APP)
        .execute(&mut pointing)
        .await
        .unwrap();
    let setting = tokio::spawn({
        let (store, app_id, production) = (store.clone(), app_id.clone(), production.clone());
        async move {
            let update = ChannelUpdate { allow_emulator: Some(false), ..ChannelUpdate::default() };
            store.upsert_channel(&app_id, &production, &update, None).await
        }
    });
    until_blocked_on_a_lock(&mut watcher, &setting).await;
    sqlx::query("COMMIT").execute(&mut pointing).await.unwrap();
    let (channel, _) = setting.await.unwrap().unwrap();
    assert_eq!(channel.bundle_id, Some(new), "the bundle pointed at meanwhile stays");
    assert!(!channel.settings.allow_emulator, "and the setting is written");
}
