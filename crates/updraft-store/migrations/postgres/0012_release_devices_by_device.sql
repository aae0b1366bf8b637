-- release_devices is keyed by (app_id, device_id, release_id) instead of (app_id, release_id, device_id): "this
-- device's rows" (the Capgo stats path) is then a range of the primary key, and the separate release_devices_device
-- index that answered it is gone, one index fewer to write per row.
ALTER TABLE release_devices DROP CONSTRAINT release_devices_pkey;
ALTER TABLE release_devices ADD PRIMARY KEY (app_id, device_id, release_id);
DROP INDEX release_devices_device;
