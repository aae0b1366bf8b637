//! Capgo bundles: publish an uploaded zip (checked, decrypted when encrypted, stored content-addressed and, for
//! delta updates, file by file), register one hosted elsewhere, and delete bundles (with the objects no live
//! bundle uses any more).
//!
//! Bytes are stored before the one store transaction that records the bundle (and points its channel at it), so a
//! half-finished upload is never served; a failed transaction removes the object it created.

use std::sync::Arc;

use updraft_capgo::encryption::AppPublicKey;
use updraft_core::{
    AppCatalog, AppId, Bundle, BundleEncryption, BundleMetadata, BundleSource, BundleVersion, ChannelName, FailureKind,
    ManifestEntry, NewBundle, StoreError, codes, delta_manifest_files, sha256_hex,
};

use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::bundle_ingest::{check_plain_zip, decrypt_and_check, unpack_files};
use crate::ops::audit::{self, Change};
use crate::ops::{AppState, encodings, objects};
use crate::storage_layout::StorageKey;
use crate::upload::StagedFile;

/// The checked fields every new bundle has, however it arrives.
pub(crate) struct BundleFields {
    pub(crate) app_id: AppId,
    pub(crate) catalog: Arc<AppCatalog>,
    pub(crate) version: BundleVersion,
    pub(crate) channel: Option<ChannelName>,
    pub(crate) min_update_version: Option<semver::Version>,
    /// Capgo's `link` and `comment`.
    pub(crate) metadata: BundleMetadata,
}

/// A recorded bundle, and the channel now pointing at it.
pub(crate) struct RecordedBundle {
    pub(crate) bundle: Bundle,
    pub(crate) channel: Option<ChannelName>,
}

/// Fails with 409 when the app has a bundle of this version (bundles are immutable).
pub(crate) fn check_new_version(catalog: &AppCatalog, app_id: &AppId, version: &BundleVersion) -> Result<(), ApiError> {
    match catalog.bundle_by_version(version.as_str()) {
        Some(_) => Err(version_exists(app_id, version)),
        None => Ok(()),
    }
}

/// The app's public key, which an encrypted bundle needs to be checked.
pub(crate) fn app_key(catalog: &AppCatalog) -> Result<AppPublicKey, ApiError> {
    let pem = catalog.app().public_key.as_deref().ok_or_else(|| {
        ApiError::bad_request(
            "encryption_key_missing",
            "this app has no public key, so an encrypted bundle cannot be checked; set it first with PUT /app {\"app_id\",\"public_key\"} (the PKCS#1 PEM from .capgo_key_v2.pub)",
        )
    })?;
    AppPublicKey::parse(pem).map_err(|e| ApiError::Internal(anyhow::anyhow!("stored public key is invalid: {e}")))
}

/// How an uploaded zip is to be checked and stored.
pub(crate) struct UploadOptions {
    /// The checksum the uploader gives (required for encrypted bundles).
    pub(crate) checksum: Option<String>,
    /// The encrypted session key of an encrypted bundle.
    pub(crate) session_key: Option<String>,
    /// Also store each file, for delta (manifest) updates.
    pub(crate) delta: bool,
}

/// Publishes a staged zip: checks its bytes, stores it (and its files for delta updates), records it.
pub(crate) async fn publish_upload(
    state: &AppState,
    by: &Caller,
    bundle: &BundleFields,
    staged: StagedFile,
    options: UploadOptions,
) -> Result<RecordedBundle, ApiError> {
    let staged_path = staged.file.path().to_path_buf();
    let staging_dir = state.settings.staging_dir();

    // Check the bytes: plain zips directly, encrypted ones after decryption with the app's key.
    let (checksum, crc32, encryption, plain_zip) = match options.session_key {
        Some(session_key) => {
            if options.delta {
                return Err(ApiError::bad_request(
                    "delta_not_supported",
                    "delta updates of encrypted bundles need every file encrypted with your private key; upload without delta=true",
                ));
            }
            let key = app_key(&bundle.catalog)?;
            let checksum = options.checksum.ok_or_else(|| {
                ApiError::bad_request(
                    codes::MISSING_FIELD,
                    "field `checksum` is required for encrypted bundles (the checksum printed by `npx @capgo/cli bundle encrypt`)",
                )
            })?;
            let (path, dir, key_for_check, sk, sum) =
                (staged_path.clone(), staging_dir.clone(), key.clone(), session_key.clone(), checksum.clone());
            let max_unpacked = state.settings.max_upload_bytes;
            let decrypted =
                blocking(move || decrypt_and_check(&path, &dir, &key_for_check, &sk, &sum, max_unpacked)).await?;
            tracing::debug!(plain.sha256 = %decrypted.plain_sha256, form = ?decrypted.checksum_form, "encrypted upload checks out");
            let encryption = BundleEncryption { session_key, key_id: Some(key.key_id().to_owned()) };
            (checksum, None, Some(encryption), Some(decrypted.plain))
        }
        None => {
            if let Some(expected) = options.checksum {
                let expected = expected.to_ascii_lowercase();
                if expected != staged.sha256 && expected != staged.crc32 {
                    return Err(ApiError::bad_request(
                        codes::CHECKSUM_MISMATCH,
                        format!(
                            "checksum {expected} does not match the uploaded bytes (sha256 {}); the file was changed or truncated on the way, upload it again",
                            staged.sha256
                        ),
                    ));
                }
            }
            let (path, max_unpacked) = (staged_path.clone(), state.settings.max_upload_bytes);
            blocking(move || check_plain_zip(&path, max_unpacked)).await?;
            (staged.sha256.clone(), Some(staged.crc32.clone()), None, None)
        }
    };
    drop(plain_zip);

    // Store the files of a delta bundle, then the zip, all content-addressed.
    let manifest = if options.delta { store_files(state, &bundle.app_id, &staged_path).await? } else { Vec::new() };
    let object_key = StorageKey::Bundle { app_id: &bundle.app_id, sha256: &staged.sha256 }.object_key();
    let created_object =
        objects::put_content_addressed(state, &object_key, &staged_path, Some("application/zip")).await?;
    let source = BundleSource::Stored {
        object_key: object_key.to_string(),
        size_bytes: staged.size_bytes,
        sha256: staged.sha256.clone(),
    };
    let new_bundle = NewBundle {
        app_id: bundle.app_id.clone(),
        version: bundle.version.clone(),
        checksum,
        crc32,
        encryption,
        min_update_version: bundle.min_update_version.clone(),
        source,
        manifest,
        metadata: bundle.metadata.clone(),
    };
    let recorded = record(state, by, bundle, &new_bundle).await;
    if recorded.is_err() && created_object {
        objects::remove_unused(state, &[object_key.to_string()], "the object of a bundle that was not recorded").await;
    }
    let recorded = recorded?;
    tracing::info!(app.id = %bundle.app_id, bundle.version = %bundle.version, size_bytes = staged.size_bytes, "stored bundle");
    Ok(recorded)
}

/// Registers a bundle hosted at an `https://` URL, by its checksum (SHA-256 of the zip, or the encrypted checksum).
pub(crate) async fn register_external(
    state: &AppState,
    by: &Caller,
    bundle: &BundleFields,
    url: String,
    checksum: Option<String>,
    session_key: Option<String>,
) -> Result<RecordedBundle, ApiError> {
    if !url.starts_with("https://") || url.contains(char::is_whitespace) || url.len() <= "https://".len() {
        return Err(ApiError::bad_request(
            "invalid_external_url",
            format!("external_url must be an https:// URL (devices refuse cleartext), got {url:?}"),
        ));
    }
    let checksum = checksum.ok_or_else(|| {
        ApiError::bad_request(
            codes::MISSING_FIELD,
            "field `checksum` is required (the SHA-256 of the zip, or the encrypted checksum)",
        )
    })?;
    let encryption = match session_key {
        Some(session_key) => {
            let key = app_key(&bundle.catalog)?;
            key.session_key(&session_key).map_err(|e| ApiError::bad_request("invalid_encryption", e.to_string()))?;
            Some(BundleEncryption { session_key, key_id: Some(key.key_id().to_owned()) })
        }
        None => None,
    };
    let checksum = if encryption.is_some() {
        checksum
    } else {
        sha256_hex(&checksum).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_checksum",
                "checksum must be the lowercase hex SHA-256 of the zip (64 characters)",
            )
        })?
    };
    let new_bundle = NewBundle {
        app_id: bundle.app_id.clone(),
        version: bundle.version.clone(),
        checksum,
        crc32: None,
        encryption,
        min_update_version: bundle.min_update_version.clone(),
        source: BundleSource::External { url },
        manifest: Vec::new(),
        metadata: bundle.metadata.clone(),
    };
    record(state, by, bundle, &new_bundle).await
}

/// Which bundles to delete.
pub(crate) enum DeleteTarget {
    /// This version, which must exist and be unused.
    Version(String),
    /// Every bundle no channel, device or rollout that is not completed points at.
    Unused,
}

/// Deletes bundles; returns the versions deleted. Objects no live bundle uses any more leave storage.
pub(crate) async fn delete(
    state: &AppState,
    by: &Caller,
    app_id: &AppId,
    target: DeleteTarget,
) -> Result<Vec<String>, ApiError> {
    let catalog = state.catalog(app_id)?;
    let deleting_one = matches!(target, DeleteTarget::Version(_));
    let targets: Vec<(i64, String)> = match target {
        DeleteTarget::Version(version) => {
            let bundle = catalog.bundle_by_version(&version).ok_or_else(|| {
                ApiError::not_found("bundle_not_found", format!("bundle {version} does not exist for {app_id}"))
            })?;
            vec![(bundle.id, version)]
        }
        DeleteTarget::Unused => catalog.bundles().map(|b| (b.id, b.version.as_str().to_owned())).collect(),
    };
    let mut deleted = Vec::new();
    for (bundle_id, version) in targets {
        // A rollout that is not completed still serves its candidate (or may again, on resume).
        let in_rollout = catalog.rollouts().any(|stored| {
            !matches!(stored.rollout.state(), updraft_core::RolloutState::Completed { .. })
                && matches!(stored.rollout.candidate(), updraft_core::RolloutTarget::CapgoBundle(candidate) if candidate.as_str() == version)
        });
        if in_rollout {
            if deleting_one {
                return Err(ApiError::bad_request(
                    "cannot_delete_linked_version",
                    format!("bundle {version} is the candidate of a rollout; complete it or start another one first"),
                ));
            }
            continue;
        }
        match state.store.delete_bundle(app_id, bundle_id).await {
            Ok(orphaned) => {
                objects::remove_unused(state, &orphaned, "a deleted bundle's object").await;
                deleted.push(version);
            }
            Err(StoreError::Conflict(_)) if deleting_one => {
                return Err(ApiError::bad_request(
                    "cannot_delete_linked_version",
                    format!(
                        "bundle {version} is used by a channel, a device override or a rollout; point them elsewhere \
                         (or complete the rollout) first"
                    ),
                ));
            }
            Err(StoreError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    state.refresh(app_id).await?;
    if !deleted.is_empty() {
        let before = Some(serde_json::json!({ "bundles": deleted }));
        let change = Change { app_id: Some(app_id), channel: None, action: "bundle.delete", before, after: None };
        audit::append(state, by.key_name(), change).await?;
    }
    Ok(deleted)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::Internal(e.into()))?
}

/// Unpacks a plain zip and stores each file content-addressed; returns the complete manifest, with one entry per
/// path the device writes (`updraft_core::delta_manifest_files`: a `.br` copy next to its original is left out).
async fn store_files(
    state: &AppState,
    app_id: &AppId,
    zip_path: &std::path::Path,
) -> Result<Vec<ManifestEntry>, ApiError> {
    let workdir = tempfile::tempdir_in(state.settings.staging_dir())
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("unpacking a bundle")))?;
    // What a bundle unpacks to is never more than the upload limit, declared or actual.
    let (path, into, cap) = (zip_path.to_path_buf(), workdir.path().to_path_buf(), state.settings.max_upload_bytes);
    let files = blocking(move || {
        let layout = check_plain_zip(&path, cap)?;
        let files = unpack_files(&path, &layout, &into, cap)?;
        let names: Vec<&str> = files.iter().map(|f| f.file_name.as_str()).collect();
        let kept: std::collections::HashSet<String> = delta_manifest_files(&names)
            .map_err(|e| ApiError::bad_request(codes::INVALID_BUNDLE, e.to_string()))?
            .into_iter()
            .map(str::to_owned)
            .collect();
        Ok(files.into_iter().filter(|f| kept.contains(&f.file_name)).collect::<Vec<_>>())
    })
    .await?;
    let mut manifest = Vec::with_capacity(files.len());
    for file in files {
        let key = StorageKey::File { app_id, sha256: &file.sha256 }.object_key();
        objects::put_content_addressed(state, &key, &file.path, Some("application/octet-stream")).await?;
        // Its brotli copy is what a plugin that decodes `.br` files downloads (`updraft_core::DeltaBrotli`).
        let copies =
            encodings::store_encodings(state, &key, &file.path, None, encodings::CopyPolicy::AlwaysBrotli).await?;
        manifest.push(ManifestEntry {
            file_name: file.file_name,
            file_hash: file.sha256,
            object_key: key.to_string(),
            size_bytes: Some(file.size_bytes),
            br_size_bytes: copies.brotli,
        });
    }
    manifest.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(manifest)
}

/// Records a bundle (pointing the named channel at it) and refreshes the release index.
async fn record(
    state: &AppState,
    by: &Caller,
    bundle: &BundleFields,
    new_bundle: &NewBundle,
) -> Result<RecordedBundle, ApiError> {
    let channel_before = bundle.channel.as_ref().and_then(|name| {
        bundle.catalog.channel_by_name(name.as_str()).map(|c| super::channels::channel_view(c, &bundle.catalog))
    });
    let channel_write = bundle.channel.clone().map(|name| {
        let update = bundle.catalog.channel_update_for_publish(name.as_str());
        (name, update)
    });
    let stored = match state.store.insert_bundle(new_bundle, channel_write.as_ref()).await {
        Ok(stored) => stored,
        Err(StoreError::Conflict(_)) => return Err(version_exists(&bundle.app_id, &bundle.version)),
        Err(other) => return Err(other.into()),
    };
    state.refresh(&bundle.app_id).await?;
    let after = serde_json::json!({
        "version": stored.version.as_str(),
        "checksum": stored.checksum,
        "encrypted": stored.encryption.is_some(),
        "channel": bundle.channel.as_ref().map(|name| name.as_str()),
    });
    let change = Change {
        app_id: Some(&bundle.app_id),
        channel: bundle.channel.as_ref().map(|name| name.as_str()),
        action: "bundle.publish",
        before: channel_before,
        after: Some(after),
    };
    audit::append(state, by.key_name(), change).await?;
    let channel = channel_write.map(|(name, _)| name);
    state.webhooks.send(crate::webhooks::bundle_published(&stored, channel.as_ref()));
    Ok(RecordedBundle { bundle: stored, channel })
}

fn version_exists(app_id: &AppId, version: &BundleVersion) -> ApiError {
    ApiError::client(
        FailureKind::Conflict,
        codes::VERSION_ALREADY_EXISTS,
        format!("bundle {version} already exists for {app_id}; bump the version (bundles are immutable)"),
    )
}
