//! One module per subcommand; `run` dispatches.

mod apikey;
mod migrate;
mod publish;
mod serve;

use std::sync::Arc;

use anyhow::Context;
use updraft_store::SqliteStore;

use crate::cli::{ApikeyCommand, Cli, Command, PublishCommand};
use crate::config::Settings;

/// Runs a parsed command line.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => serve::serve(Settings::load(cli.config.as_deref())?).await,
        Command::Migrate => migrate::migrate(&Settings::load(cli.config.as_deref())?).await,
        Command::Apikey(ApikeyCommand::Create { name, app }) => {
            apikey::create(&Settings::load(cli.config.as_deref())?, &name, app.as_deref()).await
        }
        Command::Publish(PublishCommand::Capgo {
            app_id,
            version,
            channel,
            min_update_version,
            json,
            server,
            path,
        }) => {
            let request = publish::CapgoPublish { app_id, version, channel, min_update_version, json, path };
            publish::publish_capgo(&server, request).await
        }
    }
}

/// Opens the metadata store named by the settings and brings its schema up to date.
pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<Arc<SqliteStore>> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data directory {}", settings.data_dir.display()))?;
    let store = SqliteStore::connect(&settings.database_url()).await.context("opening the metadata database")?;
    store.migrate().await.context("migrating the metadata database")?;
    Ok(Arc::new(store))
}
