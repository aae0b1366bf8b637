//! Conversions from database rows to domain types, in one place.

use sqlx::Row;
use sqlx::any::AnyRow;
use updraft_core::{
    ApiKeyRecord, ApiKeyScope, App, AppId, AuditRecord, Bundle, BundleEncryption, BundleMetadata, BundlePin,
    BundleSource, BundleVersion, Channel, ChannelName, ChannelSettings, DeviceId, DeviceReport, DisableAutoUpdate,
    ExpoAsset, ExpoRelease, ExpoReleaseKind, ManifestEntry, OverrideTarget, Platform, Role, SigningKeyRecord,
    StatsEvent, StoreError,
};

use crate::time::from_db;

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("stored {what} is invalid: {detail}"))
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>>(
    row: &'r AnyRow,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column).map_err(|e| StoreError::Other(format!("reading column {column}: {e}")))
}

/// A boolean column: `BOOLEAN` on PostgreSQL, 0 or 1 in an `INTEGER` on SQLite.
pub(crate) fn flag(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    match row.try_get::<bool, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => get::<i64>(row, column).map(|value| value != 0),
    }
}

pub(crate) fn app(row: &AnyRow) -> Result<App, StoreError> {
    Ok(App {
        id: AppId::parse(&get::<String>(row, "id")?).map_err(|e| corrupt("app id", e))?,
        name: get(row, "name")?,
        public_key: get(row, "public_key")?,
        default_channel: get(row, "default_channel")?,
        created_at: from_db(&get::<String>(row, "created_at")?)?,
    })
}

pub(crate) fn bundle(row: &AnyRow) -> Result<Bundle, StoreError> {
    let session_key: Option<String> = get(row, "session_key")?;
    let key_id: Option<String> = get(row, "key_id")?;
    let source = match (get::<Option<String>>(row, "object_key")?, get::<Option<String>>(row, "external_url")?) {
        (Some(object_key), _) => BundleSource::Stored {
            object_key,
            size_bytes: u64::try_from(get::<i64>(row, "size_bytes")?).map_err(|e| corrupt("size", e))?,
            sha256: get(row, "sha256")?,
        },
        (None, Some(url)) => BundleSource::External { url },
        (None, None) => return Err(corrupt("bundle source", "neither object nor URL")),
    };
    let min_update_version: Option<String> = get(row, "min_update_version")?;
    Ok(Bundle {
        id: get(row, "id")?,
        app_id: AppId::parse(&get::<String>(row, "app_id")?).map_err(|e| corrupt("app id", e))?,
        version: BundleVersion::parse(&get::<String>(row, "version")?).map_err(|e| corrupt("bundle version", e))?,
        checksum: get(row, "checksum")?,
        crc32: get(row, "crc32")?,
        encryption: session_key.map(|session_key| BundleEncryption { session_key, key_id }),
        min_update_version: min_update_version
            .map(|v| semver::Version::parse(&v).map_err(|e| corrupt("min_update_version", e)))
            .transpose()?,
        source,
        manifest: Vec::new(),
        metadata: BundleMetadata { link: get(row, "link")?, comment: get(row, "comment")? },
        created_at: from_db(&get::<String>(row, "created_at")?)?,
    })
}

pub(crate) fn channel(row: &AnyRow) -> Result<Channel, StoreError> {
    let flag = |column: &str| flag(row, column);
    let mode: String = get(row, "disable_auto_update")?;
    Ok(Channel {
        id: get(row, "id")?,
        app_id: AppId::parse(&get::<String>(row, "app_id")?).map_err(|e| corrupt("app id", e))?,
        name: ChannelName::parse(&get::<String>(row, "name")?).map_err(|e| corrupt("channel name", e))?,
        bundle_id: get(row, "bundle_id")?,
        settings: ChannelSettings {
            public: flag("public")?,
            disable_auto_update: DisableAutoUpdate::parse(&mode)
                .ok_or_else(|| corrupt("disable_auto_update", &mode))?,
            disable_auto_update_under_native: flag("disable_auto_update_under_native")?,
            ios: flag("ios")?,
            android: flag("android")?,
            electron: flag("electron")?,
            allow_device_self_set: flag("allow_device_self_set")?,
            allow_emulator: flag("allow_emulator")?,
            allow_device: flag("allow_device")?,
            allow_dev: flag("allow_dev")?,
            allow_prod: flag("allow_prod")?,
        },
        created_at: from_db(&get::<String>(row, "created_at")?)?,
        updated_at: from_db(&get::<String>(row, "updated_at")?)?,
    })
}

pub(crate) fn device_override(row: &AnyRow) -> Result<(DeviceId, OverrideTarget), StoreError> {
    Ok((
        DeviceId::parse(&get::<String>(row, "device_id")?).map_err(|e| corrupt("device id", e))?,
        OverrideTarget {
            channel_id: get(row, "channel_id")?,
            bundle: match (flag(row, "pin_builtin")?, get::<Option<i64>>(row, "bundle_id")?) {
                (true, _) => Some(BundlePin::Builtin),
                (false, Some(bundle_id)) => Some(BundlePin::Bundle(bundle_id)),
                (false, None) => None,
            },
        },
    ))
}

pub(crate) fn api_key(row: &AnyRow) -> Result<ApiKeyRecord, StoreError> {
    let app_id: Option<String> = get(row, "app_id")?;
    Ok(ApiKeyRecord {
        id: get(row, "id")?,
        name: get(row, "name")?,
        secret_sha256: get(row, "secret_sha256")?,
        scope: match app_id {
            None => ApiKeyScope::All,
            Some(app_id) => ApiKeyScope::App(AppId::parse(&app_id).map_err(|e| corrupt("app id", e))?),
        },
        role: Role::parse(&get::<String>(row, "role")?).map_err(|e| corrupt("api key role", e))?,
        channel: get::<Option<String>>(row, "channel")?
            .map(|channel| ChannelName::parse(&channel).map_err(|e| corrupt("api key channel", e)))
            .transpose()?,
        created_at: from_db(&get::<String>(row, "created_at")?)?,
        revoked_at: get::<Option<String>>(row, "revoked_at")?.as_deref().map(from_db).transpose()?,
    })
}

pub(crate) fn audit(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: get(row, "id")?,
        at: from_db(&get::<String>(row, "at")?)?,
        key_name: get(row, "key_name")?,
        app_id: get::<Option<String>>(row, "app_id")?
            .map(|app_id| AppId::parse(&app_id).map_err(|e| corrupt("audit app id", e)))
            .transpose()?,
        channel: get(row, "channel")?,
        action: get(row, "action")?,
        before: get(row, "before_json")?,
        after: get(row, "after_json")?,
    })
}

pub(crate) fn signing_key(row: &AnyRow) -> Result<SigningKeyRecord, StoreError> {
    Ok(SigningKeyRecord {
        key_id: get(row, "key_id")?,
        private_key_pem: get(row, "private_key_pem")?,
        certificate_pem: get(row, "certificate_pem")?,
        created_at: from_db(&get::<String>(row, "created_at")?)?,
    })
}

pub(crate) fn device(row: &AnyRow) -> Result<DeviceReport, StoreError> {
    Ok(DeviceReport {
        app_id: AppId::parse(&get::<String>(row, "app_id")?).map_err(|e| corrupt("app id", e))?,
        device_id: DeviceId::parse(&get::<String>(row, "device_id")?).map_err(|e| corrupt("device id", e))?,
        platform: Platform::parse(&get::<String>(row, "platform")?).map_err(|e| corrupt("platform", e))?,
        version_name: get(row, "version_name")?,
        version_build: get(row, "version_build")?,
        version_code: get(row, "version_code")?,
        version_os: get(row, "version_os")?,
        plugin_version: get(row, "plugin_version")?,
        custom_id: get(row, "custom_id")?,
        is_prod: flag(row, "is_prod")?,
        is_emulator: flag(row, "is_emulator")?,
        install_source: get(row, "install_source")?,
        default_channel: get(row, "default_channel")?,
        key_id: get(row, "key_id")?,
        seen_at: from_db(&get::<String>(row, "updated_at")?)?,
    })
}

pub(crate) fn manifest_entry(row: &AnyRow) -> Result<(i64, ManifestEntry), StoreError> {
    Ok((
        get(row, "bundle_id")?,
        ManifestEntry {
            file_name: get(row, "file_name")?,
            file_hash: get(row, "file_hash")?,
            object_key: get(row, "object_key")?,
            size_bytes: get::<Option<i64>>(row, "size_bytes")?.and_then(|size| u64::try_from(size).ok()),
            br_size_bytes: get::<Option<i64>>(row, "br_size_bytes")?.and_then(|size| u64::try_from(size).ok()),
        },
    ))
}

pub(crate) fn stats_event(row: &AnyRow) -> Result<StatsEvent, StoreError> {
    let received_at = from_db(&get::<String>(row, "received_at")?)?;
    Ok(StatsEvent {
        app_id: AppId::parse(&get::<String>(row, "app_id")?).map_err(|e| corrupt("app id", e))?,
        device_id: DeviceId::parse(&get::<String>(row, "device_id")?).map_err(|e| corrupt("device id", e))?,
        action: get(row, "action")?,
        version_name: get(row, "version_name")?,
        old_version_name: get(row, "old_version_name")?,
        platform: get(row, "platform")?,
        plugin_version: get(row, "plugin_version")?,
        received_at,
        // Events stored before device times were kept happened, as far as anyone knows, when they arrived.
        occurred_at: get::<Option<String>>(row, "occurred_at")?
            .map(|t| from_db(&t))
            .transpose()?
            .unwrap_or(received_at),
        metadata: match get::<Option<String>>(row, "metadata")? {
            None => Vec::new(),
            Some(text) => metadata_from_db(&text)?,
        },
    })
}

pub(crate) fn expo_release(row: &AnyRow) -> Result<ExpoRelease, StoreError> {
    let platform = Platform::parse(&get::<String>(row, "platform")?).map_err(|e| corrupt("platform", e))?;
    let kind = match get::<String>(row, "kind")?.as_str() {
        "rollback" => ExpoReleaseKind::RollBackToEmbedded,
        _ => ExpoReleaseKind::Update {
            // The MD5 key is filled in by the caller from the asset table.
            launch_asset: ExpoAsset {
                sha256: get::<Option<String>>(row, "launch_sha256")?.unwrap_or_default(),
                md5: String::new(),
                ext: get::<Option<String>>(row, "launch_ext")?.unwrap_or_default(),
            },
            assets: Vec::new(),
            expo_client: get::<Option<String>>(row, "expo_client")?.unwrap_or_else(|| "{}".into()),
        },
    };
    Ok(ExpoRelease {
        id: get(row, "id")?,
        group_id: get(row, "group_id")?,
        app_id: AppId::parse(&get::<String>(row, "app_id")?).map_err(|e| corrupt("app id", e))?,
        channel: get(row, "channel")?,
        runtime_version: get(row, "runtime_version")?,
        platform,
        created_at: from_db(&get::<String>(row, "created_at")?)?,
        message: get(row, "message")?,
        kind,
    })
}

/// An event's metadata as stored: a JSON object of strings, in the order the device sent it.
pub(crate) fn metadata_to_db(metadata: &[(String, String)]) -> Option<String> {
    if metadata.is_empty() {
        return None;
    }
    let pairs: Vec<String> = metadata
        .iter()
        .map(|(key, value)| {
            format!("{}:{}", serde_json::Value::from(key.as_str()), serde_json::Value::from(value.as_str()))
        })
        .collect();
    Some(format!("{{{}}}", pairs.join(",")))
}

fn metadata_from_db(text: &str) -> Result<Vec<(String, String)>, StoreError> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| corrupt("event metadata", e))?;
    Ok(map.into_iter().map(|(key, value)| (key, value.as_str().unwrap_or_default().to_owned())).collect())
}

/// A stored rollout (`rollouts` row), checked again as [`updraft_core::Rollout::restore`] checks it.
pub(crate) fn rollout(row: &AnyRow) -> Result<updraft_core::StoredRollout, StoreError> {
    use updraft_core::{
        Halt, HaltCause, HaltPolicy, HealthFigures, Rollout, RolloutChange, RolloutId, RolloutPercent, RolloutSpec,
        RolloutState, RolloutTarget, StableTarget, StoredRollout,
    };
    let text = |column: &str| get::<String>(row, column);
    let optional = |column: &str| get::<Option<String>>(row, column);
    let count = |column: &str| -> Result<Option<u64>, StoreError> {
        get::<Option<i64>>(row, column)?.map(|n| u64::try_from(n).map_err(|e| corrupt(column, e))).transpose()
    };
    let version = |raw: &str| BundleVersion::parse(raw).map_err(|e| corrupt("rollout bundle version", e));
    let candidate = match text("candidate_kind")?.as_str() {
        "capgo_bundle" => RolloutTarget::CapgoBundle(version(&text("candidate")?)?),
        "expo_group" => RolloutTarget::ExpoGroup(text("candidate")?),
        other => return Err(corrupt("rollout candidate kind", other)),
    };
    let stable = match (text("stable_kind")?.as_str(), optional("stable")?) {
        ("builtin", _) => StableTarget::Builtin,
        ("capgo_bundle", Some(stable)) => StableTarget::CapgoBundle(version(&stable)?),
        ("expo_previous", _) => StableTarget::ExpoPrevious,
        (other, _) => return Err(corrupt("rollout stable kind", other)),
    };
    let percent = u32::try_from(get::<i64>(row, "percent_bps")?).map_err(|e| corrupt("rollout percentage", e))?;
    let max_failure_rate: f64 =
        text("max_failure_rate")?.parse().map_err(|e| corrupt("rollout maximum failure rate", e))?;
    let min_devices = count("min_devices")?.unwrap_or_default();
    let spec = RolloutSpec {
        id: RolloutId::parse(&text("id")?).map_err(|e| corrupt("rollout id", e))?,
        app_id: AppId::parse(&text("app_id")?).map_err(|e| corrupt("app id", e))?,
        channel: ChannelName::parse(&text("channel")?).map_err(|e| corrupt("rollout channel", e))?,
        candidate,
        stable,
        percent: RolloutPercent::from_basis_points(percent).map_err(|e| corrupt("rollout percentage", e))?,
        policy: HaltPolicy::new(max_failure_rate, min_devices).map_err(|e| corrupt("rollout policy", e))?,
    };
    let state = match text("state")?.as_str() {
        "active" => RolloutState::Active,
        "halted" => {
            let figures = match (count("halt_devices")?, count("halt_failures")?) {
                (Some(devices), Some(failures)) => Some(HealthFigures { devices, failures }),
                _ => None,
            };
            let by = optional("halted_by")?.unwrap_or_default();
            RolloutState::Halted(Halt {
                reason: optional("halt_reason")?.unwrap_or_default(),
                at: from_db(&optional("halted_at")?.ok_or_else(|| corrupt("rollout halt", "no halt time"))?)?,
                by: if flag(row, "halt_automatic")? { HaltCause::Automatic } else { HaltCause::Operator(by) },
                figures,
            })
        }
        "completed" => RolloutState::Completed {
            at: from_db(&optional("completed_at")?.ok_or_else(|| corrupt("rollout", "no completion time"))?)?,
        },
        other => return Err(corrupt("rollout state", other)),
    };
    let rollout = Rollout::restore(spec, state, from_db(&text("started_at")?)?, from_db(&text("health_since")?)?)
        .map_err(|e| corrupt("rollout", e))?;
    let covers = text("covers")?
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (platform, runtime) = line.split_once(' ').ok_or_else(|| corrupt("rollout covers", line))?;
            Ok((Platform::parse(platform).map_err(|e| corrupt("rollout platform", e))?, runtime.to_owned()))
        })
        .collect::<Result<_, StoreError>>()?;
    let last_change = RolloutChange {
        action: text("changed_action")?,
        by: text("changed_by")?,
        at: from_db(&text("changed_at")?)?,
        reason: text("change_reason")?,
    };
    Ok(StoredRollout { rollout, covers, last_change })
}
