-- Ageing and capping the rows devices create: an app's least recently seen rows are found through an index on the
-- app, the last-seen time and the key that orders rows seen at the same time (devices and stats_events have theirs).
CREATE INDEX release_devices_app_seen ON release_devices(app_id, seen_at, device_id, release_id);
CREATE INDEX device_installs_app_installed ON device_installs(app_id, installed_at, device_id);
