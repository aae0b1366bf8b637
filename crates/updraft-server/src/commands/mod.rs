//! One module per subcommand; `run` dispatches.

mod api_client;
mod apikey;
mod expo_publish;
mod keys;
mod migrate;
mod publish;
mod release;
mod serve;
mod storage;
mod storage_encode;
mod transfer;

use std::sync::Arc;

use anyhow::Context;
use updraft_store::{Backend, SqlStore};

use crate::cli::{ApikeyCommand, Cli, Command, KeysCommand, PublishCommand, ReleaseCommand, StorageCommand};
use crate::config::Settings;

/// Runs a parsed command line.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => serve::serve(Settings::load(cli.config.as_deref())?).await,
        Command::Migrate => migrate::migrate(&Settings::load(cli.config.as_deref())?).await,
        Command::Export { out } => transfer::export(&Settings::load(cli.config.as_deref())?, &out).await,
        Command::Import { file } => transfer::import(&Settings::load(cli.config.as_deref())?, &file).await,
        Command::Apikey(ApikeyCommand::Create(request)) => apikey::create(&request).await,
        Command::Apikey(ApikeyCommand::List(request)) => apikey::list(&request).await,
        Command::Apikey(ApikeyCommand::Revoke(request)) => apikey::revoke(&request).await,
        Command::Publish(PublishCommand::Capgo(request)) => publish::publish_capgo(request).await,
        Command::Publish(PublishCommand::Expo(request)) => expo_publish::publish_expo(request).await,
        Command::Release(ReleaseCommand::List(request)) => release::list(&request).await,
        Command::Release(ReleaseCommand::Rollback(request)) => release::rollback(&request).await,
        Command::Release(ReleaseCommand::Promote(request)) => release::promote(&request).await,
        Command::Keys(KeysCommand::Generate(request)) => keys::generate_keys(&request).await,
        Command::Keys(KeysCommand::Import(request)) => keys::import_key(&request).await,
        Command::Keys(KeysCommand::List(request)) => keys::list_keys(&request).await,
        Command::Storage(StorageCommand::Check) => storage::check(&Settings::load(cli.config.as_deref())?).await,
        Command::Storage(StorageCommand::Gc { dry_run, grace_hours }) => {
            storage::gc(&Settings::load(cli.config.as_deref())?, dry_run, grace_hours).await
        }
        Command::Storage(StorageCommand::Encode) => {
            storage_encode::encode(&Settings::load(cli.config.as_deref())?).await
        }
        Command::Storage(StorageCommand::Migrate { to }) => {
            storage::migrate(&Settings::load(cli.config.as_deref())?, &to).await
        }
    }
}

/// Connects to the metadata store named by the settings, without migrating.
pub(crate) async fn connect_store(settings: &Settings) -> anyhow::Result<Arc<SqlStore>> {
    if settings.database_backend() == Backend::Sqlite {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating the data directory {}", settings.data_dir.display()))?;
    }
    let store = SqlStore::connect(&settings.database_url())
        .await
        .with_context(|| format!("opening the {} metadata database", settings.database_backend().name()))?;
    Ok(Arc::new(store))
}

/// Opens the metadata store named by the settings and, unless `database.migrate_on_start` is off, brings its
/// schema up to date.
pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<Arc<SqlStore>> {
    let store = connect_store(settings).await?;
    if settings.database.migrate_on_start {
        store.migrate().await.context("migrating the metadata database")?;
    }
    Ok(store)
}
