//! `updraft storage check`: can the configured object store list, put, get, presign and delete a probe object.

use crate::config::Settings;
use crate::storage::{check_store, open_object_store};

pub(crate) async fn check(settings: &Settings) -> anyhow::Result<()> {
    let store = open_object_store(settings).await?;
    let problems = check_store(store.as_ref()).await;
    if problems.is_empty() {
        eprintln!("object storage {store}: list, put, get, presign and delete all work");
        return Ok(());
    }
    for problem in &problems {
        eprintln!("{store}: {problem}");
    }
    anyhow::bail!("object storage {store} failed {} of its checks; see the lines above", problems.len())
}
