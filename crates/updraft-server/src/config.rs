//! Settings: defaults, then an optional `updraft.toml`, then `UPDRAFT_*` environment variables (later wins), parsed
//! into typed values at start-up with errors that name the key.
//!
//! Secrets (`admin_api_key`) can also come from a file (`UPDRAFT_ADMIN_API_KEY_FILE`) and never appear in `Debug`
//! output or logs.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// A secret string whose `Debug` and `Display` are redacted.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(value: String) -> Self {
        Self(value)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Metadata database settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; defaults to `sqlite://<data_dir>/updraft.db`.
    pub(crate) url: Option<Secret>,
    /// Apply pending migrations when `serve` starts (safe with several instances: PostgreSQL migrations take an
    /// advisory lock). Turn off to run `updraft migrate` as a separate deploy step.
    pub(crate) migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: None, migrate_on_start: true }
    }
}

/// Where bundles and assets are stored.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StorageKind {
    /// A directory under the data dir (the embedded default).
    #[default]
    Fs,
    /// An S3-compatible bucket (AWS S3, Cloudflare R2, MinIO…).
    S3,
}

/// How devices download bytes.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Delivery {
    /// Device URLs point at `public_base_url` (a CDN or public bucket domain).
    Public,
    /// Stable gateway URLs that redirect to a fresh presigned URL (the gateway streams when the backend cannot
    /// presign, or when the redirect would change scheme).
    Presigned,
    /// The gateway streams the bytes.
    #[default]
    Proxy,
}

/// Object storage settings (`[storage]`, `UPDRAFT_STORAGE__*`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StorageSettings {
    /// `fs` or `s3`.
    pub(crate) kind: StorageKind,
    /// Bucket (s3).
    pub(crate) bucket: String,
    /// Region (s3; `auto` for Cloudflare R2).
    pub(crate) region: String,
    /// Endpoint for R2, MinIO or another S3-compatible server.
    pub(crate) endpoint: Option<String>,
    /// Key prefix inside the bucket.
    pub(crate) prefix: String,
    /// Path-style addressing.
    pub(crate) force_path_style: bool,
    /// Static credentials (otherwise the standard AWS chain).
    pub(crate) access_key_id: Option<Secret>,
    /// Secret for `access_key_id`.
    pub(crate) secret_access_key: Option<Secret>,
    /// Public (CDN) base URL of the bucket or prefix, for `delivery = "public"`.
    pub(crate) public_base_url: Option<String>,
    /// `public`, `presigned` or `proxy`.
    pub(crate) delivery: Delivery,
    /// Lifetime of presigned URLs, in seconds.
    pub(crate) presign_ttl_seconds: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            kind: StorageKind::default(),
            bucket: String::new(),
            region: String::new(),
            endpoint: None,
            prefix: String::new(),
            force_path_style: false,
            access_key_id: None,
            secret_access_key: None,
            public_base_url: None,
            delivery: Delivery::default(),
            presign_ttl_seconds: 3600,
        }
    }
}

/// Every setting of the gateway.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Address to listen on.
    pub(crate) listen: String,
    /// Where the SQLite file and filesystem objects live.
    pub(crate) data_dir: PathBuf,
    /// Base of every URL handed to devices; defaults to `http://<listen address>`.
    pub(crate) public_url: Option<String>,
    /// Bootstrap API key with access to everything.
    pub(crate) admin_api_key: Option<Secret>,
    /// Largest bundle upload accepted, in bytes.
    pub(crate) max_upload_bytes: u64,
    /// Devices whose newest report may wait to be written (one entry per device, about 250 bytes); past it, reports
    /// of further devices are shed and counted. The stats queue holds at most `min(this, 50 000)` events.
    pub(crate) device_queue_capacity: usize,
    /// Where publishes, rollout changes and halts are POSTed (`crate::webhooks`); none when unset.
    pub(crate) webhook_url: Option<String>,
    /// The HMAC-SHA256 key webhook deliveries are signed with; required with `webhook_url`.
    pub(crate) webhook_secret: Option<Secret>,
    /// Metadata database.
    pub(crate) database: DatabaseSettings,
    /// Object storage.
    pub(crate) storage: StorageSettings,
    /// Timeouts and body bounds for slow or hostile clients (`[limits]`).
    pub(crate) limits: crate::limits::LimitSettings,
    /// When set, `GET /metrics` requires this key (`authorization: Bearer <key>`); otherwise it is open.
    pub(crate) metrics_api_key: Option<Secret>,
    /// MiB of downloaded objects kept in memory (`crate::object_cache`); 0 turns the cache off.
    pub(crate) object_cache_mb: u64,
    /// Rows devices create (reports, installs, release health, stats events) not seen for this many days are
    /// deleted (`crate::device_ageing`); 0 keeps them.
    pub(crate) device_retention_days: u64,
    /// The retention in seconds, in place of `device_retention_days` when set (short-lived setups and tests).
    pub(crate) device_retention_seconds: Option<u64>,
    /// Devices one app keeps; past it the least recently seen are deleted (other tables: a multiple, see
    /// `updraft_core::DeviceTable::rows_per_device`); 0: no cap.
    pub(crate) max_devices_per_app: u64,
    /// How often the ageing task runs, in seconds.
    pub(crate) device_ageing_interval_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./updraft-data"),
            public_url: None,
            admin_api_key: None,
            max_upload_bytes: 512 * 1024 * 1024,
            device_queue_capacity: 1_000_000,
            webhook_url: None,
            webhook_secret: None,
            database: DatabaseSettings::default(),
            storage: StorageSettings::default(),
            limits: crate::limits::LimitSettings::default(),
            metrics_api_key: None,
            object_cache_mb: crate::object_cache::DEFAULT_MB,
            device_retention_days: 90,
            device_retention_seconds: None,
            max_devices_per_app: 5_000_000,
            device_ageing_interval_seconds: 600,
        }
    }
}

/// Environment variables that belong to the CLI or the tests, not to the server settings.
const NOT_SETTINGS: &[&str] = &["UPDRAFT_SERVER", "UPDRAFT_API_KEY", "UPDRAFT_LOG", "UPDRAFT_CONFIG"];

impl Settings {
    /// Loads settings: defaults, the file (if given), then the environment.
    pub(crate) fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => Self::default(),
        };
        settings.apply_env(|name| std::env::var(name).ok(), std::env::vars().map(|(k, _)| k))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Applies `UPDRAFT_*` overrides. `env` reads one variable; `names` lists every variable (to report unknown ones).
    pub(crate) fn apply_env(
        &mut self,
        env: impl Fn(&str) -> Option<String>,
        names: impl Iterator<Item = String>,
    ) -> anyhow::Result<()> {
        let secret = |name: &str| -> anyhow::Result<Option<Secret>> {
            if let Some(value) = env(name) {
                return Ok(Some(Secret::new(value)));
            }
            let file_var = format!("{name}_FILE");
            match env(&file_var) {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).with_context(|| format!("{file_var}: reading {path}"))?;
                    Ok(Some(Secret::new(text.trim_end_matches(['\n', '\r']).to_owned())))
                }
                None => Ok(None),
            }
        };
        let number = |name: &str| -> anyhow::Result<Option<u64>> {
            env(name)
                .map(|v| v.trim().parse::<u64>().with_context(|| format!("{name}: {v:?} is not a whole number")))
                .transpose()
        };
        if let Some(listen) = env("UPDRAFT_LISTEN") {
            self.listen = listen;
        }
        if let Some(dir) = env("UPDRAFT_DATA_DIR") {
            self.data_dir = PathBuf::from(dir);
        }
        if let Some(url) = env("UPDRAFT_PUBLIC_URL") {
            self.public_url = Some(url);
        }
        if let Some(key) = secret("UPDRAFT_ADMIN_API_KEY")? {
            self.admin_api_key = Some(key);
        }
        if let Some(limit) = number("UPDRAFT_MAX_UPLOAD_BYTES")? {
            self.max_upload_bytes = limit;
        }
        if let Some(capacity) = number("UPDRAFT_DEVICE_QUEUE_CAPACITY")? {
            self.device_queue_capacity =
                usize::try_from(capacity).context("UPDRAFT_DEVICE_QUEUE_CAPACITY is too large")?;
        }
        if let Some(url) = env("UPDRAFT_WEBHOOK_URL") {
            self.webhook_url = Some(url).filter(|url| !url.trim().is_empty());
        }
        if let Some(secret) = secret("UPDRAFT_WEBHOOK_SECRET")? {
            self.webhook_secret = Some(secret);
        }
        if let Some(url) = secret("UPDRAFT_DATABASE__URL")? {
            self.database.url = Some(url);
        }
        if let Some(flag) = env("UPDRAFT_DATABASE__MIGRATE_ON_START") {
            self.database.migrate_on_start = parse_flag("UPDRAFT_DATABASE__MIGRATE_ON_START", &flag)?;
        }
        self.apply_storage_env(&env, &secret)?;
        self.limits.apply_env(&env)?;
        if let Some(key) = secret("UPDRAFT_METRICS_API_KEY")? {
            self.metrics_api_key = Some(key);
        }
        if let Some(megabytes) = number("UPDRAFT_OBJECT_CACHE_MB")? {
            self.object_cache_mb = megabytes;
        }
        crate::device_ageing::apply_env(self, &number)?;
        let hardening = ["UPDRAFT_METRICS_API_KEY", "UPDRAFT_METRICS_API_KEY_FILE"];
        let known = [
            "UPDRAFT_LISTEN",
            "UPDRAFT_DATA_DIR",
            "UPDRAFT_PUBLIC_URL",
            "UPDRAFT_ADMIN_API_KEY",
            "UPDRAFT_ADMIN_API_KEY_FILE",
            "UPDRAFT_MAX_UPLOAD_BYTES",
            "UPDRAFT_DEVICE_QUEUE_CAPACITY",
            "UPDRAFT_OBJECT_CACHE_MB",
            "UPDRAFT_WEBHOOK_URL",
            "UPDRAFT_WEBHOOK_SECRET",
            "UPDRAFT_WEBHOOK_SECRET_FILE",
            "UPDRAFT_DATABASE__URL",
            "UPDRAFT_DATABASE__URL_FILE",
            "UPDRAFT_DATABASE__MIGRATE_ON_START",
            "UPDRAFT_STORAGE__KIND",
            "UPDRAFT_STORAGE__BUCKET",
            "UPDRAFT_STORAGE__REGION",
            "UPDRAFT_STORAGE__ENDPOINT",
            "UPDRAFT_STORAGE__PREFIX",
            "UPDRAFT_STORAGE__FORCE_PATH_STYLE",
            "UPDRAFT_STORAGE__ACCESS_KEY_ID",
            "UPDRAFT_STORAGE__ACCESS_KEY_ID_FILE",
            "UPDRAFT_STORAGE__SECRET_ACCESS_KEY",
            "UPDRAFT_STORAGE__SECRET_ACCESS_KEY_FILE",
            "UPDRAFT_STORAGE__PUBLIC_BASE_URL",
            "UPDRAFT_STORAGE__DELIVERY",
            "UPDRAFT_STORAGE__PRESIGN_TTL_SECONDS",
        ];
        for name in names {
            let ours = name.starts_with("UPDRAFT_") && !name.starts_with("UPDRAFT_TEST_");
            let hardening_setting =
                hardening.contains(&name.as_str()) || crate::limits::LIMIT_ENV.contains(&name.as_str());
            let hardening_setting = hardening_setting
                || crate::limits::RATE_ENV.contains(&name.as_str())
                || crate::device_ageing::AGEING_ENV.contains(&name.as_str());
            if ours && !known.contains(&name.as_str()) && !NOT_SETTINGS.contains(&name.as_str()) && !hardening_setting {
                tracing::warn!("ignoring unknown setting {name}; see docs/updraft.example.toml for the list");
            }
        }
        Ok(())
    }

    fn apply_storage_env(
        &mut self,
        env: &impl Fn(&str) -> Option<String>,
        secret: &impl Fn(&str) -> anyhow::Result<Option<Secret>>,
    ) -> anyhow::Result<()> {
        let storage = &mut self.storage;
        if let Some(kind) = env("UPDRAFT_STORAGE__KIND") {
            storage.kind = match kind.as_str() {
                "fs" => StorageKind::Fs,
                "s3" => StorageKind::S3,
                other => bail!("UPDRAFT_STORAGE__KIND: {other:?} is not fs or s3"),
            };
        }
        if let Some(delivery) = env("UPDRAFT_STORAGE__DELIVERY") {
            storage.delivery = match delivery.as_str() {
                "public" => Delivery::Public,
                "presigned" => Delivery::Presigned,
                "proxy" => Delivery::Proxy,
                other => bail!("UPDRAFT_STORAGE__DELIVERY: {other:?} is not public, presigned or proxy"),
            };
        }
        for (name, field) in [
            ("UPDRAFT_STORAGE__BUCKET", &mut storage.bucket),
            ("UPDRAFT_STORAGE__REGION", &mut storage.region),
            ("UPDRAFT_STORAGE__PREFIX", &mut storage.prefix),
        ] {
            if let Some(value) = env(name) {
                *field = value;
            }
        }
        if let Some(endpoint) = env("UPDRAFT_STORAGE__ENDPOINT") {
            storage.endpoint = Some(endpoint);
        }
        if let Some(url) = env("UPDRAFT_STORAGE__PUBLIC_BASE_URL") {
            storage.public_base_url = Some(url);
        }
        if let Some(flag) = env("UPDRAFT_STORAGE__FORCE_PATH_STYLE") {
            storage.force_path_style = parse_flag("UPDRAFT_STORAGE__FORCE_PATH_STYLE", &flag)?;
        }
        if let Some(ttl) = env("UPDRAFT_STORAGE__PRESIGN_TTL_SECONDS") {
            storage.presign_ttl_seconds = ttl
                .trim()
                .parse()
                .with_context(|| format!("UPDRAFT_STORAGE__PRESIGN_TTL_SECONDS: {ttl:?} is not a whole number"))?;
        }
        if let Some(id) = secret("UPDRAFT_STORAGE__ACCESS_KEY_ID")? {
            storage.access_key_id = Some(id);
        }
        if let Some(key) = secret("UPDRAFT_STORAGE__SECRET_ACCESS_KEY")? {
            storage.secret_access_key = Some(key);
        }
        Ok(())
    }

    /// Checks values that serde cannot.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        self.limits.validate()?;
        crate::device_ageing::validate(self)?;
        if let Some(key) = &self.metrics_api_key
            && key.expose().len() < 16
        {
            bail!("UPDRAFT_METRICS_API_KEY: the metrics key must be at least 16 characters long");
        }
        if let Some(url) = &self.public_url {
            let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() > "https://".len();
            if !ok || url.contains(char::is_whitespace) {
                bail!("UPDRAFT_PUBLIC_URL: {url:?} is not an http(s) URL such as https://updates.example.com");
            }
        }
        if let Some(key) = &self.admin_api_key
            && key.expose().len() < 16
        {
            bail!("UPDRAFT_ADMIN_API_KEY: the admin key must be at least 16 characters long");
        }
        if let Some(url) = &self.webhook_url {
            let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() > "https://".len();
            if !ok || url.contains(char::is_whitespace) {
                bail!("UPDRAFT_WEBHOOK_URL: {url:?} is not an http(s) URL such as https://hooks.example.com/updraft");
            }
            match &self.webhook_secret {
                None => bail!(
                    "UPDRAFT_WEBHOOK_URL is set but UPDRAFT_WEBHOOK_SECRET is not: set a secret of at least 16 characters, which receivers use to check the X-Updraft-Signature of each delivery"
                ),
                Some(secret) if secret.expose().len() < 16 => {
                    bail!("UPDRAFT_WEBHOOK_SECRET: the webhook secret must be at least 16 characters long")
                }
                Some(_) => {}
            }
        }
        let storage = &self.storage;
        if storage.kind == StorageKind::S3 && storage.bucket.is_empty() {
            bail!("UPDRAFT_STORAGE__BUCKET: storage kind s3 needs a bucket name");
        }
        if storage.access_key_id.is_some() != storage.secret_access_key.is_some() {
            bail!("UPDRAFT_STORAGE__ACCESS_KEY_ID and UPDRAFT_STORAGE__SECRET_ACCESS_KEY must be set together");
        }
        if storage.delivery == Delivery::Public {
            match &storage.public_base_url {
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => {}
                _ => bail!(
                    "UPDRAFT_STORAGE__PUBLIC_BASE_URL: delivery public needs the http(s) base URL of the bucket or CDN"
                ),
            }
        }
        if storage.presign_ttl_seconds == 0 || storage.presign_ttl_seconds > 7 * 24 * 3600 {
            bail!("UPDRAFT_STORAGE__PRESIGN_TTL_SECONDS: use 1 to 604800 seconds (S3 allows at most 7 days)");
        }
        if let Some(url) = &self.database.url {
            // The message names the scheme only: the URL may carry a password.
            updraft_store::Backend::of_url(url.expose()).map_err(|e| anyhow::anyhow!("UPDRAFT_DATABASE__URL: {e}"))?;
        }
        Ok(())
    }

    /// The parsed listen address.
    pub(crate) fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen
            .parse()
            .with_context(|| format!("UPDRAFT_LISTEN: {:?} is not an address such as 127.0.0.1:8080", self.listen))
    }

    /// Which database the settings name.
    pub(crate) fn database_backend(&self) -> updraft_store::Backend {
        updraft_store::Backend::of_url(&self.database_url()).unwrap_or(updraft_store::Backend::Sqlite)
    }

    /// The metadata database URL.
    pub(crate) fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("updraft.db").display()),
        }
    }

    /// The database as an error may name it: host, port and database (or the SQLite file), never the user, the
    /// password or the query string.
    pub(crate) fn database_location(&self) -> String {
        database_location(&self.database_url())
    }

    /// Where filesystem objects live.
    pub(crate) fn objects_dir(&self) -> PathBuf {
        self.data_dir.join("objects")
    }

    /// Where uploads are staged before they are stored.
    pub(crate) fn staging_dir(&self) -> PathBuf {
        self.data_dir.join("staging")
    }
}

/// A true/false setting.
fn parse_flag(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => bail!("{name}: {other:?} is not true or false"),
    }
}

/// `scheme://user:password@host:port/db?options` without the scheme, the credentials and the options.
fn database_location(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    // A host never holds an `@`; an unescaped one in a password comes before the last.
    rest.rfind('@').map_or(rest, |at| &rest[at + 1..]).to_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn with_env(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let mut settings = Settings::default();
        settings.apply_env(|name| map.get(name).cloned(), map.keys().cloned())?;
        settings.validate()?;
        Ok(settings)
    }

    #[test]
    fn defaults_run_with_no_file() {
        let settings = with_env(&[]).unwrap();
        assert_eq!(settings.listen_addr().unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database_url(), "sqlite://./updraft-data/updraft.db");
    }

    #[test]
    fn env_overrides_file_values() {
        let mut settings: Settings = toml::from_str("listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/u\"").unwrap();
        settings
            .apply_env(|n| (n == "UPDRAFT_LISTEN").then(|| "127.0.0.1:7000".to_owned()), std::iter::empty())
            .unwrap();
        assert_eq!(settings.listen, "127.0.0.1:7000");
        assert_eq!(settings.data_dir, PathBuf::from("/srv/u"));
    }

    #[test]
    fn a_webhook_url_needs_a_secret_that_is_never_shown() {
        let error = with_env(&[("UPDRAFT_WEBHOOK_URL", "https://hooks.example.com/u")]).unwrap_err().to_string();
        assert!(error.contains("UPDRAFT_WEBHOOK_SECRET"), "{error}");
        let error = with_env(&[("UPDRAFT_WEBHOOK_URL", "hooks"), ("UPDRAFT_WEBHOOK_SECRET", "0123456789abcdef")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("UPDRAFT_WEBHOOK_URL"), "{error}");
        let error = with_env(&[("UPDRAFT_WEBHOOK_URL", "https://h.example.com"), ("UPDRAFT_WEBHOOK_SECRET", "short")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("16 characters") && !error.contains("short"), "{error}");
        let settings = with_env(&[
            ("UPDRAFT_WEBHOOK_URL", "https://h.example.com"),
            ("UPDRAFT_WEBHOOK_SECRET", "hush-hush-0123456"),
        ])
        .unwrap();
        assert_eq!(settings.webhook_secret.as_ref().map(Secret::expose), Some("hush-hush-0123456"));
        assert!(!format!("{settings:?}").contains("hush-hush"), "Debug redacts the secret");
    }

    #[test]
    fn errors_name_the_variable() {
        let error = with_env(&[("UPDRAFT_LISTEN", "nope")]).unwrap_err().to_string();
        assert!(error.contains("UPDRAFT_LISTEN"), "{error}");
        let error = with_env(&[("UPDRAFT_PUBLIC_URL", "ftp://x")]).unwrap_err().to_string();
        assert!(error.contains("UPDRAFT_PUBLIC_URL"), "{error}");
        let error = with_env(&[("UPDRAFT_MAX_UPLOAD_BYTES", "lots")]).unwrap_err().to_string();
        assert!(error.contains("UPDRAFT_MAX_UPLOAD_BYTES"), "{error}");
        let error = with_env(&[("UPDRAFT_DATABASE__URL", "mysql://root:hunter2@db/updraft")]).unwrap_err().to_string();
        assert!(error.contains("UPDRAFT_DATABASE__URL") && !error.contains("hunter2"), "{error}");
        let error = with_env(&[("UPDRAFT_DATABASE__MIGRATE_ON_START", "sometimes")]).unwrap_err().to_string();
        assert!(error.contains("UPDRAFT_DATABASE__MIGRATE_ON_START"), "{error}");
    }

    #[test]
    fn the_database_location_names_no_credentials() {
        for (url, location) in [
            ("postgres://u:p%40ss@db.example:5432/updraft?sslmode=require", "db.example:5432/updraft"),
            ("postgresql://u:p@ss@127.0.0.1/updraft", "127.0.0.1/updraft"),
            ("postgres://db.example/updraft", "db.example/updraft"),
            ("sqlite:///var/lib/updraft/updraft.db", "/var/lib/updraft/updraft.db"),
        ] {
            assert_eq!(database_location(url), location, "{url}");
        }
    }

    #[test]
    fn postgres_is_chosen_by_the_database_url() {
        let settings = with_env(&[
            ("UPDRAFT_DATABASE__URL", "postgres://updraft:pw@db.internal:5432/updraft"),
            ("UPDRAFT_DATABASE__MIGRATE_ON_START", "false"),
        ])
        .unwrap();
        assert_eq!(settings.database_backend(), updraft_store::Backend::Postgres);
        assert!(!settings.database.migrate_on_start);
        assert_eq!(with_env(&[]).unwrap().database_backend(), updraft_store::Backend::Sqlite);
        assert!(with_env(&[]).unwrap().database.migrate_on_start);
    }

    #[test]
    fn secrets_are_redacted_and_can_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "s3cr3t-admin-key-0123\n").unwrap();
        let settings = with_env(&[("UPDRAFT_ADMIN_API_KEY_FILE", path.to_str().unwrap())]).unwrap();
        assert_eq!(settings.admin_api_key.as_ref().unwrap().expose(), "s3cr3t-admin-key-0123");
        assert!(!format!("{settings:?}").contains("s3cr3t"));
    }

    #[test]
    fn storage_settings_from_env() {
        let settings = with_env(&[
            ("UPDRAFT_STORAGE__KIND", "s3"),
            ("UPDRAFT_STORAGE__BUCKET", "updates"),
            ("UPDRAFT_STORAGE__REGION", "auto"),
            ("UPDRAFT_STORAGE__ENDPOINT", "https://acct.r2.cloudflarestorage.com"),
            ("UPDRAFT_STORAGE__FORCE_PATH_STYLE", "true"),
            ("UPDRAFT_STORAGE__ACCESS_KEY_ID", "AKIA"),
            ("UPDRAFT_STORAGE__SECRET_ACCESS_KEY", "very-secret-value"),
            ("UPDRAFT_STORAGE__DELIVERY", "presigned"),
        ])
        .unwrap();
        assert_eq!(settings.storage.kind, StorageKind::S3);
        assert_eq!(settings.storage.delivery, Delivery::Presigned);
        assert!(settings.storage.force_path_style);
        assert!(!format!("{settings:?}").contains("very-secret-value"));
        let error = with_env(&[("UPDRAFT_STORAGE__KIND", "s3")]).unwrap_err().to_string();
        assert!(error.contains("UPDRAFT_STORAGE__BUCKET"), "{error}");
        let error = with_env(&[("UPDRAFT_STORAGE__DELIVERY", "public")]).unwrap_err().to_string();
        assert!(error.contains("UPDRAFT_STORAGE__PUBLIC_BASE_URL"), "{error}");
        let error = with_env(&[("UPDRAFT_STORAGE__KIND", "gcs")]).unwrap_err().to_string();
        assert!(error.contains("UPDRAFT_STORAGE__KIND"), "{error}");
    }

    #[test]
    fn a_storage_section_keeps_the_other_defaults() {
        let settings: Settings = toml::from_str("[storage]\nkind = \"s3\"\nbucket = \"b\"").unwrap();
        settings.validate().unwrap();
        assert_eq!(settings.storage.presign_ttl_seconds, 3600);
        assert_eq!(settings.storage.delivery, Delivery::Proxy);
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        assert!(toml::from_str::<Settings>("lisen = \"x\"").is_err());
    }

    #[test]
    fn object_cache_size_comes_from_the_environment() {
        let only =
            |value: &'static str| move |name: &str| (name == "UPDRAFT_OBJECT_CACHE_MB").then(|| value.to_owned());
        let mut settings = Settings::default();
        assert_eq!(settings.object_cache_mb, crate::object_cache::DEFAULT_MB);
        settings.apply_env(only("0"), std::iter::empty()).unwrap();
        assert_eq!(settings.object_cache_mb, 0);
        let error = Settings::default().apply_env(only("lots"), std::iter::empty()).unwrap_err();
        assert!(format!("{error:#}").contains("UPDRAFT_OBJECT_CACHE_MB: \"lots\" is not a whole number"), "{error:#}");
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../../docs/updraft.example.toml");
        let settings: Settings = toml::from_str(text).unwrap();
        settings.validate().unwrap();
    }
}
