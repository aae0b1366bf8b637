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
        Command::Apikey(ApikeyCommand::Create { name, app, json, server }) => {
            apikey::create(&server, &name, app.as_deref(), json).await
        }
        Command::Apikey(ApikeyCommand::List { json, server }) => apikey::list(&server, json).await,
        Command::Apikey(ApikeyCommand::Revoke { name, json, server }) => apikey::revoke(&server, &name, json).await,
        Command::Publish(PublishCommand::Capgo(request)) => publish::publish_capgo(request).await,
        Command::Publish(PublishCommand::Expo(request)) => expo_publish::publish_expo(request).await,
        Command::Release(ReleaseCommand::List { app_id, channel, json, server }) => {
            release::list(&server, &app_id, channel.as_deref(), json).await
        }
        Command::Release(ReleaseCommand::Rollback {
            app_id,
            channel,
            runtime_version,
            to,
            embedded,
            platform,
            json,
            server,
        }) => {
            let request = release::Rollback { app_id, channel, runtime_version, to, embedded, platform, json };
            release::rollback(&server, request).await
        }
        Command::Release(ReleaseCommand::Promote { app_id, release, to_channel, json, server }) => {
            release::promote(&server, &app_id, &release, &to_channel, json).await
        }
        Command::Keys(KeysCommand::Generate {
            app_id,
            out,
            key_id,
            validity_years,
            force,
            export_private_key,
            server,
        }) => {
            let request = keys::Generate { app_id, key_id, out, validity_years, force, export_private_key };
            keys::generate_keys(&server, request).await
        }
        Command::Keys(KeysCommand::Import { app_id, private_key, key_id, force, server }) => {
            keys::import_key(&server, &app_id, &private_key, &key_id, force).await
        }
        Command::Keys(KeysCommand::List { app_id, json, server }) => keys::list_keys(&server, &app_id, json).await,
        Command::Storage(StorageCommand::Check) => storage::check(&Settings::load(cli.config.as_deref())?).await,
        Command::Storage(StorageCommand::Gc { dry_run, grace_hours }) => {
            storage::gc(&Settings::load(cli.config.as_deref())?, dry_run, grace_hours).await
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
