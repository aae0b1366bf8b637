-- The rest of the Capgo surface: app public keys, device bundle pins to builtin, delta manifests, stats.
ALTER TABLE apps ADD COLUMN public_key TEXT;

ALTER TABLE device_overrides ADD COLUMN pin_builtin INTEGER NOT NULL DEFAULT 0;

-- The complete per-file manifest of a bundle uploaded with delta=true.
CREATE TABLE bundle_files (
    bundle_id INTEGER NOT NULL REFERENCES bundles(id),
    file_name TEXT NOT NULL,
    file_hash TEXT NOT NULL,
    object_key TEXT NOT NULL,
    PRIMARY KEY (bundle_id, file_name)
);

CREATE TABLE stats_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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

CREATE INDEX devices_app_updated ON devices(app_id, updated_at, device_id);
