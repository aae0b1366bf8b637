//! Expo releases: store an asset content-addressed, say which assets are missing, and publish, roll back or
//! promote. The minting rules (ids, group, `createdAt` ordering, asset de-duplication, messages) are
//! `updraft_core::ReleaseMint`'s; here they meet storage: a release is recorded only after every asset it names is
//! stored, in one store transaction, then the release index is refreshed.

use std::collections::HashSet;

use chrono::Utc;
use futures::Stream;
use updraft_core::{
    AppCatalog, AppId, ChannelName, ExpoAsset, ExpoRelease, Platform, PlatformUpdate, ReleaseMint, UnsafeAsset, codes,
    referenced_releases,
};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::ops::audit::{self, Change};
use crate::ops::{AppState, encodings, objects};
use crate::storage_layout::StorageKey;
use crate::upload::stage;

/// A stored asset.
pub(crate) struct StoredAsset {
    pub(crate) md5: String,
    pub(crate) size_bytes: u64,
}

/// Stores the bytes of one asset, which must hash to `sha256` (lowercase hex), and records it.
pub(crate) async fn upload_asset<E: std::fmt::Display>(
    state: &AppState,
    app_id: &AppId,
    sha256: &str,
    body: impl Stream<Item = Result<bytes::Bytes, E>> + Unpin,
) -> Result<StoredAsset, ApiError> {
    state.catalog(app_id)?;
    let staged = stage(&state.settings.staging_dir(), body, state.settings.max_upload_bytes).await?;
    if staged.sha256 != sha256 {
        return Err(ApiError::bad_request(
            codes::CHECKSUM_MISMATCH,
            format!("the body hashes to {}, not {sha256}; the file changed or was truncated on the way", staged.sha256),
        ));
    }
    let key = StorageKey::ExpoAsset { app_id, sha256 }.object_key();
    objects::put_content_addressed(state, &key, staged.file.path(), None).await?;
    // Its compressed copies too, before it is recorded: every download of it can then pick one.
    encodings::store_encodings(state, &key, staged.file.path(), None, encodings::CopyPolicy::WhenSmaller).await?;
    // Recorded only once the bytes are stored: a release can only name assets that exist.
    state.store.insert_expo_asset(app_id, sha256, &staged.md5, staged.size_bytes).await?;
    Ok(StoredAsset { md5: staged.md5, size_bytes: staged.size_bytes })
}

/// Which of these digests the app has no asset for yet, in the order asked.
pub(crate) async fn missing_assets(
    state: &AppState,
    app_id: &AppId,
    sha256s: &[String],
) -> Result<Vec<String>, ApiError> {
    state.catalog(app_id)?;
    let known = state.store.expo_asset_md5s(app_id, sha256s).await?;
    Ok(sha256s.iter().filter(|sha| !known.contains_key(*sha)).cloned().collect())
}

/// An asset a publish names: its digest (lowercase) and extension (without the dot).
pub(crate) struct AssetName {
    pub(crate) sha256: String,
    pub(crate) ext: String,
}

/// The files of one platform of a publish.
pub(crate) struct PlatformAssets {
    pub(crate) platform: Platform,
    pub(crate) runtime_version: String,
    pub(crate) launch_asset: AssetName,
    pub(crate) assets: Vec<AssetName>,
}

/// A checked publish.
pub(crate) struct Publish {
    pub(crate) channel: ChannelName,
    pub(crate) message: String,
    /// The public app config, as JSON text.
    pub(crate) expo_client: String,
    pub(crate) platforms: Vec<PlatformAssets>,
    /// Start a rollout with the publish (`publish expo --rollout P`): the percentage and the policy (who asks is the
    /// caller).
    pub(crate) rollout: Option<(updraft_core::RolloutPercent, updraft_core::HaltPolicy)>,
}

/// Publishes an update whose assets are all stored: one release per platform.
pub(crate) async fn publish(
    state: &AppState,
    by: &Caller,
    app_id: &AppId,
    publish: Publish,
) -> Result<Vec<ExpoRelease>, ApiError> {
    let catalog = state.catalog(app_id)?;
    let wanted: Vec<String> = publish
        .platforms
        .iter()
        .flat_map(|p| std::iter::once(&p.launch_asset).chain(&p.assets))
        .map(|a| a.sha256.clone())
        .collect();
    let md5s = state.store.expo_asset_md5s(app_id, &wanted).await?;
    let missing: Vec<&String> =
        wanted.iter().filter(|sha| !md5s.contains_key(*sha)).collect::<HashSet<_>>().into_iter().collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(
            "asset_missing",
            format!(
                "{} asset(s) are not uploaded yet (PUT /expo/{app_id}/assets/<sha256> first): {missing:?}",
                missing.len()
            ),
        ));
    }
    let asset = |name: AssetName| ExpoAsset { md5: md5s[&name.sha256].clone(), sha256: name.sha256, ext: name.ext };
    let mint = mint(&catalog, &publish.channel);
    let releases = publish
        .platforms
        .into_iter()
        .map(|files| {
            let update = PlatformUpdate {
                platform: files.platform,
                runtime_version: files.runtime_version,
                launch_asset: asset(files.launch_asset),
                assets: files.assets.into_iter().map(asset).collect(),
            };
            let release = mint.update(new_id(), update, &publish.message, &publish.expo_client);
            release.kind.check_files().map_err(unsafe_asset)?;
            Ok(release)
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    if let Some((percent, policy)) = publish.rollout {
        let candidate =
            crate::ops::rollouts::Candidate::ExpoRelease { reference: String::new(), runtime_version: None };
        let operator = by.key_name().to_owned();
        let start =
            crate::ops::rollouts::StartRollout { channel: publish.channel, candidate, percent, policy, by: operator };
        crate::ops::rollouts::start_with_publish(state, app_id, start, &releases).await?;
        tracing::info!(app.id = %app_id, n_releases = releases.len(), "recorded Expo releases with their rollout");
        audit_releases(state, by, app_id, "expo.publish", &catalog, &releases).await?;
        state.webhooks.send(crate::webhooks::expo_releases_recorded(app_id, "publish", &releases));
        return Ok(releases);
    }
    record(state, by, app_id, "expo.publish", &catalog, releases).await
}

/// Where a rollback goes.
pub(crate) enum RollbackTarget {
    /// To an earlier release (or every platform of a publish group) on the channel, of this runtime version only
    /// when one is given (else each release keeps its own).
    Release { reference: String, runtime_version: Option<String> },
    /// To the update embedded in the binary, for this runtime version.
    Embedded { runtime_version: String },
}

/// A checked rollback.
pub(crate) struct Rollback {
    pub(crate) channel: ChannelName,
    pub(crate) target: RollbackTarget,
    pub(crate) platforms: Vec<Platform>,
}

/// Rolls a channel back, as new releases.
pub(crate) async fn rollback(
    state: &AppState,
    by: &Caller,
    app_id: &AppId,
    rollback: Rollback,
) -> Result<Vec<ExpoRelease>, ApiError> {
    let catalog = state.catalog(app_id)?;
    let mint = mint(&catalog, &rollback.channel);
    let channel = rollback.channel.as_str();
    let releases: Vec<ExpoRelease> = match &rollback.target {
        RollbackTarget::Embedded { runtime_version } => rollback
            .platforms
            .iter()
            .map(|platform| mint.embedded_rollback(new_id(), *platform, runtime_version))
            .collect(),
        RollbackTarget::Release { reference, runtime_version } => {
            let sources: Vec<&ExpoRelease> = referenced_releases(&catalog, reference)
                .into_iter()
                .filter(|r| rollback.platforms.contains(&r.platform))
                .filter(|r| r.channel == channel)
                .filter(|r| runtime_version.as_ref().is_none_or(|v| *v == r.runtime_version))
                .collect();
            check_sources(&sources)?;
            if sources.is_empty() {
                let runtime = runtime_version.as_ref().map(|v| format!(" for runtime version {v}"));
                return Err(ApiError::not_found(
                    "release_not_found",
                    format!("no release or group {reference} on channel {channel}{}", runtime.unwrap_or_default()),
                ));
            }
            sources.into_iter().map(|source| mint.rollback_to(new_id(), source)).collect()
        }
    };
    record(state, by, app_id, "expo.rollback", &catalog, releases).await
}

/// Serves a release (or every platform of a publish group) on another channel, as new releases.
pub(crate) async fn promote(
    state: &AppState,
    by: &Caller,
    app_id: &AppId,
    reference: &str,
    to_channel: &ChannelName,
) -> Result<Vec<ExpoRelease>, ApiError> {
    let catalog = state.catalog(app_id)?;
    let sources = referenced_releases(&catalog, reference);
    check_sources(&sources)?;
    if sources.is_empty() {
        return Err(ApiError::not_found(
            "release_not_found",
            format!("no release or group {reference} in app {app_id}"),
        ));
    }
    let mint = mint(&catalog, to_channel);
    let releases = sources.into_iter().map(|source| mint.promotion_of(new_id(), source)).collect();
    record(state, by, app_id, "expo.promote", &catalog, releases).await
}

fn unsafe_asset(problem: UnsafeAsset) -> ApiError {
    ApiError::bad_request("unsafe_file_extension", problem.to_string())
}

/// Refuses to serve again a release whose files could not be stored safely on a device (one recorded before the
/// gateway checked them at publish).
fn check_sources(sources: &[&ExpoRelease]) -> Result<(), ApiError> {
    for source in sources {
        source.kind.check_files().map_err(|problem| {
            ApiError::bad_request(
                "unsafe_file_extension",
                format!("release {} cannot be served again: {problem}; publish a new update instead", source.id),
            )
        })?;
    }
    Ok(())
}

fn mint(catalog: &AppCatalog, channel: &ChannelName) -> ReleaseMint {
    ReleaseMint::new(catalog, channel.as_str(), new_id(), Utc::now())
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Records releases (of a publish, rollback or promotion), refreshes the index, audits and announces them.
async fn record(
    state: &AppState,
    by: &Caller,
    app_id: &AppId,
    action: &'static str,
    before: &AppCatalog,
    releases: Vec<ExpoRelease>,
) -> Result<Vec<ExpoRelease>, ApiError> {
    // What each new release replaces on its channel: the devices there run it, so a patch from it is wanted.
    let replaced: Vec<(String, String)> = releases
        .iter()
        .filter_map(|new| {
            let previous = before
                .expo_releases()
                .iter()
                .filter(|r| {
                    r.channel == new.channel
                        && r.runtime_version == new.runtime_version
                        && r.platform == new.platform
                        && matches!(r.kind, updraft_core::ExpoReleaseKind::Update { .. })
                })
                .max_by_key(|r| r.created_at)?;
            Some((previous.id.clone(), new.id.clone()))
        })
        .collect();
    state.store.insert_expo_releases(&releases).await?;
    state.refresh(app_id).await?;
    for (previous, new) in &replaced {
        state.bytes.patches.offer(app_id, previous, new);
    }
    tracing::info!(app.id = %app_id, n_releases = releases.len(), "recorded Expo releases");
    audit_releases(state, by, app_id, action, before, &releases).await?;
    let webhook_action = match action {
        "expo.publish" => "publish",
        "expo.rollback" => "rollback",
        _ => "promote",
    };
    state.webhooks.send(crate::webhooks::expo_releases_recorded(app_id, webhook_action, &releases));
    Ok(releases)
}

/// Appends the audit record of recorded releases: what the channel served before (its newest release per platform
/// and runtime version) and the new releases.
async fn audit_releases(
    state: &AppState,
    by: &Caller,
    app_id: &AppId,
    action: &'static str,
    before: &AppCatalog,
    releases: &[ExpoRelease],
) -> Result<(), ApiError> {
    let channel = releases.first().map(|release| release.channel.clone()).unwrap_or_default();
    // Before: what the channel served (its newest release per platform and runtime); after: the new releases.
    let served = |releases: &[&ExpoRelease]| -> serde_json::Value {
        releases.iter().map(|r| serde_json::json!({ "id": r.id, "platform": r.platform.as_str(), "runtime_version": r.runtime_version })).collect()
    };
    let mut previous: Vec<&ExpoRelease> = Vec::new();
    for release in releases {
        let newest = before
            .expo_releases()
            .iter()
            .filter(|r| {
                r.channel == release.channel
                    && r.platform == release.platform
                    && r.runtime_version == release.runtime_version
            })
            .max_by_key(|r| r.created_at);
        previous.extend(newest);
    }
    let change = Change {
        app_id: Some(app_id),
        channel: Some(&channel),
        action,
        before: (!previous.is_empty()).then(|| served(&previous)),
        after: Some(served(&releases.iter().collect::<Vec<_>>())),
    };
    audit::append(state, by.key_name(), change).await
}
