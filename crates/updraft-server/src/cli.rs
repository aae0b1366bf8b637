//! The command line: one clap `Cli` with a subcommand per operator task.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Updraft: a self-hosted OTA update gateway for Expo Updates and Capgo.
#[derive(Debug, Parser)]
#[command(name = "updraft", version, about)]
pub(crate) struct Cli {
    /// Settings file (TOML); `UPDRAFT_*` environment variables override it.
    #[arg(long, global = true, env = "UPDRAFT_CONFIG", value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway (filesystem storage and SQLite under ./updraft-data by default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Publish a release to a running gateway over its HTTP API.
    #[command(subcommand)]
    Publish(PublishCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApikeyCommand {
    /// Create an API key and print it once (only its hash is stored).
    Create {
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// Restrict the key to one app.
        #[arg(long, value_name = "APP_ID")]
        app: Option<String>,
    },
}

/// Where the gateway is and how to authenticate.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Base URL of the gateway's API.
    #[arg(long, env = "UPDRAFT_SERVER", default_value = "http://127.0.0.1:8080")]
    pub(crate) server: String,
    /// API key (admin key or one from `updraft apikey create`).
    #[arg(long, env = "UPDRAFT_API_KEY", hide_env_values = true)]
    pub(crate) api_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PublishCommand {
    /// Publish a Capacitor bundle: a zip from `npx @capgo/cli bundle zip`, or a web build folder (zipped the same way).
    Capgo {
        /// App id, such as com.example.app.
        #[arg(long = "app", value_name = "APP_ID")]
        app_id: String,
        /// Bundle version (semver), such as 1.0.1.
        #[arg(long)]
        version: String,
        /// Point this channel at the new bundle.
        #[arg(long)]
        channel: Option<String>,
        /// Lowest native version the bundle may go to (for `disableAutoUpdate: version_number`).
        #[arg(long)]
        min_update_version: Option<String>,
        /// Print the server's answer as JSON on stdout.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
        /// The zip, or the web build folder (the one with index.html).
        path: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
