//! Publishing and managing Expo releases over the API (API key): content-addressed asset uploads, release
//! creation, listing, rollback (to an earlier release or to the embedded update) and promotion to another channel.
//!
//! A release is recorded only after every asset it names is stored, and rollbacks and promotions mint new releases
//! (new id, `createdAt` strictly after everything on the channel) because clients only move to newer updates.

use std::collections::HashSet;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use futures::StreamExt;
use md5::{Digest as _, Md5};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use updraft_capgo::error_codes;
use updraft_core::{
    AppCatalog, AppId, ChannelName, ExpoAsset, ExpoRelease, ExpoReleaseKind, Platform, UnsafeAsset,
    check_asset_extension, expo_time, next_release_time,
};
use updraft_oss::{PutMode, PutOptions};

use crate::api_error::ApiError;
use crate::auth::authenticate;
use crate::routes::call::{json_call, params_call};
use crate::state::AppState;
use crate::storage_layout::StorageKey;

fn app_of(path: &str) -> Result<AppId, ApiError> {
    AppId::parse(path).map_err(|e| ApiError::bad_request(error_codes::INVALID_APP_ID, e.to_string()))
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `PUT /expo/{app_id}/assets/{sha256}`: the raw bytes of one asset. The digest in the path must match.
pub(crate) async fn upload_asset(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&request, &state).await?;
    let (app, sha256) = path.into_inner();
    let app_id = app_of(&app)?;
    caller.require_app(&app_id)?;
    state.catalog(&app_id)?;
    if !is_sha256(&sha256) {
        return Err(ApiError::bad_request(
            "invalid_digest",
            "the path must end in the lowercase hex SHA-256 of the body",
        ));
    }
    let internal = |e: std::io::Error| ApiError::Internal(anyhow::Error::new(e).context("staging an asset"));
    tokio::fs::create_dir_all(state.settings.staging_dir()).await.map_err(internal)?;
    let staged = tempfile::NamedTempFile::new_in(state.settings.staging_dir()).map_err(internal)?;
    let mut file = tokio::fs::File::from_std(staged.reopen().map_err(internal)?);
    let (mut sha, mut md5, mut size) = (Sha256::new(), Md5::new(), 0u64);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(error_codes::INVALID_REQUEST, format!("the upload was interrupted: {e}"))
        })?;
        size += chunk.len() as u64;
        if size > state.settings.max_upload_bytes {
            return Err(ApiError::status(
                413,
                error_codes::BODY_TOO_LARGE,
                "the asset is larger than UPDRAFT_MAX_UPLOAD_BYTES",
            ));
        }
        sha.update(&chunk);
        md5.update(&chunk);
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.sync_all().await.map_err(internal)?;
    let actual = hex::encode(sha.finalize());
    if actual != sha256 {
        return Err(ApiError::bad_request(
            error_codes::CHECKSUM_MISMATCH,
            format!("the body hashes to {actual}, not {sha256}; the file changed or was truncated on the way"),
        ));
    }
    let md5 = hex::encode(md5.finalize());
    let key = StorageKey::ExpoAsset { app_id: &app_id, sha256: &sha256 }.object_key();
    let reader = tokio::fs::File::open(staged.path()).await.map_err(internal)?;
    let body = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).boxed();
    match state.objects.put(&key, body, PutOptions { mode: PutMode::Create, ..PutOptions::default() }).await {
        Ok(_) | Err(updraft_oss::Error::AlreadyExists { .. }) => {}
        Err(other) => return Err(other.into()),
    }
    // Recorded only once the bytes are stored: a release can only name assets that exist.
    state.store.insert_expo_asset(&app_id, &sha256, &md5, size).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ok", "sha256": sha256, "md5": md5, "size": size })))
}

#[derive(Deserialize)]
struct MissingRequest {
    sha256: Vec<String>,
}

/// `POST /expo/{app_id}/assets/missing {"sha256": [...]}`: which of these the server does not have yet.
pub(crate) async fn missing_assets(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let call = json_call(&request, &state, payload).await?;
    let app_id = app_of(&path.into_inner())?;
    call.caller.require_app(&app_id)?;
    state.catalog(&app_id)?;
    let asked: MissingRequest = serde_json::from_value(Value::Object(call.params)).map_err(|e| {
        ApiError::bad_request(error_codes::INVALID_JSON_BODY, format!("expected {{\"sha256\": [...]}}: {e}"))
    })?;
    let known = state.store.expo_asset_md5s(&app_id, &asked.sha256).await?;
    let missing: Vec<&String> = asked.sha256.iter().filter(|sha| !known.contains_key(*sha)).collect();
    Ok(HttpResponse::Ok().json(json!({ "missing": missing })))
}

#[derive(Deserialize)]
struct AssetRef {
    sha256: String,
    #[serde(default)]
    ext: String,
}

impl AssetRef {
    /// The extension without its one optional leading dot (`metadata.json` writes `png`; a manifest `.png`).
    fn extension(&self) -> &str {
        self.ext.strip_prefix('.').unwrap_or(&self.ext)
    }
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

#[derive(Deserialize)]
struct PlatformFiles {
    platform: String,
    /// This platform's runtime version (the fingerprint policy gives each platform its own); default: the
    /// publish's `runtime_version`.
    runtime_version: Option<String>,
    launch_asset: AssetRef,
    #[serde(default)]
    assets: Vec<AssetRef>,
}

#[derive(Deserialize)]
struct PublishRequest {
    channel: String,
    runtime_version: Option<String>,
    #[serde(default)]
    message: String,
    expo_client: Value,
    platforms: Vec<PlatformFiles>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(error_codes::INVALID_JSON_BODY, message)
}

fn checked_runtime(runtime_version: &str) -> Result<(), ApiError> {
    if runtime_version.is_empty() || runtime_version.len() > 256 || runtime_version.chars().any(char::is_control) {
        return Err(bad("runtime_version must be the app's runtime version (1 to 256 printable characters)"));
    }
    Ok(())
}

fn checked_channel(channel: &str) -> Result<String, ApiError> {
    Ok(ChannelName::parse(channel).map_err(|e| bad(e.to_string()))?.as_str().to_owned())
}

fn release_json(release: &ExpoRelease) -> Value {
    let (kind, launch, n_assets) = match &release.kind {
        ExpoReleaseKind::Update { launch_asset, assets, .. } => {
            ("update", Value::String(launch_asset.sha256.clone()), assets.len())
        }
        ExpoReleaseKind::RollBackToEmbedded => ("rollback_to_embedded", Value::Null, 0),
    };
    json!({
        "id": release.id,
        "group_id": release.group_id,
        "channel": release.channel,
        "runtime_version": release.runtime_version,
        "platform": release.platform.as_str(),
        "created_at": expo_time(release.created_at),
        "message": release.message,
        "kind": kind,
        "launch_asset_sha256": launch,
        "assets": n_assets,
    })
}

/// New releases get `createdAt` strictly after every release already on the channel.
fn release_time(catalog: &AppCatalog, channel: &str) -> chrono::DateTime<Utc> {
    let latest = catalog.expo_releases().iter().filter(|r| r.channel == channel).map(|r| r.created_at).max();
    next_release_time(Utc::now(), latest)
}

async fn record(state: &AppState, app_id: &AppId, releases: Vec<ExpoRelease>) -> Result<HttpResponse, ApiError> {
    state.store.insert_expo_releases(&releases).await?;
    state.refresh(app_id).await?;
    let listed: Vec<Value> = releases.iter().map(release_json).collect();
    tracing::info!(app.id = %app_id, n_releases = releases.len(), "recorded Expo releases");
    Ok(HttpResponse::Ok().json(json!({ "status": "ok", "releases": listed })))
}

/// The start of every JSON release operation: authenticate, check the app, and read the body as `T`.
async fn app_json_call<T: serde::de::DeserializeOwned>(
    request: &HttpRequest,
    state: &AppState,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<(AppId, std::sync::Arc<AppCatalog>, T), ApiError> {
    let call = json_call(request, state, payload).await?;
    let app_id = app_of(&path.into_inner())?;
    call.caller.require_app(&app_id)?;
    let catalog = state.catalog(&app_id)?;
    let body = serde_json::from_value(Value::Object(call.params)).map_err(|e| bad(e.to_string()))?;
    Ok((app_id, catalog, body))
}

/// `POST /expo/{app_id}/releases`: record a publish whose assets are all stored.
pub(crate) async fn publish(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (app_id, catalog, publish): (_, _, PublishRequest) = app_json_call(&request, &state, path, payload).await?;
    let channel = checked_channel(&publish.channel)?;
    if let Some(runtime_version) = &publish.runtime_version {
        checked_runtime(runtime_version)?;
    }
    if !publish.expo_client.is_object() {
        return Err(bad("expo_client must be the public app config object (`npx expo config --json --type public`)"));
    }
    if publish.platforms.is_empty() {
        return Err(bad("platforms must name at least one of ios and android"));
    }
    // Refused before anything else: expo-updates names each file <key>.<ext> on the device.
    for asset in publish.platforms.iter().flat_map(|p| std::iter::once(&p.launch_asset).chain(&p.assets)) {
        check_asset_extension(asset.extension()).map_err(unsafe_asset)?;
    }
    let wanted: Vec<String> = publish
        .platforms
        .iter()
        .flat_map(|p| std::iter::once(&p.launch_asset).chain(&p.assets))
        .map(|a| a.sha256.to_ascii_lowercase())
        .collect();
    let md5s = state.store.expo_asset_md5s(&app_id, &wanted).await?;
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
    let asset = |r: &AssetRef| {
        let sha256 = r.sha256.to_ascii_lowercase();
        ExpoAsset { md5: md5s[&sha256].clone(), sha256, ext: r.extension().to_owned() }
    };
    let created_at = release_time(&catalog, &channel);
    let group_id = uuid::Uuid::new_v4().to_string();
    let expo_client = serde_json::to_string(&publish.expo_client).map_err(|e| bad(e.to_string()))?;
    let mut seen = HashSet::new();
    let mut releases = Vec::new();
    for files in &publish.platforms {
        let platform = match Platform::parse(&files.platform) {
            Ok(platform @ (Platform::Ios | Platform::Android)) => platform,
            _ => return Err(bad(format!("platform must be ios or android, got {:?}", files.platform))),
        };
        if !seen.insert(platform) {
            return Err(bad(format!("platform {platform} is listed twice")));
        }
        let runtime_version = files.runtime_version.as_ref().or(publish.runtime_version.as_ref()).ok_or_else(|| {
            bad(format!("no runtime version for {platform}: give runtime_version for the publish or for the platform"))
        })?;
        checked_runtime(runtime_version)?;
        let launch_asset = asset(&files.launch_asset);
        let mut assets: Vec<ExpoAsset> = Vec::new();
        for entry in files.assets.iter().map(asset) {
            // The launch asset is not repeated among the assets, and keys are unique within a manifest.
            if entry.md5 != launch_asset.md5 && !assets.iter().any(|a| a.md5 == entry.md5) {
                assets.push(entry);
            }
        }
        std::iter::once(&launch_asset).chain(&assets).try_for_each(ExpoAsset::check).map_err(unsafe_asset)?;
        releases.push(ExpoRelease {
            id: uuid::Uuid::new_v4().to_string(),
            group_id: group_id.clone(),
            app_id: app_id.clone(),
            channel: channel.clone(),
            runtime_version: runtime_version.clone(),
            platform,
            created_at,
            message: publish.message.clone(),
            kind: ExpoReleaseKind::Update { launch_asset, assets, expo_client: expo_client.clone() },
        });
    }
    record(&state, &app_id, releases).await
}

/// `GET /expo/{app_id}/releases[?channel=&runtime_version=]`: newest first.
pub(crate) async fn list(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let call = params_call(&request, &state, payload).await?;
    let app_id = app_of(&path.into_inner())?;
    call.caller.require_app(&app_id)?;
    let catalog = state.catalog(&app_id)?;
    let text = |name: &str| call.params.get(name).and_then(Value::as_str).map(str::to_owned);
    let (channel, runtime) = (text("channel"), text("runtime_version"));
    let mut releases: Vec<&ExpoRelease> = catalog
        .expo_releases()
        .iter()
        .filter(|r| channel.as_ref().is_none_or(|c| *c == r.channel))
        .filter(|r| runtime.as_ref().is_none_or(|v| *v == r.runtime_version))
        .collect();
    releases.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.platform.as_str().cmp(b.platform.as_str())));
    Ok(HttpResponse::Ok().json(releases.into_iter().map(release_json).collect::<Vec<_>>()))
}

#[derive(Deserialize)]
struct RollbackRequest {
    channel: String,
    /// Needed to roll back to the embedded update; with `to`, only releases of this runtime version are taken
    /// (default: each referenced release keeps its own, so a publish group with per-platform runtime versions rolls
    /// back whole).
    runtime_version: Option<String>,
    /// A release id or group id to roll back to.
    to: Option<String>,
    #[serde(default)]
    embedded: bool,
    platform: Option<String>,
}

/// The releases a reference names: a release id gives that release, a group id every platform of that publish.
fn referenced<'a>(catalog: &'a AppCatalog, reference: &str) -> Vec<&'a ExpoRelease> {
    match catalog.expo_release(reference) {
        Some(release) => vec![release],
        None => catalog.expo_releases().iter().filter(|r| r.group_id.eq_ignore_ascii_case(reference)).collect(),
    }
}

fn copy_release(
    source: &ExpoRelease,
    channel: &str,
    runtime_version: &str,
    created_at: chrono::DateTime<Utc>,
    group_id: &str,
    message: String,
) -> ExpoRelease {
    ExpoRelease {
        id: uuid::Uuid::new_v4().to_string(),
        group_id: group_id.to_owned(),
        app_id: source.app_id.clone(),
        channel: channel.to_owned(),
        runtime_version: runtime_version.to_owned(),
        platform: source.platform,
        created_at,
        message,
        kind: source.kind.clone(),
    }
}

/// `POST /expo/{app_id}/releases/rollback {channel, to[, runtime_version] | embedded: true, runtime_version[,
/// platform]}`.
pub(crate) async fn rollback(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (app_id, catalog, rollback): (_, _, RollbackRequest) = app_json_call(&request, &state, path, payload).await?;
    let channel = checked_channel(&rollback.channel)?;
    if let Some(runtime_version) = &rollback.runtime_version {
        checked_runtime(runtime_version)?;
    }
    let platforms: Vec<Platform> = match rollback.platform.as_deref() {
        None | Some("all") => vec![Platform::Ios, Platform::Android],
        Some(raw) => match Platform::parse(raw) {
            Ok(platform @ (Platform::Ios | Platform::Android)) => vec![platform],
            _ => return Err(bad(format!("platform must be ios, android or all, got {raw:?}"))),
        },
    };
    let created_at = release_time(&catalog, &channel);
    let group_id = uuid::Uuid::new_v4().to_string();
    let releases: Vec<ExpoRelease> = match (&rollback.to, rollback.embedded) {
        (Some(_), true) | (None, false) => {
            return Err(bad("give exactly one of `to` (a release or group id) and `embedded: true`"));
        }
        (None, true) => {
            let runtime_version = rollback.runtime_version.as_ref().ok_or_else(|| {
                bad("rolling back to the embedded update needs runtime_version (and platform, when the platforms' runtime versions differ)")
            })?;
            platforms
                .iter()
                .map(|platform| ExpoRelease {
                    id: uuid::Uuid::new_v4().to_string(),
                    group_id: group_id.clone(),
                    app_id: app_id.clone(),
                    channel: channel.clone(),
                    runtime_version: runtime_version.clone(),
                    platform: *platform,
                    created_at,
                    message: "roll back to the embedded update".into(),
                    kind: ExpoReleaseKind::RollBackToEmbedded,
                })
                .collect()
        }
        (Some(reference), false) => {
            let sources: Vec<&ExpoRelease> = referenced(&catalog, reference)
                .into_iter()
                .filter(|r| platforms.contains(&r.platform))
                .filter(|r| r.channel == channel)
                .filter(|r| rollback.runtime_version.as_ref().is_none_or(|v| *v == r.runtime_version))
                .collect();
            check_sources(&sources)?;
            if sources.is_empty() {
                let runtime = rollback.runtime_version.as_ref().map(|v| format!(" for runtime version {v}"));
                return Err(ApiError::status(
                    404,
                    "release_not_found",
                    format!("no release or group {reference} on channel {channel}{}", runtime.unwrap_or_default()),
                ));
            }
            sources
                .into_iter()
                .map(|source| {
                    copy_release(
                        source,
                        &channel,
                        &source.runtime_version,
                        created_at,
                        &group_id,
                        format!("roll back to {}", source.id),
                    )
                })
                .collect()
        }
    };
    record(&state, &app_id, releases).await
}

#[derive(Deserialize)]
struct PromoteRequest {
    release: String,
    to_channel: String,
}

/// `POST /expo/{app_id}/releases/promote {release, to_channel}`: the same files on another channel, as a new release.
pub(crate) async fn promote(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (app_id, catalog, promote): (_, _, PromoteRequest) = app_json_call(&request, &state, path, payload).await?;
    let channel = checked_channel(&promote.to_channel)?;
    let sources = referenced(&catalog, &promote.release);
    check_sources(&sources)?;
    if sources.is_empty() {
        return Err(ApiError::status(
            404,
            "release_not_found",
            format!("no release or group {} in app {app_id}", promote.release),
        ));
    }
    let created_at = release_time(&catalog, &channel);
    let group_id = uuid::Uuid::new_v4().to_string();
    let releases = sources
        .into_iter()
        .map(|source| {
            let message = format!("promoted from {} ({})", source.channel, source.id);
            copy_release(source, &channel, &source.runtime_version, created_at, &group_id, message)
        })
        .collect();
    record(&state, &app_id, releases).await
}
