//! `updraft storage check|gc|migrate`: probe the configured object store, remove objects nothing uses, and copy an
//! installation's objects to another store.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use updraft_core::{AppId, MetadataStore};
use updraft_oss::{GetOptions, ObjectKey, PutMode, PutOptions};

use crate::commands::open_store;
use crate::config::Settings;
use crate::storage::{check_store, open_object_store};
use crate::storage_layout::StorageKey;

pub(crate) async fn check(settings: &Settings) -> anyhow::Result<()> {
    let store = open_object_store(settings).await?;
    let problems = check_store(store.as_ref()).await;
    if problems.is_empty() {
        eprintln!("object storage {store}: list, put, get, presign and delete all work");
        return Ok(());
    }
    for problem in &problems {
        eprintln!("{store}: {problem}");
    }
    anyhow::bail!("object storage {store} failed {} of its checks; see the lines above", problems.len())
}

/// Removes objects that no live bundle, delta manifest or Expo release uses and that are older than the grace
/// period (so an upload in progress, whose release is not recorded yet, is never touched).
pub(crate) async fn gc(settings: &Settings, dry_run: bool, grace_hours: u64) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let objects = open_object_store(settings).await?;
    let referenced = store.referenced_objects().await.context("reading what releases use")?;
    let mut keep: HashSet<String> = referenced.object_keys.clone();
    for (app_id, sha256) in &referenced.expo_assets {
        keep.insert(StorageKey::ExpoAsset { app_id, sha256 }.object_key().to_string());
    }
    // An object in use keeps its compressed copies.
    let copies: Vec<String> = keep
        .iter()
        .flat_map(|key| updraft_core::Encoding::STORED.map(|encoding| format!("{key}{}", encoding.key_suffix())))
        .collect();
    keep.extend(copies);
    let cutoff = chrono::Utc::now() - chrono::Duration::hours(i64::try_from(grace_hours).unwrap_or(i64::MAX / 3600));
    let (mut n_removed, mut bytes_removed, mut n_kept, mut n_young) = (0u64, 0u64, 0u64, 0u64);
    let mut listing = objects.list(None);
    while let Some(meta) = listing.try_next().await.context("listing objects")? {
        // bsdiff patches are recorded in the database and small; a removed one would never be computed again.
        if keep.contains(&meta.key) || meta.key.starts_with("patches/") {
            n_kept += 1;
            continue;
        }
        if meta.last_modified > cutoff {
            n_young += 1;
            continue;
        }
        println!("{} {} ({} bytes)", if dry_run { "would remove" } else { "removing" }, meta.key, meta.size);
        if !dry_run {
            let key = ObjectKey::parse(&meta.key).context("an object key in the store is invalid")?;
            // An Expo asset's record goes first: a later publish then uploads it again instead of trusting it.
            if let Some((app, sha256)) = meta.key.strip_prefix("assets/").and_then(|rest| rest.split_once('/'))
                && let Ok(app_id) = AppId::parse(app)
            {
                store.delete_expo_asset(&app_id, sha256).await?;
            }
            objects.delete(&key).await?;
        }
        n_removed += 1;
        bytes_removed += meta.size;
    }
    store.close().await;
    eprintln!(
        "{} {n_removed} unused objects ({bytes_removed} bytes); kept {n_kept} in use and {n_young} newer than {grace_hours} h",
        if dry_run { "would remove" } else { "removed" }
    );
    Ok(())
}

/// Copies every object to the store configured in `target_config` (a TOML file; only its `[storage]` section is
/// used), skipping objects already there with the same size, and verifies the copy.
pub(crate) async fn migrate(settings: &Settings, target_config: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(target_config).with_context(|| format!("reading {}", target_config.display()))?;
    let mut target_settings: Settings =
        toml::from_str(&text).with_context(|| format!("parsing {}", target_config.display()))?;
    target_settings.data_dir = settings.data_dir.clone();
    target_settings.validate().with_context(|| format!("{}", target_config.display()))?;
    let source = open_object_store(settings).await?;
    let target = open_object_store(&target_settings).await?;
    if let Some(problem) = check_store(target.as_ref()).await.into_iter().next() {
        anyhow::bail!("the target storage {target} does not work: {problem}");
    }
    let (mut copied, mut present, mut bytes) = (0u64, 0u64, 0u64);
    let mut listing = source.list(None);
    while let Some(meta) = listing.try_next().await.context("listing the source")? {
        let key = ObjectKey::parse(&meta.key).context("an object key in the source is invalid")?;
        if target.head(&key).await.is_ok_and(|existing| existing.size == meta.size) {
            present += 1;
            continue;
        }
        let object = source.get(&key, GetOptions::default()).await?;
        let put = target
            .put(&key, object.body.boxed(), PutOptions { mode: PutMode::Overwrite, ..PutOptions::default() })
            .await?;
        anyhow::ensure!(put.size == meta.size, "copying {key}: wrote {} bytes of {}", put.size, meta.size);
        copied += 1;
        bytes += meta.size;
    }
    eprintln!(
        "copied {copied} objects ({bytes} bytes) from {source} to {target}; {present} were already there. Point UPDRAFT_STORAGE__* at the new store and restart."
    );
    Ok(())
}
