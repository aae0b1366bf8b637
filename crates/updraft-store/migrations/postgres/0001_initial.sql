-- Updraft metadata, PostgreSQL flavour: the same tables and columns as the SQLite migrations 0001-0003, so one set
-- of statements serves both. Times are RFC 3339 UTC text with milliseconds (sorts as text); integers are BIGINT and
-- flags BOOLEAN.
CREATE TABLE apps (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    public_key TEXT,
    default_channel TEXT NOT NULL DEFAULT 'production'
);

CREATE TABLE bundles (
    id BIGSERIAL PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id),
    version TEXT NOT NULL,
    checksum TEXT NOT NULL,
    crc32 TEXT,
    session_key TEXT,
    key_id TEXT,
    min_update_version TEXT,
    object_key TEXT,
    size_bytes BIGINT,
    sha256 TEXT,
    external_url TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted BIGINT NOT NULL DEFAULT 0,
    CHECK ((object_key IS NULL) <> (external_url IS NULL))
);
-- A version name is unique among an app's live bundles.
CREATE UNIQUE INDEX bundles_live_version ON bundles(app_id, version) WHERE deleted = 0;
CREATE INDEX bundles_object_key ON bundles(object_key);

CREATE TABLE channels (
    id BIGSERIAL PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id),
    name TEXT NOT NULL,
    bundle_id BIGINT REFERENCES bundles(id),
    public BOOLEAN NOT NULL,
    disable_auto_update TEXT NOT NULL,
    disable_auto_update_under_native BOOLEAN NOT NULL,
    ios BOOLEAN NOT NULL,
    android BOOLEAN NOT NULL,
    electron BOOLEAN NOT NULL,
    allow_device_self_set BOOLEAN NOT NULL,
    allow_emulator BOOLEAN NOT NULL,
    allow_device BOOLEAN NOT NULL,
    allow_dev BOOLEAN NOT NULL,
    allow_prod BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (app_id, name)
);

CREATE TABLE device_overrides (
    app_id TEXT NOT NULL REFERENCES apps(id),
    device_id TEXT NOT NULL,
    channel_id BIGINT REFERENCES channels(id) ON DELETE CASCADE,
    bundle_id BIGINT REFERENCES bundles(id),
    updated_at TEXT NOT NULL,
    pin_builtin BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (app_id, device_id)
);

CREATE TABLE devices (
    app_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    version_name TEXT NOT NULL,
    version_build TEXT NOT NULL,
    version_code TEXT NOT NULL,
    version_os TEXT NOT NULL,
    plugin_version TEXT NOT NULL,
    custom_id TEXT NOT NULL,
    is_prod BOOLEAN NOT NULL,
    is_emulator BOOLEAN NOT NULL,
    install_source TEXT NOT NULL,
    default_channel TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (app_id, device_id)
);
CREATE INDEX devices_app_updated ON devices(app_id, updated_at, device_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    app_id TEXT,
    created_at TEXT NOT NULL
);

-- The complete per-file manifest of a bundle uploaded with delta=true.
CREATE TABLE bundle_files (
    bundle_id BIGINT NOT NULL REFERENCES bundles(id),
    file_name TEXT NOT NULL,
    file_hash TEXT NOT NULL,
    object_key TEXT NOT NULL,
    PRIMARY KEY (bundle_id, file_name)
);
CREATE INDEX bundle_files_object_key ON bundle_files(object_key);

CREATE TABLE stats_events (
    id BIGSERIAL PRIMARY KEY,
    app_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    action TEXT NOT NULL,
    version_name TEXT NOT NULL,
    old_version_name TEXT NOT NULL,
    platform TEXT NOT NULL,
    plugin_version TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX stats_events_app_time ON stats_events(app_id, received_at);

-- Versions a device rolled back from (update_fail): never offered to that device again.
CREATE TABLE device_failed_versions (
    app_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    version_name TEXT NOT NULL,
    failed_at TEXT NOT NULL,
    PRIMARY KEY (app_id, device_id, version_name)
);

CREATE TABLE expo_assets (
    app_id TEXT NOT NULL REFERENCES apps(id),
    sha256 TEXT NOT NULL,
    md5 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (app_id, sha256)
);

CREATE TABLE expo_releases (
    id TEXT PRIMARY KEY NOT NULL,
    group_id TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES apps(id),
    channel TEXT NOT NULL,
    runtime_version TEXT NOT NULL,
    platform TEXT NOT NULL,
    created_at TEXT NOT NULL,
    message TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('update', 'rollback')),
    launch_sha256 TEXT,
    launch_ext TEXT,
    expo_client TEXT
);
CREATE INDEX expo_releases_lookup ON expo_releases(app_id, channel, runtime_version, platform, created_at);

CREATE TABLE expo_release_assets (
    release_id TEXT NOT NULL REFERENCES expo_releases(id),
    position BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    ext TEXT NOT NULL,
    PRIMARY KEY (release_id, position)
);

CREATE TABLE signing_keys (
    app_id TEXT NOT NULL REFERENCES apps(id),
    key_id TEXT NOT NULL,
    private_key_pem TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (app_id, key_id)
);
