//! `updraft publish expo`: publish what `npx expo export` wrote. Every file named by `metadata.json` is hashed,
//! files the gateway already has are skipped, the rest are uploaded content-addressed, and only then is the release
//! recorded, so a publish that fails half-way leaves nothing visible.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use updraft_core::{AppId, ChannelName, Platform};
use updraft_expo::app_config::{RuntimeFlags, runtime_versions};
use updraft_expo::export_ingest::{bundle_extension, parse_metadata};

use crate::cli::ExpoPublish;
use crate::commands::api_client::ApiClient;
use crate::contract::expo::{AssetRef, MissingAssetsRequest, MissingAssetsResponse, PlatformFiles, PublishRequest};

/// A file of the export, checked to be inside it.
struct ExportFile {
    path: PathBuf,
    sha256: String,
    size: u64,
}

pub(crate) async fn publish_expo(publish: ExpoPublish) -> anyhow::Result<()> {
    let client = ApiClient::new(&publish.server)?;
    let runtime_flags = RuntimeFlags {
        all: publish.runtime_version.clone(),
        ios: publish.ios_runtime_version.clone(),
        android: publish.android_runtime_version.clone(),
    };
    AppId::parse(&publish.app_id).context("--app")?;
    ChannelName::parse(&publish.channel).context("--channel")?;
    let platforms = match publish.platform.as_str() {
        "all" => vec![],
        "ios" => vec![Platform::Ios],
        "android" => vec![Platform::Android],
        other => bail!("--platform must be ios, android or all, got {other:?}"),
    };
    let dist = publish
        .dist_dir
        .canonicalize()
        .with_context(|| format!("{} is not an `npx expo export` output folder", publish.dist_dir.display()))?;
    let metadata_path = dist.join("metadata.json");
    let metadata = std::fs::read_to_string(&metadata_path).with_context(|| {
        format!("{} has no metadata.json; pass the folder `npx expo export` wrote (dist/)", publish.dist_dir.display())
    })?;
    let exports = parse_metadata(&metadata, &platforms)?;
    let config_path = publish.expo_config.clone().unwrap_or_else(|| dist.join("expoConfig.json"));
    let config_text = std::fs::read_to_string(&config_path).with_context(|| {
        format!(
            "reading the public app config {}; write it with `npx expo config --json --type public > {}` or pass --expo-config",
            config_path.display(),
            dist.join("expoConfig.json").display()
        )
    })?;
    let expo_client: Value =
        serde_json::from_str(&config_text).with_context(|| format!("{} is not JSON", config_path.display()))?;
    anyhow::ensure!(
        expo_client.is_object(),
        "{} must hold a JSON object (the public app config)",
        config_path.display()
    );
    let published: Vec<Platform> = exports.iter().map(|export| export.platform).collect();
    // Settled before anything is uploaded, so a wrong runtime version costs nothing.
    let runtime_versions: BTreeMap<&str, String> = runtime_versions(&expo_client, &published, &runtime_flags)?
        .into_iter()
        .map(|(platform, version)| (platform.as_str(), version))
        .collect();

    // Hash every file once, whatever number of platforms name it.
    let mut files: BTreeMap<String, ExportFile> = BTreeMap::new();
    for export in &exports {
        for relative in std::iter::once(&export.bundle).chain(export.assets.iter().map(|(path, _)| path)) {
            if !files.contains_key(relative) {
                files.insert(relative.clone(), hash_file(&dist, relative).await?);
            }
        }
    }
    let asked = MissingAssetsRequest { sha256: files.values().map(|f| f.sha256.clone()).collect() };
    let MissingAssetsResponse { missing } =
        client.post(&format!("/expo/{}/assets/missing", publish.app_id), &asked).await?;
    let to_send: Vec<&ExportFile> = files.values().filter(|f| missing.contains(&f.sha256)).collect();
    let total: u64 = to_send.iter().map(|f| f.size).sum();
    let progress = if std::io::stderr().is_terminal() { ProgressBar::new(total) } else { ProgressBar::hidden() };
    progress.set_style(
        ProgressStyle::with_template("{spinner} uploading [{bar:30}] {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut sent = std::collections::HashSet::new();
    for file in to_send {
        if !sent.insert(&file.sha256) {
            continue;
        }
        progress.set_message(file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let reader =
            tokio::fs::File::open(&file.path).await.with_context(|| format!("opening {}", file.path.display()))?;
        let ticker = progress.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                ticker.inc(bytes.len() as u64);
            }
        });
        let request = client
            .request(reqwest::Method::PUT, &format!("/expo/{}/assets/{}", publish.app_id, file.sha256))
            .header("content-length", file.size)
            .body(reqwest::Body::wrap_stream(stream));
        client.send(request).await?;
    }
    progress.finish_and_clear();

    let asset = |path: &String, ext: &str| AssetRef { sha256: files[path].sha256.clone(), ext: ext.to_owned() };
    let body = PublishRequest {
        channel: publish.channel.clone(),
        runtime_version: None,
        message: publish.message.clone(),
        expo_client,
        platforms: exports
            .iter()
            .map(|export| PlatformFiles {
                platform: export.platform.as_str().to_owned(),
                runtime_version: Some(runtime_versions[export.platform.as_str()].clone()),
                launch_asset: asset(&export.bundle, &bundle_extension(&export.bundle)),
                assets: export.assets.iter().map(|(path, ext)| asset(path, ext)).collect(),
            })
            .collect(),
        rollout: publish.rollout.map(|percent| crate::contract::rollouts::PublishRollout {
            percent: percent.as_percent(),
            max_failure_rate: None,
            min_devices: None,
        }),
    };
    let answer: Value = client.post(&format!("/expo/{}/releases", publish.app_id), &body).await?;
    if publish.json {
        println!("{answer}");
    }
    let releases: Vec<&Value> = answer["releases"].as_array().into_iter().flatten().collect();
    let described: Vec<String> = releases
        .iter()
        .map(|r| {
            let field = |name: &str| r[name].as_str().unwrap_or_default().to_owned();
            format!("{} {} (runtime {})", field("platform"), field("id"), field("runtime_version"))
        })
        .collect();
    let group = releases.first().and_then(|r| r["group_id"].as_str()).unwrap_or_default();
    if let Some(percent) = publish.rollout {
        eprintln!(
            "rollout of group {group} started at {percent} of channel {}; raise it with updraft rollout set --app {} --channel {} --percent P",
            publish.channel, publish.app_id, publish.channel
        );
    }
    eprintln!(
        "published {app} to channel {channel} as group {group}: {} ({} of {} files uploaded, the rest were already stored); to return every platform to it later: updraft release rollback --app {app} --channel {channel} --to {group}",
        described.join(", "),
        sent.len(),
        files.len(),
        app = publish.app_id,
        channel = publish.channel,
    );
    Ok(())
}

/// Hashes `relative` inside `dist`, refusing anything that resolves outside it (symlinks included).
async fn hash_file(dist: &Path, relative: &str) -> anyhow::Result<ExportFile> {
    let path = dist
        .join(relative)
        .canonicalize()
        .with_context(|| format!("metadata.json names {relative}, which is missing from {}", dist.display()))?;
    if !path.starts_with(dist) {
        bail!("metadata.json names {relative}, which resolves outside {}", dist.display());
    }
    let mut file = tokio::fs::File::open(&path).await.with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).await.with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok(ExportFile { path, sha256: hex::encode(hasher.finalize()), size })
}
