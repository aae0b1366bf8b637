-- Ageing and capping the rows devices create: the least recently seen rows of an app are found through an index
-- that starts with the app and the last-seen time (devices and stats_events have theirs already).
CREATE INDEX release_devices_app_seen ON release_devices(app_id, seen_at);
CREATE INDEX device_installs_app_installed ON device_installs(app_id, installed_at);
