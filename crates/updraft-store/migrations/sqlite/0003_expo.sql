-- Expo Updates: content-addressed assets, per-platform releases, signing keys, and each app's default channel.
ALTER TABLE apps ADD COLUMN default_channel TEXT NOT NULL DEFAULT 'production';

CREATE TABLE expo_assets (
    app_id TEXT NOT NULL REFERENCES apps(id),
    sha256 TEXT NOT NULL,
    md5 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
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
    position INTEGER NOT NULL,
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
