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
    /// Write all metadata (apps, channels, bundles, devices, stats, keys) of the configured database to a file, to
    /// move it to another database with `import`.
    Export {
        /// Output file (JSON Lines; created with owner-only permissions, as it holds keys).
        #[arg(long, short, value_name = "FILE")]
        out: PathBuf,
    },
    /// Load a file written by `export` into the configured database, which must be empty; every table's row count
    /// is checked before anything is committed.
    Import {
        /// The file `export` wrote.
        file: PathBuf,
    },
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Publish a release to a running gateway over its HTTP API.
    #[command(subcommand)]
    Publish(PublishCommand),
    /// Manage Expo releases (list, roll back, promote) over the HTTP API.
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// Manage an app's Expo code-signing keys on a running gateway, over its HTTP API (admin key).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Object storage maintenance.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Offer a release to a percentage of a channel's devices, raise it, halt it, resume it, complete it.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Show the audit log of an app (every management write: who, what, before and after), over the HTTP API.
    Audit(AuditArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum RolloutCommand {
    /// Start a rollout: a Capgo bundle (--version) or an Expo publish (--release) to a percentage of the channel's
    /// devices, the rest keeping what the channel serves now.
    Start(RolloutStart),
    /// Raise the percentage (it only goes up; halt to take the candidate away) or change when it halts itself.
    Set(RolloutSet),
    /// Stop offering the candidate; devices running it are moved back to stable on their next check.
    Halt(RolloutHalt),
    /// Offer a halted rollout's candidate again, to the same devices.
    Resume(RolloutChannel),
    /// Make the candidate the channel's release for everyone.
    Complete(RolloutChannel),
    /// Where the channel's rollout is: state, percentage, candidate, stable, devices, failures.
    Status(RolloutChannel),
}

/// A rollout percentage as given on the command line (`10`, `12.5`, `0.01`, `50%`).
fn rollout_percent(raw: &str) -> Result<updraft_core::RolloutPercent, String> {
    updraft_core::RolloutPercent::parse(raw).map_err(|e| e.to_string())
}

/// The arguments of `updraft rollout start`.
#[derive(Debug, Args)]
pub(crate) struct RolloutStart {
    /// App id.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// Channel.
    #[arg(long)]
    pub(crate) channel: String,
    /// Capgo: the bundle version to offer (uploaded already, e.g. with `updraft publish capgo` without --channel).
    #[arg(long, conflicts_with = "release", required_unless_present = "release")]
    pub(crate) version: Option<String>,
    /// Expo: the group id `updraft publish expo` printed, or the id of one of its releases (a manifest id).
    #[arg(long, value_name = "ID")]
    pub(crate) release: Option<String>,
    /// The share of devices: 0 to 100, at most two decimals.
    #[arg(long, value_parser = rollout_percent)]
    pub(crate) percent: updraft_core::RolloutPercent,
    /// Expo: only the candidate's releases of this runtime version.
    #[arg(long, requires = "release")]
    pub(crate) runtime_version: Option<String>,
    /// Halt by itself when the 95% lower bound of the candidate's failure rate exceeds this fraction (default 0.05).
    #[arg(long, value_name = "RATE")]
    pub(crate) max_failure_rate: Option<f64>,
    /// Devices the candidate needs before it may halt by itself (default 50).
    #[arg(long, value_name = "N")]
    pub(crate) min_devices: Option<u64>,
    /// Print the status as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// The arguments of `updraft rollout set`.
#[derive(Debug, Args)]
pub(crate) struct RolloutSet {
    /// App id.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// Channel.
    #[arg(long)]
    pub(crate) channel: String,
    /// The new share of devices (only up).
    #[arg(long, value_parser = rollout_percent)]
    pub(crate) percent: Option<updraft_core::RolloutPercent>,
    /// The new maximum failure rate (a fraction from 0 to 1).
    #[arg(long, value_name = "RATE")]
    pub(crate) max_failure_rate: Option<f64>,
    /// The new minimum number of devices.
    #[arg(long, value_name = "N")]
    pub(crate) min_devices: Option<u64>,
    /// Print the status as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// The arguments of `updraft rollout halt`.
#[derive(Debug, Args)]
pub(crate) struct RolloutHalt {
    /// App id.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// Channel.
    #[arg(long)]
    pub(crate) channel: String,
    /// Why (kept with the halt, shown by `status`).
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// Print the status as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// The arguments of `updraft rollout resume|complete|status`.
#[derive(Debug, Args)]
pub(crate) struct RolloutChannel {
    /// App id.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// Channel.
    #[arg(long)]
    pub(crate) channel: String,
    /// Print the status as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StorageCommand {
    /// Check that the configured storage can list, put, get, presign and delete (one line per problem).
    Check,
    /// Remove objects no release uses (older than the grace period, so uploads in progress are safe).
    Gc {
        /// Only print what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Keep unused objects younger than this many hours.
        #[arg(long, default_value_t = 24)]
        grace_hours: u64,
    },
    /// Give objects stored before compressed copies existed their brotli and gzip copies (downloads never
    /// compress; until then such objects are served as stored).
    Encode,
    /// Copy every object to another store, described by the [storage] section of a TOML file.
    Migrate {
        /// The target's settings file.
        #[arg(long, value_name = "CONFIG")]
        to: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReleaseCommand {
    /// List an app's Expo releases, newest first.
    List(ReleaseList),
    /// Roll a channel back: to an earlier release (republished with a new id and time) or to the embedded update.
    Rollback(ReleaseRollback),
    /// Serve a release (or publish group) on another channel, as a new release.
    Promote(ReleasePromote),
    /// Per release: devices offered it, running it and failed on it, with rates, and the rollout halts.
    Health(ReleaseHealthArgs),
}

/// The arguments of `updraft release health`.
#[derive(Debug, Args)]
pub(crate) struct ReleaseHealthArgs {
    /// App id.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// Only this channel.
    #[arg(long)]
    pub(crate) channel: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// The arguments of `updraft release list`.
#[derive(Debug, Args)]
pub(crate) struct ReleaseList {
    /// App id.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// Only this channel.
    #[arg(long)]
    pub(crate) channel: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// The arguments of `updraft release rollback`.
#[derive(Debug, Args)]
pub(crate) struct ReleaseRollback {
    /// App id.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// Channel.
    #[arg(long)]
    pub(crate) channel: String,
    /// Runtime version: required with --embedded; with --to, only releases of this runtime version (default:
    /// each platform keeps the runtime version of the release it goes back to).
    #[arg(long, required_if_eq("embedded", "true"))]
    pub(crate) runtime_version: Option<String>,
    /// What to go back to: the group id `publish expo` printed (every platform of that publish) or one
    /// platform's release id.
    #[arg(long, value_name = "ID", conflicts_with = "embedded", required_unless_present = "embedded")]
    pub(crate) to: Option<String>,
    /// Send devices back to the update embedded in the app binary.
    #[arg(long)]
    pub(crate) embedded: bool,
    /// Only this platform.
    #[arg(long, default_value = "all", value_parser = ["ios", "android", "all"])]
    pub(crate) platform: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// The arguments of `updraft release promote`.
#[derive(Debug, Args)]
pub(crate) struct ReleasePromote {
    /// App id.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// The release or group id.
    #[arg(long, value_name = "RELEASE_ID")]
    pub(crate) release: String,
    /// The channel to serve it on.
    #[arg(long)]
    pub(crate) to_channel: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a signing key and a self-signed code-signing certificate on the gateway; the private key stays
    /// there and only DIR/certificate.pem is written (plus the private key with --export-private-key).
    Generate(KeysGenerate),
    /// Import an existing private key (PKCS#1 or PKCS#8 PEM, e.g. from `npx expo-updates codesigning:generate`).
    Import(KeysImport),
    /// List an app's signing keys: key ids, public-key fingerprints, and certificates of generated keys.
    List(KeysList),
}

/// The arguments of `updraft keys generate`.
#[derive(Debug, Args)]
pub(crate) struct KeysGenerate {
    /// App id.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// Folder for certificate.pem (and, with --export-private-key, private-key.pem and public-key.pem).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// The key id clients send in expo-expect-signature (codeSigningMetadata.keyid). Rotate keys by adding a
    /// new id: binaries in the field keep asking for the old one.
    #[arg(long, default_value = "main")]
    pub(crate) key_id: String,
    /// Certificate validity in years.
    #[arg(long, default_value_t = 10)]
    pub(crate) validity_years: u32,
    /// Replace an existing key with this id (every binary shipped with its certificate then rejects signed
    /// updates) and overwrite files in DIR.
    #[arg(long)]
    pub(crate) force: bool,
    /// Also write the private key to DIR/private-key.pem (owner-only permissions), e.g. for a backup.
    #[arg(long)]
    pub(crate) export_private_key: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// The arguments of `updraft keys import`.
#[derive(Debug, Args)]
pub(crate) struct KeysImport {
    /// App id.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// The private key PEM file.
    #[arg(long, value_name = "PEM")]
    pub(crate) private_key: PathBuf,
    /// The key id clients send in expo-expect-signature.
    #[arg(long, default_value = "main")]
    pub(crate) key_id: String,
    /// Replace an existing key with this id (every binary shipped with its certificate then rejects signed
    /// updates).
    #[arg(long)]
    pub(crate) force: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// The arguments of `updraft keys list`.
#[derive(Debug, Args)]
pub(crate) struct KeysList {
    /// App id.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// Print JSON (with the certificates).
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApikeyCommand {
    /// Create an API key on the gateway and print it once (only its hash is stored). Needs an unscoped key.
    Create(ApikeyCreate),
    /// List the gateway's API keys (names, ids, scopes; never secrets).
    List(ApikeyList),
    /// Revoke an API key by name: it stops working at once.
    Revoke(ApikeyRevoke),
}

/// The arguments of `updraft apikey create`.
#[derive(Debug, Args)]
pub(crate) struct ApikeyCreate {
    /// A name to recognise the key by (unique among active keys).
    #[arg(long)]
    pub(crate) name: String,
    /// What the key may do: `read` (see only), `publish` (publish and move releases) or `admin` (everything in its
    /// scope; the default, which is what keys could do before roles).
    #[arg(long, value_name = "ROLE", default_value = "admin")]
    pub(crate) role: String,
    /// Restrict the key to one app.
    #[arg(long, value_name = "APP_ID")]
    pub(crate) app: Option<String>,
    /// Restrict the key's changes to one channel of its app (it still sees the whole app).
    #[arg(long, value_name = "NAME", requires = "app")]
    pub(crate) channel: Option<String>,
    /// Print the server's answer as JSON on stdout (it holds the key).
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// The arguments of `updraft apikey list`.
#[derive(Debug, Args)]
pub(crate) struct ApikeyList {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// The arguments of `updraft apikey revoke`.
#[derive(Debug, Args)]
pub(crate) struct ApikeyRevoke {
    /// The key's name, as `updraft apikey list` shows it.
    pub(crate) name: String,
    /// Print the server's answer as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
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
    Capgo(CapgoPublish),
    /// Publish an Expo update: the folder `npx expo export` wrote.
    Expo(ExpoPublish),
}

/// The arguments of `updraft publish capgo`.
#[derive(Debug, Args)]
pub(crate) struct CapgoPublish {
    /// App id, such as com.example.app.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// Bundle version (semver), such as 1.0.1.
    #[arg(long)]
    pub(crate) version: String,
    /// Point this channel at the new bundle.
    #[arg(long)]
    pub(crate) channel: Option<String>,
    /// Lowest native version the bundle may go to (for `disableAutoUpdate: version_number`).
    #[arg(long)]
    pub(crate) min_update_version: Option<String>,
    /// Also store each file for delta (manifest) updates, as `@capgo/cli bundle upload --delta` does.
    #[arg(long)]
    pub(crate) delta: bool,
    /// Release-notes URL sent to devices with the bundle (plugins 5.35 / 6.35 / 7.35 / 8.35 and later).
    #[arg(long, value_name = "URL")]
    pub(crate) link: Option<String>,
    /// A comment sent to devices with the bundle (same plugins as --link).
    #[arg(long, value_name = "TEXT")]
    pub(crate) comment: Option<String>,
    /// Offer the bundle to this percentage of --channel's devices only (a rollout), instead of pointing the
    /// channel at it; continue with `updraft rollout set|halt|complete`.
    #[arg(long, value_name = "PERCENT", value_parser = rollout_percent, requires = "channel")]
    pub(crate) rollout: Option<updraft_core::RolloutPercent>,
    /// Print the server's answer as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// The zip, or the web build folder (the one with index.html).
    pub(crate) path: PathBuf,
}

/// The arguments of `updraft publish expo`.
#[derive(Debug, Args)]
pub(crate) struct ExpoPublish {
    /// App id.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app_id: String,
    /// Channel (the expo-channel-name devices send).
    #[arg(long)]
    pub(crate) channel: String,
    /// Runtime version the update is for, on every platform; default: expoConfig.json's runtimeVersion (which
    /// it must not contradict).
    #[arg(long)]
    pub(crate) runtime_version: Option<String>,
    /// The iOS runtime version, when it differs (the fingerprint policy: `npx expo-updates
    /// runtimeversion:resolve --platform ios`).
    #[arg(long, value_name = "RUNTIME_VERSION")]
    pub(crate) ios_runtime_version: Option<String>,
    /// The Android runtime version, when it differs.
    #[arg(long, value_name = "RUNTIME_VERSION")]
    pub(crate) android_runtime_version: Option<String>,
    /// Platforms to publish.
    #[arg(long, default_value = "all", value_parser = ["ios", "android", "all"])]
    pub(crate) platform: String,
    /// A note shown in `updraft release list`.
    #[arg(long, default_value = "")]
    pub(crate) message: String,
    /// The public app config (`npx expo config --json --type public`); default DIST_DIR/expoConfig.json.
    #[arg(long, value_name = "FILE")]
    pub(crate) expo_config: Option<PathBuf>,
    /// Offer the update to this percentage of the channel's devices only (a rollout, recorded with the publish);
    /// continue with `updraft rollout set|halt|complete`.
    #[arg(long, value_name = "PERCENT", value_parser = rollout_percent)]
    pub(crate) rollout: Option<updraft_core::RolloutPercent>,
    /// Print the server's answer as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// The `npx expo export` output folder.
    pub(crate) dist_dir: PathBuf,
}

/// The arguments of `updraft audit`.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// The app whose log to show; without it, the whole installation's (needs a key scoped to no app).
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) app: Option<String>,
    /// How many records, newest first.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: u64,
    /// Print JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
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
