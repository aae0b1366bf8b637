//! The object store, as the use cases and the download routes need it: one content-addressed put (a staged file
//! stored once under its digest), one way to open a stored object for a download (a presigned redirect, or a byte
//! range of it), and removing objects no bundle uses any more.

use futures::StreamExt;
use updraft_oss::{ByteRange, GetResult, ObjectKey, PutMode, PutOptions};

use crate::api_error::ApiError;
use crate::ops::AppState;

/// Stores the file at `path` under `key` unless it is there already (keys are content addresses, so an existing
/// object has these bytes); returns whether it was created.
pub(crate) async fn put_content_addressed(
    state: &AppState,
    key: &ObjectKey,
    path: &std::path::Path,
    content_type: Option<&str>,
) -> Result<bool, ApiError> {
    let reader = tokio::fs::File::open(path)
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("reopening a staged file")))?;
    let body = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).boxed();
    let options =
        PutOptions { mode: PutMode::Create, content_type: content_type.map(Into::into), ..PutOptions::default() };
    match state.objects.put(key, body, options).await {
        Ok(_) => Ok(true),
        Err(updraft_oss::Error::AlreadyExists { .. }) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Removes objects, logging (not failing on) any that cannot be removed: they are unreferenced already, and
/// `updraft storage gc` sweeps leftovers.
pub(crate) async fn remove_unused(state: &AppState, keys: &[String], what: &str) {
    for key in keys.iter().filter_map(|k| ObjectKey::parse(k).ok()) {
        state.object_cache.forget(&key);
        if let Err(error) = state.objects.delete(&key).await {
            tracing::warn!(object.key = %key, "could not remove {what}: {error}");
        }
        // Its compressed copies go with it (most objects have none: a missing copy is no error).
        for encoding in updraft_core::Encoding::STORED {
            let copy = crate::ops::encodings::encoded_key(&key, encoding);
            state.object_cache.forget(&copy);
            match state.objects.delete(&copy).await {
                Ok(()) | Err(updraft_oss::Error::NotFound { .. }) => {}
                Err(error) => tracing::warn!(object.key = %copy, "could not remove a compressed copy: {error}"),
            }
        }
    }
}

/// How a download of a stored object is answered.
pub(crate) enum Download {
    /// Redirect to this presigned URL (a bearer credential: it goes to the device, never to the log).
    Redirect(String),
    /// Stream these bytes.
    Bytes(GetResult),
    /// No such object.
    NotFound,
    /// The range starts past the end of an object of this size.
    RangeNotSatisfiable {
        /// The object's size in bytes.
        size: u64,
    },
}

/// Opens `key` for a download: in presigned delivery a fresh presigned URL (when the backend makes them and it keeps
/// the gateway's scheme), else the bytes of `range` (or all of them).
pub(crate) async fn open_download(
    state: &AppState,
    key: &ObjectKey,
    range: Option<ByteRange>,
) -> Result<Download, ApiError> {
    if let Some(url) = redirect_url(state, key).await {
        return Ok(Download::Redirect(url));
    }
    match state.object_cache.get(state.objects.as_ref(), key, range).await {
        Ok(result) => Ok(Download::Bytes(result)),
        Err(updraft_oss::Error::NotFound { .. }) => Ok(Download::NotFound),
        Err(updraft_oss::Error::RangeNotSatisfiable { size, .. }) => Ok(Download::RangeNotSatisfiable { size }),
        Err(error) => Err(error.into()),
    }
}

/// In presigned delivery, a fresh presigned URL for the object, when the backend can make one and it keeps the
/// scheme of the gateway's public URL (Android's downloader refuses an http↔https redirect). `None`: stream.
async fn redirect_url(state: &AppState, key: &ObjectKey) -> Option<String> {
    let storage = &state.settings.storage;
    if storage.delivery != crate::config::Delivery::Presigned {
        return None;
    }
    let ttl = std::time::Duration::from_secs(storage.presign_ttl_seconds);
    let url = match state.objects.presigned_get(key, ttl).await {
        Ok(url) => url?,
        Err(error) => {
            tracing::warn!(object.key = %key, "presigning failed, streaming instead: {error}");
            return None;
        }
    };
    let scheme = |u: &str| u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    (scheme(&url) == scheme(&state.public_url)).then_some(url)
}
