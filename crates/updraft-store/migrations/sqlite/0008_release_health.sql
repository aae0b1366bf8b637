-- Release health: one row per (app, release, device) saying when a check first offered the release to the device,
-- when the device last ran it and when it first failed on it. Counts are counts of rows, so they are exact however
-- many instances the device reported through. Capgo releases are version names (their group is the same name);
-- Expo releases are update ids, grouped by their publish group (a rollout's candidate).
CREATE TABLE release_devices (
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
);
CREATE INDEX release_devices_group ON release_devices(app_id, channel, group_id);
CREATE INDEX release_devices_device ON release_devices(app_id, device_id);

-- Every halt of a rollout, by an operator or by the health rule: who, when, why, and the figures it saw.
CREATE TABLE rollout_halts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    rollout_id TEXT NOT NULL,
    candidate TEXT NOT NULL,
    halted_at TEXT NOT NULL,
    halted_by TEXT NOT NULL,
    instance TEXT NOT NULL,
    reason TEXT NOT NULL,
    devices INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    failure_rate_ppm INTEGER NOT NULL,
    lower_bound_ppm INTEGER NOT NULL,
    max_failure_rate_ppm INTEGER NOT NULL,
    min_devices INTEGER NOT NULL
);
CREATE INDEX rollout_halts_channel ON rollout_halts(app_id, channel, halted_at);
