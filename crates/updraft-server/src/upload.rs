//! Staging an uploaded file (a Capgo bundle zip or an Expo asset, the one staging path): the bytes stream to a temp
//! file on the data volume while SHA-256, MD5 and CRC32 are computed as they pass, with a size cap. Nothing is whole in memory, and the temp file disappears when dropped.

use std::path::Path;

use futures::{Stream, StreamExt};
use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use updraft_core::{FailureKind, codes};

use crate::api_error::ApiError;

/// A fully received upload.
pub(crate) struct StagedFile {
    pub(crate) file: tempfile::NamedTempFile,
    pub(crate) size_bytes: u64,
    pub(crate) sha256: String,
    /// Lowercase hex MD5 (an Expo asset's manifest key).
    pub(crate) md5: String,
    pub(crate) crc32: String,
}

/// Streams `body` into a temp file under `staging_dir`.
pub(crate) async fn stage<E: std::fmt::Display>(
    staging_dir: &Path,
    mut body: impl Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    max_bytes: u64,
) -> Result<StagedFile, ApiError> {
    let internal = |e: std::io::Error| {
        if crate::api_error::out_of_space(&e) {
            return crate::api_error::out_of_space_error();
        }
        ApiError::Internal(anyhow::Error::new(e).context("staging an upload"))
    };
    tokio::fs::create_dir_all(staging_dir).await.map_err(internal)?;
    let temp = tempfile::NamedTempFile::new_in(staging_dir).map_err(internal)?;
    let mut file = tokio::fs::File::from_std(temp.reopen().map_err(internal)?);
    let mut sha256 = Sha256::new();
    let mut md5 = Md5::new();
    let mut crc32 = crc32fast::Hasher::new();
    let mut size_bytes = 0u64;
    let idle = crate::limits::upload_idle_timeout();
    // A client that stops sending is dropped after the idle timeout, and the staged file goes with it.
    while let Some(chunk) =
        tokio::time::timeout(idle, body.next()).await.map_err(|_| crate::routes::body::body_timed_out())?
    {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(codes::INVALID_REQUEST, format!("the upload was interrupted: {e}")))?;
        size_bytes += chunk.len() as u64;
        if size_bytes > max_bytes {
            return Err(ApiError::client(
                FailureKind::TooLarge,
                codes::BODY_TOO_LARGE,
                format!("the file is larger than the {max_bytes}-byte limit (UPDRAFT_MAX_UPLOAD_BYTES)"),
            ));
        }
        sha256.update(&chunk);
        md5.update(&chunk);
        crc32.update(&chunk);
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    file.sync_all().await.map_err(internal)?;
    Ok(StagedFile {
        file: temp,
        size_bytes,
        sha256: hex::encode(sha256.finalize()),
        md5: hex::encode(md5.finalize()),
        crc32: format!("{:08x}", crc32.finalize()),
    })
}

/// Removes whatever a previous run left in the staging directories (uploads cut off by a crash or `kill -9`):
/// `data_dir/staging` and, for the filesystem store, its own `.staging` folder. Called by `serve` before it accepts
/// requests; nothing staged is ever visible, so nothing visible is lost. Returns how many entries went.
pub(crate) fn empty_staging(directories: &[std::path::PathBuf]) -> std::io::Result<usize> {
    let mut removed = 0;
    for directory in directories {
        let entries = match std::fs::read_dir(directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let path = entry?.path();
            // Not following symlinks: a link is removed, never what it points at.
            if std::fs::symlink_metadata(&path)?.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
            removed += 1;
        }
    }
    Ok(removed)
}
