-- The two tables the write-behind writer upserts a row of per device (devices, release_devices) become WITHOUT
-- ROWID tables: the primary key is then the table itself, so an upsert searches and writes one B-tree fewer
-- (a rowid table keeps its primary key as a separate index that maps to the row). Same columns, keys and indexes.
-- PostgreSQL has no such distinction (its primary key is always an index beside the heap): nothing to do there.
CREATE TABLE devices_by_key (
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
) WITHOUT ROWID;
INSERT INTO devices_by_key (app_id, device_id, platform, version_name, version_build, version_code, version_os,
        plugin_version, custom_id, is_prod, is_emulator, install_source, default_channel, key_id, created_at,
        updated_at)
    SELECT app_id, device_id, platform, version_name, version_build, version_code, version_os, plugin_version,
        custom_id, is_prod, is_emulator, install_source, default_channel, key_id, created_at, updated_at
    FROM devices;
DROP TABLE devices;
ALTER TABLE devices_by_key RENAME TO devices;
CREATE INDEX devices_app_updated ON devices(app_id, updated_at, device_id);

CREATE TABLE release_devices_by_key (
    app_id TEXT NOT NULL,
    release_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    protocol TEXT NOT NULL,
    group_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    offered_at TEXT,
    running_at TEXT,
    failed_at TEXT,
    failure TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (app_id, release_id, device_id)
) WITHOUT ROWID;
INSERT INTO release_devices_by_key (app_id, release_id, device_id, protocol, group_id, channel, offered_at,
        running_at, failed_at, failure, seen_at)
    SELECT app_id, release_id, device_id, protocol, group_id, channel, offered_at, running_at, failed_at, failure,
        seen_at
    FROM release_devices;
DROP TABLE release_devices;
ALTER TABLE release_devices_by_key RENAME TO release_devices;
CREATE INDEX release_devices_group ON release_devices(app_id, channel, group_id);
-- With seen_at last, "this device's newest row" (the Capgo stats path) is one index seek: with (app_id, device_id)
-- alone SQLite's planner prefers release_devices_app_seen for its order and scans every row of the app.
CREATE INDEX release_devices_device ON release_devices(app_id, device_id, seen_at);
-- Made by 0013 for ageing and capping; dropped with the old table, so made again.
CREATE INDEX release_devices_app_seen ON release_devices(app_id, seen_at, device_id, release_id);
