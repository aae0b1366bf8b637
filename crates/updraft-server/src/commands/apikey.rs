//! `updraft apikey create`: mint a key in the local metadata store and print it once.

use anyhow::Context;
use updraft_core::{ApiKeyScope, AppId, MetadataStore};

use crate::api_keys;
use crate::commands::open_store;
use crate::config::Settings;

pub(crate) async fn create(settings: &Settings, name: &str, app: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
    let scope = match app {
        None => ApiKeyScope::All,
        Some(raw) => ApiKeyScope::App(AppId::parse(raw).context("--app")?),
    };
    let store = open_store(settings).await?;
    let (key, record) = api_keys::mint(name, scope);
    store.insert_api_key(&record).await.context("storing the API key")?;
    store.close().await;
    println!("{key}");
    eprintln!("created API key {:?} (id {}); it is shown only once, store it now", record.name, record.id);
    Ok(())
}
