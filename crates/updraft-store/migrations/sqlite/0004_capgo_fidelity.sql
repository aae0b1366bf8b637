-- Capgo device fidelity: bundle release notes, delta file sizes, event times and metadata, and what each device
-- installed.

-- Capgo's `link` and `comment`, sent to plugins 5.35 / 6.35 / 7.35 / 8.35 and later.
ALTER TABLE bundles ADD COLUMN link TEXT;
ALTER TABLE bundles ADD COLUMN comment TEXT;

-- The stored size of each delta file, for `POST /updates/manifest_size` (NULL for files stored before).
ALTER TABLE bundle_files ADD COLUMN size_bytes INTEGER;

-- When an event happened by the device's clock (bounded; NULL for events stored before), and its metadata as a
-- JSON object of strings (NULL when it had none).
ALTER TABLE stats_events ADD COLUMN occurred_at TEXT;
ALTER TABLE stats_events ADD COLUMN metadata TEXT;

-- The bundle each device runs, from its `set` events (a rollback from it or a reset removes the row): the device
-- counts of GET /stats.
CREATE TABLE device_installs (
    app_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    version_name TEXT NOT NULL,
    installed_at TEXT NOT NULL,
    PRIMARY KEY (app_id, device_id)
);
CREATE INDEX device_installs_version ON device_installs(app_id, version_name);

-- What the events recorded so far say: each device's latest `set`, unless it rolled back from that version or
-- reset to builtin after it.
INSERT INTO device_installs (app_id, device_id, version_name, installed_at)
SELECT s.app_id, s.device_id, s.version_name, s.received_at FROM stats_events s
WHERE s.action = 'set' AND s.version_name <> ''
  AND s.id = (SELECT max(l.id) FROM stats_events l
              WHERE l.app_id = s.app_id AND l.device_id = s.device_id AND l.action = 'set')
  AND NOT EXISTS (SELECT 1 FROM stats_events x
                  WHERE x.app_id = s.app_id AND x.device_id = s.device_id AND x.id > s.id
                    AND (x.action = 'reset' OR (x.action = 'update_fail' AND x.version_name = s.version_name)));
