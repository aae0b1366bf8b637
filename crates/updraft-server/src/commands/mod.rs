//! One module per subcommand; `run` dispatches.

mod api_client;
mod apikey;
mod audit;
mod expo_publish;
mod keys;
mod migrate;
mod publish;
mod release;
mod release_health;
mod rollout;
mod serve;
mod storage;
mod storage_encode;
mod transfer;

use std::sync::Arc;

use anyhow::Context;
use updraft_store::{Backend, SqlStore};

use crate::cli::RolloutCommand;
use crate::cli::{ApikeyCommand, Cli, Command, KeysCommand, PublishCommand, ReleaseCommand, StorageCommand};
use crate::config::Settings;

/// Runs a parsed command line.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => serve::serve(Settings::load(cli.config.as_deref())?).await,
        Command::Migrate => migrate::migrate(&Settings::load(cli.config.as_deref())?).await,
        Command::Export { out } => transfer::export(&Settings::load(cli.config.as_deref())?, &out).await,
        Command::Import { file } => transfer::import(&Settings::load(cli.config.as_deref())?, &file).await,
        Command::Audit(request) => audit::show(&request).await,
        Command::Apikey(ApikeyCommand::Create(request)) => apikey::create(&request).await,
        Command::Apikey(ApikeyCommand::List(request)) => apikey::list(&request).await,
        Command::Apikey(ApikeyCommand::Revoke(request)) => apikey::revoke(&request).await,
        Command::Publish(PublishCommand::Capgo(request)) => publish::publish_capgo(request).await,
        Command::Publish(PublishCommand::Expo(request)) => expo_publish::publish_expo(request).await,
        Command::Release(ReleaseCommand::List(request)) => release::list(&request).await,
        Command::Release(ReleaseCommand::Rollback(request)) => release::rollback(&request).await,
        Command::Release(ReleaseCommand::Promote(request)) => release::promote(&request).await,
        Command::Release(ReleaseCommand::Health(request)) => release_health::health(&request).await,
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
        Command::Rollout(RolloutCommand::Start(request)) => rollout::start(&request).await,
        Command::Rollout(RolloutCommand::Set(request)) => rollout::set(&request).await,
        Command::Rollout(RolloutCommand::Halt(request)) => rollout::halt(&request).await,
        Command::Rollout(RolloutCommand::Resume(request)) => rollout::action(&request, "resume").await,
        Command::Rollout(RolloutCommand::Complete(request)) => rollout::action(&request, "complete").await,
        Command::Rollout(RolloutCommand::Status(request)) => rollout::status(&request).await,
    }
}

/// Connects to the metadata store named by the settings, without migrating.
pub(crate) async fn connect_store(settings: &Settings) -> anyhow::Result<Arc<SqlStore>> {
    create_private_data_dir(&settings.data_dir)?;
    if settings.database_backend() == Backend::Sqlite {
        create_private_database_file(&settings.database_url())?;
    }
    let store = SqlStore::connect(&settings.database_url()).await.with_context(|| {
        format!(
            "opening the {} metadata database at {}",
            settings.database_backend().name(),
            settings.database_location()
        )
    })?;
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

/// Creates the data directory readable by the gateway's user only (0700), from the moment it exists: it holds the
/// database, whose rows include private signing keys, and staged uploads. An existing directory is left as the
/// operator made it, with a warning when others can read it.
fn create_private_data_dir(data_dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::metadata(data_dir) {
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    "the data directory {} can be read by other users (mode {:o}); it holds private signing keys: \
                     chmod 700 it",
                    data_dir.display(),
                    meta.permissions().mode() & 0o777
                );
            }
            Ok(())
        }
        Err(_) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display())),
    }
}

/// Creates a new SQLite database file with owner-only permissions (0600) before SQLite opens it, so it is never
/// readable by others, not even for a moment (SQLite gives its `-wal` and `-shm` files the database file's mode).
fn create_private_database_file(url: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') || std::path::Path::new(path).exists() {
        return Ok(());
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).with_context(|| format!("creating the database file {path}")),
    }
}
