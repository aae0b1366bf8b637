//! bsdiff patches of Expo launch assets: which (base, target) pairs to compute, the background worker that
//! computes them, and opening a ready patch for a device.
//!
//! Candidates come from what devices run: a manifest request whose `Expo-Current-Update-ID` is not the release it
//! is served names a base a device really has, and a publish names the release it replaces on its channel. Offering
//! one is a non-blocking send of a few strings (and nothing when the same pair was offered lately), so update checks
//! stay free of work. The worker takes one candidate at a time: it skips pairs already recorded (by any instance:
//! the record is in the shared database, the patch in the shared bucket), reads both bundles (at most
//! `MAX_PATCH_INPUT` each), computes the patch on one blocking thread, applies it to check it reproduces the target,
//! and stores and records it only if it is at most 80 % of the brotli copy (`updraft_core::patch_worthwhile`),
//! else records that no patch is worth sending. A device never waits for a patch: without a ready one it gets the
//! full file.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use updraft_core::{AppId, Encoding, ExpoPatch, ExpoRelease, ExpoReleaseKind, patch_worthwhile};
use updraft_oss::{GetOptions, ObjectKey, PutMode, PutOptions};

use crate::bsdiff_patch::{MAX_PATCH_INPUT, make_verified_patch};
use crate::ops::AppState;
use crate::ops::encodings::encoded_key;
use crate::storage_layout::StorageKey;

/// Candidates waiting for the worker; more are dropped (they come again with the next check of such a device).
const QUEUE: usize = 1024;

/// Slots of the "offered lately" filter.
const RECENT: usize = 4096;

/// A pair to compute: from the launch asset of one release to that of another.
#[derive(Debug)]
struct Candidate {
    app_id: AppId,
    base_release: String,
    target_release: String,
}

/// The worker's inbox, set when the worker starts (`updraft serve`); without a worker, offers are ignored.
pub(crate) struct PatchQueue {
    sender: OnceLock<mpsc::Sender<Candidate>>,
    recent: Box<[AtomicU64]>,
}

impl Default for PatchQueue {
    fn default() -> Self {
        Self { sender: OnceLock::new(), recent: (0..RECENT).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl PatchQueue {
    /// Offers the pair (the launch asset of `base_release`, that of `target_release`) to the worker: never blocks,
    /// and sends nothing when the same pair was offered lately.
    pub(crate) fn offer(&self, app_id: &AppId, base_release: &str, target_release: &str) {
        let Some(sender) = self.sender.get() else { return };
        let mut hasher = DefaultHasher::new();
        (app_id.as_str(), base_release.to_ascii_lowercase(), target_release).hash(&mut hasher);
        let fingerprint = hasher.finish() | 1;
        let slot = &self.recent[usize::try_from(fingerprint % RECENT as u64).unwrap_or(0)];
        if slot.swap(fingerprint, Ordering::Relaxed) == fingerprint {
            return;
        }
        let candidate = Candidate {
            app_id: app_id.clone(),
            base_release: base_release.to_ascii_lowercase(),
            target_release: target_release.to_owned(),
        };
        let _ = sender.try_send(candidate);
    }
}

/// Starts the patch worker on the current runtime; it runs until the state's last holder is gone (abort the handle
/// at shutdown: its work is idempotent, an interrupted patch is computed again later).
pub(crate) fn spawn_worker(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    let (sender, mut inbox) = mpsc::channel(QUEUE);
    let _ = state.bytes.patches.sender.set(sender);
    tokio::spawn(async move {
        while let Some(candidate) = inbox.recv().await {
            if let Err(error) = compute(&state, &candidate).await {
                tracing::warn!(app.id = %candidate.app_id, "no bsdiff patch from release {} to {}: {error:#}", candidate.base_release, candidate.target_release);
            }
        }
    })
}

/// The SHA-256 of a release's launch asset (`None` for a rollback directive).
fn launch_sha256(release: &ExpoRelease) -> Option<&str> {
    match &release.kind {
        ExpoReleaseKind::Update { launch_asset, .. } => Some(&launch_asset.sha256),
        ExpoReleaseKind::RollBackToEmbedded => None,
    }
}

async fn read_all(state: &AppState, key: &ObjectKey) -> anyhow::Result<Vec<u8>> {
    let result = state.objects.get(key, GetOptions::default()).await?;
    let mut bytes = Vec::with_capacity(usize::try_from(result.meta.size).unwrap_or(0));
    let mut body = result.body;
    while let Some(chunk) = body.try_next().await? {
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

async fn compute(state: &AppState, candidate: &Candidate) -> anyhow::Result<()> {
    let app_id = &candidate.app_id;
    let Some(catalog) = state.index.get(app_id) else { return Ok(()) };
    let sha = |id: &str| catalog.expo_release(id).and_then(launch_sha256).map(str::to_owned);
    let (Some(base), Some(target)) = (sha(&candidate.base_release), sha(&candidate.target_release)) else {
        return Ok(());
    };
    if base == target || state.store.expo_patch(app_id, &base, &target).await?.is_some() {
        return Ok(());
    }
    let base_key = StorageKey::ExpoAsset { app_id, sha256: &base }.object_key();
    let target_key = StorageKey::ExpoAsset { app_id, sha256: &target }.object_key();
    let (base_size, target_size) =
        (state.objects.head(&base_key).await?.size, state.objects.head(&target_key).await?.size);
    if base_size > MAX_PATCH_INPUT || target_size > MAX_PATCH_INPUT {
        let none = ExpoPatch { base_sha256: base, target_sha256: target, patch_sha256: None, patch_size: 0 };
        return Ok(state.store.record_expo_patch(app_id, &none).await?);
    }
    let (base_bytes, target_bytes) = (read_all(state, &base_key).await?, read_all(state, &target_key).await?);
    let started = std::time::Instant::now();
    let target_sha = target.clone();
    let patch = tokio::task::spawn_blocking(move || make_verified_patch(&base_bytes, &target_bytes, &target_sha))
        .await?
        .context("computing the patch")?;
    let smallest_full = match state.objects.head(&encoded_key(&target_key, Encoding::Brotli)).await {
        Ok(meta) => meta.size.min(target_size),
        Err(_) => target_size,
    };
    let patch_size = patch.len() as u64;
    let worthwhile = patch_worthwhile(patch_size, smallest_full);
    let mut record = ExpoPatch { base_sha256: base, target_sha256: target, patch_sha256: None, patch_size };
    if worthwhile {
        let patch_sha = hex::encode(Sha256::digest(&patch));
        let key = StorageKey::ExpoPatch { app_id, sha256: &patch_sha }.object_key();
        let body = futures::stream::once(async move { Ok(bytes::Bytes::from(patch)) }).boxed();
        match state.objects.put(&key, body, PutOptions { mode: PutMode::Create, ..PutOptions::default() }).await {
            Ok(_) | Err(updraft_oss::Error::AlreadyExists { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        record.patch_sha256 = Some(patch_sha);
    }
    state.store.record_expo_patch(app_id, &record).await?;
    tracing::info!(
        app.id = %app_id,
        patch.size_bytes = patch_size,
        full.size_bytes = smallest_full,
        duration_ms = started.elapsed().as_millis() as u64,
        "bsdiff patch {} → {}: {patch_size} bytes against {smallest_full} ({})",
        record.base_sha256,
        record.target_sha256,
        if worthwhile { "stored" } else { "not worth sending" }
    );
    Ok(())
}

/// A verified patch, ready to send.
pub(crate) struct ReadyPatch {
    pub(crate) sha256: String,
    pub(crate) bytes: bytes::Bytes,
}

/// The patch from the launch asset of the release `current_update_id` (what the device runs) to the launch asset
/// `target_sha256`, when one is recorded and its stored bytes still hash to its address. `None` in every other
/// case (unknown base, no patch yet, not worth sending, object missing or corrupt, storage or database trouble):
/// the device then gets the full file, which it always accepts.
pub(crate) async fn ready_patch(
    state: &AppState,
    app_id: &AppId,
    current_update_id: &str,
    target_sha256: &str,
) -> Option<ReadyPatch> {
    let catalog = state.index.get(app_id)?;
    let base = catalog.expo_release(current_update_id).and_then(launch_sha256)?.to_owned();
    if base == target_sha256 {
        return None;
    }
    let record = match state.store.expo_patch(app_id, &base, target_sha256).await {
        Ok(record) => record?,
        Err(error) => {
            tracing::warn!(app.id = %app_id, "looking up a bsdiff patch failed, sending the full file: {error}");
            return None;
        }
    };
    let sha256 = record.patch_sha256?;
    let key = StorageKey::ExpoPatch { app_id, sha256: &sha256 }.object_key();
    let bytes = match read_all(state, &key).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(app.id = %app_id, object.key = %key, "a recorded bsdiff patch cannot be read, sending the full file: {error:#}");
            return None;
        }
    };
    if bytes.len() as u64 != record.patch_size || hex::encode(Sha256::digest(&bytes)) != sha256 {
        tracing::error!(app.id = %app_id, object.key = %key, "a stored bsdiff patch does not match its address, sending the full file");
        return None;
    }
    Some(ReadyPatch { sha256, bytes: bytes.into() })
}
