//! Building the object store the settings name, checking that it works, and how devices reach its objects
//! (delivery modes).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use updraft_oss::{FsStore, GetOptions, ObjectKey, ObjectStore, PutOptions, S3Config, S3Store};

use crate::config::{Settings, StorageKind};

/// Opens the configured object store.
pub(crate) async fn open_object_store(settings: &Settings) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let storage = &settings.storage;
    Ok(match storage.kind {
        StorageKind::Fs => Arc::new(
            FsStore::open(&settings.objects_dir())
                .with_context(|| format!("opening object storage in {}", settings.objects_dir().display()))?,
        ),
        StorageKind::S3 => {
            let config = S3Config {
                bucket: storage.bucket.clone(),
                region: storage.region.clone(),
                endpoint: storage.endpoint.clone(),
                prefix: storage.prefix.clone(),
                force_path_style: storage.force_path_style,
                access_key_id: storage.access_key_id.as_ref().map(|s| s.expose().to_owned()),
                secret_access_key: storage.secret_access_key.as_ref().map(|s| s.expose().to_owned()),
            };
            Arc::new(S3Store::connect(&config).await)
        }
    })
}

/// Checks that the store can be listed, written, read and deleted, with a probe object. Returns one readable line
/// per problem (empty when everything works).
pub(crate) async fn check_store(store: &dyn ObjectStore) -> Vec<String> {
    let mut problems = Vec::new();
    let key = ObjectKey::parse(&format!("updraft-probe/{}", uuid::Uuid::new_v4())).expect("probe keys are valid");
    if let Err(error) = store.list(Some(&ObjectKey::parse("updraft-probe").expect("valid"))).try_next().await {
        problems.push(format!("list: {error}"));
    }
    let body = futures::stream::iter([Ok(Bytes::from_static(b"updraft storage probe"))]).boxed();
    match store.put(&key, body, PutOptions::default()).await {
        Err(error) => problems.push(format!("put: {error}")),
        Ok(_) => {
            match store.get(&key, GetOptions::default()).await {
                Ok(result) => match result.body.try_collect::<Vec<Bytes>>().await {
                    Ok(chunks) if chunks.concat() == b"updraft storage probe" => {}
                    Ok(_) => problems.push("get: the probe object came back with different bytes".into()),
                    Err(error) => problems.push(format!("get: {error}")),
                },
                Err(error) => problems.push(format!("get: {error}")),
            }
            if let Err(error) = store.presigned_get(&key, Duration::from_secs(60)).await {
                problems.push(format!("presign: {error}"));
            }
            if let Err(error) = store.delete(&key).await {
                problems.push(format!("delete: {error}"));
            }
        }
    }
    problems
}
