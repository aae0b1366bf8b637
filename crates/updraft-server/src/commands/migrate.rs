//! `updraft migrate`: apply pending migrations and exit.

use crate::commands::open_store;
use crate::config::Settings;

pub(crate) async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    store.close().await;
    eprintln!("database is up to date");
    Ok(())
}
