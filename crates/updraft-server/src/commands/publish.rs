//! `updraft publish capgo`: upload a bundle to a running gateway over `POST /bundle`, with a progress bar on a
//! terminal. A folder is zipped first, exactly as `@capgo/cli bundle zip` lays it out.

use std::io::IsTerminal;

use anyhow::Context;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::cli::CapgoPublish;
use crate::commands::api_client::ApiClient;

pub(crate) async fn publish_capgo(publish: CapgoPublish) -> anyhow::Result<()> {
    let client = ApiClient::new(&publish.server)?;
    updraft_core::BundleVersion::parse(&publish.version).context("--version")?;
    updraft_core::AppId::parse(&publish.app_id).context("--app")?;
    let on_terminal = std::io::stderr().is_terminal();
    let metadata = std::fs::metadata(&publish.path).with_context(|| format!("reading {}", publish.path.display()))?;
    // Keep the temp zip alive until the upload is done.
    let (zip_path, _temp_zip) = if metadata.is_dir() {
        let temp = tempfile::Builder::new().suffix(".zip").tempfile().context("creating a temporary zip")?;
        let folder = publish.path.clone();
        let target = temp.reopen().context("opening the temporary zip")?;
        let n_files = tokio::task::spawn_blocking(move || updraft_capgo::bundle_zip::zip_folder(&folder, target))
            .await
            .context("zipping the folder")??;
        if on_terminal {
            eprintln!("zipped {n_files} files from {}", publish.path.display());
        }
        (temp.path().to_path_buf(), Some(temp))
    } else {
        (publish.path.clone(), None)
    };
    let checked = zip_path.clone();
    let calls_ready = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&checked).ok()?;
        updraft_capgo::bundle_zip::calls_notify_app_ready(std::io::BufReader::new(file)).ok()
    })
    .await
    .context("checking the build")?;
    // A zip that cannot be read is left to the server, whose answer says what is wrong with it.
    if calls_ready == Some(false) {
        // `@capgo/cli bundle zip` refuses such a build; publishing it is allowed (the check is a heuristic) but
        // every device would roll it back.
        eprintln!(
            "warning: no .js file in {} calls notifyAppReady(); devices roll back a bundle that does not call it within appReadyTimeout (see https://capgo.app/docs/plugin/api/#notifyappready)",
            publish.path.display()
        );
    }
    let size = std::fs::metadata(&zip_path).context("reading the zip")?.len();
    let checksum = sha256_file(&zip_path).await?;

    let progress = if on_terminal { ProgressBar::new(size) } else { ProgressBar::hidden() };
    progress.set_style(
        ProgressStyle::with_template("{spinner} uploading [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let file = tokio::fs::File::open(&zip_path).await.context("opening the zip")?;
    let ticker = progress.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            ticker.inc(bytes.len() as u64);
        }
    });
    let file_part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), size)
        .file_name(format!("{}_{}.zip", publish.app_id, publish.version))
        .mime_str("application/zip")?;
    let mut form = reqwest::multipart::Form::new()
        .text("app_id", publish.app_id.clone())
        .text("version", publish.version.clone())
        .text("checksum", checksum.clone());
    // With --rollout the channel keeps serving its bundle: the new one is offered only by the rollout started below.
    if let (Some(channel), None) = (&publish.channel, publish.rollout) {
        form = form.text("channel", channel.clone());
    }
    if let Some(min) = &publish.min_update_version {
        form = form.text("min_update_version", min.clone());
    }
    if publish.delta {
        form = form.text("delta", "true");
    }
    if let Some(link) = &publish.link {
        form = form.text("link", link.clone());
    }
    if let Some(comment) = &publish.comment {
        form = form.text("comment", comment.clone());
    }
    let form = form.part("file", file_part);
    let request = client.request(reqwest::Method::POST, "/bundle").multipart(form);
    let answer = client.send(request).await;
    progress.finish_and_clear();
    let body = answer?;
    if let (Some(channel), Some(percent)) = (&publish.channel, publish.rollout) {
        let status =
            crate::commands::rollout::start_capgo(&client, &publish.app_id, channel, &publish.version, percent).await?;
        if publish.json {
            println!("{}", serde_json::json!({ "bundle": body, "rollout": status }));
        }
        eprintln!(
            "published {} {} ({size} bytes, sha256 {checksum}); rollout {} offers it to {percent} of channel {channel} (stable: {})",
            publish.app_id,
            publish.version,
            status.rollout_id.unwrap_or_default(),
            status.stable.unwrap_or_default(),
        );
        return Ok(());
    }
    if publish.json {
        println!("{body}");
    }
    let channel = publish.channel.map(|c| format!(", channel {c} now serves it")).unwrap_or_default();
    eprintln!("published {} {} ({size} bytes, sha256 {checksum}){channel}", publish.app_id, publish.version);
    Ok(())
}

async fn sha256_file(path: &std::path::Path) -> anyhow::Result<String> {
    let mut file = tokio::fs::File::open(path).await.with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).await.context("reading the zip")?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
