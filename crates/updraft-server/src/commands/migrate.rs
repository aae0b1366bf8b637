//! `updraft migrate`: apply pending migrations and exit.

use anyhow::Context;

use crate::commands::connect_store;
use crate::config::Settings;

pub(crate) async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = connect_store(settings).await?;
    store.migrate().await.context("migrating the metadata database")?;
    store.close().await;
    eprintln!("database is up to date");
    Ok(())
}
