//! Compressed copies of stored objects: made once when an object is published (brotli and gzip, content-addressed
//! beside the original: `files/<app>/<sha256>.br`, `….gz`), and opened for a download that asked for them. A
//! request never compresses anything: an object without copies (stored before this existed, until `updraft storage
//! encode` runs, or not compressible) is served as stored.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use updraft_core::{Encoding, compressible_bytes, compressible_type, worth_keeping};
use updraft_oss::{ObjectKey, ObjectStore, PutMode, PutOptions};

use crate::api_error::ApiError;
use crate::ops::AppState;
use crate::ops::objects::Download;
use crate::precompress::{Effort, encode_file, head};

/// How long "this object has no such copy" is remembered, so a download of an object without copies costs one
/// storage miss per this period, not one per request. Copies made later by `updraft storage encode` are served
/// after it.
const ABSENT_FOR: Duration = Duration::from_secs(300);

/// At most this many remembered misses (then the oldest half is forgotten).
const ABSENT_CAPACITY: usize = 16_384;

/// The key of an object's copy in `encoding`.
pub(crate) fn encoded_key(key: &ObjectKey, encoding: Encoding) -> ObjectKey {
    ObjectKey::parse(&format!("{key}{}", encoding.key_suffix())).expect("a valid key plus a suffix is a valid key")
}

/// The sizes of the copies an object has after [`put_encodings`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StoredEncodings {
    pub(crate) brotli: Option<u64>,
    pub(crate) gzip: Option<u64>,
}

/// What an object's copies are made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyPolicy {
    /// Only copies that save bytes, for objects of a compressible type (or, type unknown, whose first bytes are not
    /// an already-compressed format).
    WhenSmaller,
    /// Also a brotli copy of bytes that do not compress: a delta file, which plugins before 5.50.1 / 6.14.28 /
    /// 7.0.38 download brotli-encoded whatever it holds (`updraft_core::DeltaBrotli::EveryFile`).
    AlwaysBrotli,
}

/// Compresses the staged file at `staged` (stored as `key`) and stores its worthwhile copies beside it, with the
/// original's content type and their `Content-Encoding` (which S3 sends with a presigned download). Idempotent:
/// copies are content-addressed, an existing one is kept.
pub(crate) async fn put_encodings(
    objects: &dyn ObjectStore,
    key: &ObjectKey,
    staged: &Path,
    staging_dir: &Path,
    content_type: Option<&str>,
    policy: CopyPolicy,
) -> anyhow::Result<StoredEncodings> {
    // Content-addressed: an object stored before with its brotli copy (made whenever any copy is) has its copies.
    if let Ok(brotli) = objects.head(&encoded_key(key, Encoding::Brotli)).await {
        let gzip = objects.head(&encoded_key(key, Encoding::Gzip)).await.ok().map(|meta| meta.size);
        return Ok(StoredEncodings { brotli: Some(brotli.size), gzip });
    }
    let (staged, dir) = (staged.to_path_buf(), staging_dir.to_path_buf());
    let by_type = content_type.and_then(compressible_type);
    let copies = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let original = std::fs::metadata(&staged)?.len();
        let compressible = by_type.unwrap_or_else(|| head(&staged).is_ok_and(|head| compressible_bytes(&head)));
        let mut copies = Vec::new();
        if compressible {
            for encoding in Encoding::STORED {
                let copy = encode_file(&staged, &dir, encoding, Effort::Best)?;
                let keep = worth_keeping(original, copy.size)
                    || (encoding == Encoding::Brotli && policy == CopyPolicy::AlwaysBrotli);
                if keep {
                    copies.push(copy);
                }
            }
        } else if policy == CopyPolicy::AlwaysBrotli {
            copies.push(encode_file(&staged, &dir, Encoding::Brotli, Effort::Fast)?);
        }
        Ok(copies)
    })
    .await??;
    let mut stored = StoredEncodings::default();
    for copy in copies {
        let reader = tokio::fs::File::open(copy.file.path()).await?;
        let body = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).boxed();
        // Stored without a `Content-Encoding`: the `.br` copy of a delta file is also what a Capgo plugin downloads
        // as plain bytes (and decodes itself), and an HTTP-negotiated download gets the header from the gateway or,
        // presigned, from the URL (`presigned_get_encoded`).
        let options =
            PutOptions { mode: PutMode::Create, content_type: content_type.map(Into::into), ..PutOptions::default() };
        match objects.put(&encoded_key(key, copy.encoding), body, options).await {
            Ok(_) | Err(updraft_oss::Error::AlreadyExists { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        match copy.encoding {
            Encoding::Brotli => stored.brotli = Some(copy.size),
            Encoding::Gzip => stored.gzip = Some(copy.size),
            Encoding::Identity => {}
        }
    }
    Ok(stored)
}

/// [`put_encodings`] for a use case: storage failures are the use case's errors.
pub(crate) async fn store_encodings(
    state: &AppState,
    key: &ObjectKey,
    staged: &Path,
    content_type: Option<&str>,
    policy: CopyPolicy,
) -> Result<StoredEncodings, ApiError> {
    put_encodings(state.objects.as_ref(), key, staged, &state.settings.staging_dir(), content_type, policy)
        .await
        .map_err(|e| ApiError::Internal(e.context(format!("storing the compressed copies of {key}"))))
}

/// What the download routes keep between requests.
#[derive(Default)]
pub(crate) struct DeliveryState {
    /// Copies found missing lately.
    pub(crate) absent: AbsentCopies,
    /// The bsdiff patch worker's inbox.
    pub(crate) patches: crate::ops::expo_patches::PatchQueue,
}

/// Remembered misses: copies that an object does not have.
#[derive(Default)]
pub(crate) struct AbsentCopies(Mutex<HashMap<String, Instant>>);

impl AbsentCopies {
    fn known_absent(&self, key: &ObjectKey) -> bool {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key.as_str()).is_some_and(|since| since.elapsed() < ABSENT_FOR)
    }

    fn remember(&self, key: &ObjectKey) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= ABSENT_CAPACITY {
            let mut ages: Vec<Instant> = map.values().copied().collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            map.retain(|_, since| *since > cutoff);
        }
        map.insert(key.as_str().to_owned(), Instant::now());
    }
}

/// Opens the `encoding` copy of `key` for a whole-object download (a presigned redirect to it, in presigned
/// delivery, or its bytes); `None` when the object has no such copy.
pub(crate) async fn open_encoded(
    state: &AppState,
    key: &ObjectKey,
    encoding: Encoding,
) -> Result<Option<Download>, ApiError> {
    let copy = encoded_key(key, encoding);
    if state.bytes.absent.known_absent(&copy) {
        return Ok(None);
    }
    let presigned = state.settings.storage.delivery == crate::config::Delivery::Presigned;
    let found = if presigned && let Some(url) = redirect_url(state, &copy, encoding).await? {
        Some(url)
    } else {
        match state.object_cache.get(state.objects.as_ref(), &copy, None).await {
            Ok(result) => Some(Download::Bytes(result)),
            Err(updraft_oss::Error::NotFound { .. }) => None,
            Err(error) => return Err(error.into()),
        }
    };
    if found.is_none() {
        state.bytes.absent.remember(&copy);
    }
    Ok(found)
}

/// In presigned delivery, a redirect to a fresh presigned URL of the copy that answers with its
/// `Content-Encoding`, when the copy exists (a presigned URL says nothing of existence), the backend can make one,
/// and it keeps the gateway's scheme. `None`: stream it.
async fn redirect_url(state: &AppState, copy: &ObjectKey, encoding: Encoding) -> Result<Option<Download>, ApiError> {
    let token = encoding.token().unwrap_or("identity");
    match state.objects.head(copy).await {
        Ok(_) => {}
        Err(updraft_oss::Error::NotFound { .. }) => return Ok(None),
        Err(error) => return Err(error.into()),
    }
    let ttl = Duration::from_secs(state.settings.storage.presign_ttl_seconds);
    let url = match state.objects.presigned_get_encoded(copy, ttl, token).await {
        Ok(Some(url)) => url,
        Ok(None) => return Ok(None),
        Err(error) => {
            tracing::warn!(object.key = %copy, "presigning failed, streaming instead: {error}");
            return Ok(None);
        }
    };
    let scheme = |u: &str| u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    Ok((scheme(&url) == scheme(&state.public_url)).then_some(Download::Redirect(url)))
}
