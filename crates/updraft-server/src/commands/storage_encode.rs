//! `updraft storage encode`: give objects stored before compressed copies existed (or whose copies are missing)
//! their brotli and gzip copies, the same ones a publish makes now. Downloads never compress: until this runs, such
//! an object is served as stored. Safe to run while gateways serve, and to run again (copies are content-addressed
//! and created only when missing).
//!
//! Then the delta (manifest) bundles recorded before brotli copies existed get the sizes of their files' copies
//! (`bundle_files.br_size_bytes`, and `size_bytes` where that is missing too), which is what makes a delta manifest
//! name `<file>.br` to the plugins that decode brotli: read from storage, a page of [`SIZE_PAGE`] files at a time.

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;
use updraft_core::{Encoding, MetadataStore};
use updraft_oss::{GetOptions, ObjectKey};

use crate::commands::open_store;
use crate::config::Settings;
use crate::ops::encodings::{CopyPolicy, encoded_key, put_encodings};
use crate::storage::open_object_store;

/// Whether a listed key is an original the gateway makes copies of: an Expo asset or a delta file (bundle zips are
/// compressed already), and not itself a copy or a patch.
fn original(key: &str) -> Option<CopyPolicy> {
    let mut parts = key.split('/');
    let policy = match parts.next()? {
        "assets" => CopyPolicy::WhenSmaller,
        "files" => CopyPolicy::AlwaysBrotli,
        _ => return None,
    };
    let (_app, name, rest) = (parts.next()?, parts.next()?, parts.next());
    (rest.is_none() && updraft_core::sha256_hex(name).is_some()).then_some(policy)
}

pub(crate) async fn encode(settings: &Settings) -> anyhow::Result<()> {
    let objects = open_object_store(settings).await?;
    let staging = settings.staging_dir();
    tokio::fs::create_dir_all(&staging).await.with_context(|| format!("creating {}", staging.display()))?;
    let (mut encoded, mut present, mut skipped, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let keys: Vec<(String, CopyPolicy)> = objects
        .list(None)
        .try_filter_map(|meta| async move { Ok(original(&meta.key).map(|policy| (meta.key, policy))) })
        .try_collect()
        .await
        .context("listing objects")?;
    for (raw, policy) in keys {
        let key = ObjectKey::parse(&raw).context("an object key in the store is invalid")?;
        if objects.head(&encoded_key(&key, Encoding::Brotli)).await.is_ok() {
            present += 1;
            continue;
        }
        let staged = tempfile::NamedTempFile::new_in(&staging)?;
        let mut file = tokio::fs::File::create(staged.path()).await?;
        let mut body = objects.get(&key, GetOptions::default()).await?.body;
        while let Some(chunk) = body.next().await {
            file.write_all(&chunk?).await?;
        }
        file.flush().await?;
        let stored = put_encodings(objects.as_ref(), &key, staged.path(), &staging, None, policy)
            .await
            .with_context(|| format!("encoding {key}"))?;
        if stored == Default::default() {
            skipped += 1;
            continue;
        }
        encoded += 1;
        bytes += stored.brotli.unwrap_or(0) + stored.gzip.unwrap_or(0);
        println!("encoded {key}: br {:?} gzip {:?} bytes", stored.brotli, stored.gzip);
    }
    eprintln!(
        "gave {encoded} objects compressed copies ({bytes} bytes); {present} had them; {skipped} do not compress"
    );
    backfill_delta_sizes(settings, objects.as_ref()).await
}

/// Delta files whose sizes are read and recorded at a time.
const SIZE_PAGE: u64 = 500;

/// Records the brotli copy sizes of delta files that bundles recorded without them (see the module documentation).
/// A file whose object or copy is missing is reported and left as it is (its manifests keep the plain file).
async fn backfill_delta_sizes(settings: &Settings, objects: &dyn updraft_oss::ObjectStore) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let (mut filled, mut rows, mut missing) = (0u64, 0u64, 0u64);
    let mut after = String::new();
    loop {
        let page = store.delta_files_without_br_size(&after, SIZE_PAGE).await.context("listing delta files")?;
        let Some(last) = page.last() else { break };
        after.clone_from(last);
        for raw in page {
            let Ok(key) = ObjectKey::parse(&raw) else {
                missing += 1;
                eprintln!("warning: a delta file's object key {raw:?} is invalid; left as it is");
                continue;
            };
            let sizes = match (objects.head(&key).await, objects.head(&encoded_key(&key, Encoding::Brotli)).await) {
                (Ok(original), Ok(brotli)) => (original.size, brotli.size),
                (Err(error), _) | (_, Err(error)) => {
                    missing += 1;
                    eprintln!("warning: delta file {key} or its brotli copy cannot be read ({error}); left as it is");
                    continue;
                }
            };
            rows += store.set_delta_file_sizes(&raw, sizes.0, sizes.1).await.context("recording delta file sizes")?;
            filled += 1;
            println!("sized {key}: br {} of {} bytes", sizes.1, sizes.0);
        }
    }
    eprintln!(
        "recorded the brotli sizes of {filled} delta files ({rows} bundle rows); {missing} could not be read; a \
         gateway on SQLite uses them once it restarts (on PostgreSQL, at once)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_originals_get_copies() {
        let digest = "ab".repeat(32);
        assert_eq!(original(&format!("assets/com.example.app/{digest}")), Some(CopyPolicy::WhenSmaller));
        assert_eq!(original(&format!("files/com.example.app/{digest}")), Some(CopyPolicy::AlwaysBrotli));
        assert_eq!(original(&format!("files/com.example.app/{digest}.br")), None);
        assert_eq!(original(&format!("assets/com.example.app/{digest}.gz")), None);
        assert_eq!(original(&format!("bundles/com.example.app/{digest}.zip")), None);
        assert_eq!(original(&format!("patches/com.example.app/{digest}")), None);
    }
}
