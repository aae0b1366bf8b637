-- Updraft metadata, SQLite flavour. Times are RFC 3339 UTC text with milliseconds.
CREATE TABLE apps (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE bundles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id TEXT NOT NULL REFERENCES apps(id),
    version TEXT NOT NULL,
    checksum TEXT NOT NULL,
    crc32 TEXT,
    session_key TEXT,
    key_id TEXT,
    min_update_version TEXT,
    object_key TEXT,
    size_bytes INTEGER,
    sha256 TEXT,
    external_url TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    CHECK ((object_key IS NULL) <> (external_url IS NULL))
);
-- A version name is unique among an app's live bundles.
CREATE UNIQUE INDEX bundles_live_version ON bundles(app_id, version) WHERE deleted = 0;

CREATE TABLE channels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id TEXT NOT NULL REFERENCES apps(id),
    name TEXT NOT NULL,
    bundle_id INTEGER REFERENCES bundles(id),
    public INTEGER NOT NULL,
    disable_auto_update TEXT NOT NULL,
    disable_auto_update_under_native INTEGER NOT NULL,
    ios INTEGER NOT NULL,
    android INTEGER NOT NULL,
    electron INTEGER NOT NULL,
    allow_device_self_set INTEGER NOT NULL,
    allow_emulator INTEGER NOT NULL,
    allow_device INTEGER NOT NULL,
    allow_dev INTEGER NOT NULL,
    allow_prod INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (app_id, name)
);

CREATE TABLE device_overrides (
    app_id TEXT NOT NULL REFERENCES apps(id),
    device_id TEXT NOT NULL,
    channel_id INTEGER REFERENCES channels(id) ON DELETE CASCADE,
    bundle_id INTEGER REFERENCES bundles(id),
    updated_at TEXT NOT NULL,
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
    is_prod INTEGER NOT NULL,
    is_emulator INTEGER NOT NULL,
    install_source TEXT NOT NULL,
    default_channel TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (app_id, device_id)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    app_id TEXT,
    created_at TEXT NOT NULL
);
