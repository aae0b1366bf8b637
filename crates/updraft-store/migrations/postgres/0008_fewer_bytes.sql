-- bsdiff patches between two Expo launch assets, computed in the background and verified before they are recorded.
-- patch_sha256 is '' when the patch was computed but is not worth sending (not small enough), so it is not tried
-- again; the patch object is patches/<app_id>/<patch_sha256>.
CREATE TABLE expo_patches (
    app_id TEXT NOT NULL,
    base_sha256 TEXT NOT NULL,
    target_sha256 TEXT NOT NULL,
    patch_sha256 TEXT NOT NULL,
    patch_size BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (app_id, base_sha256, target_sha256)
);

-- The size of each delta file's stored brotli copy (files/<app>/<sha256>.br), which delta manifests name as
-- <file_name>.br to plugins that decode brotli files; NULL for files stored before copies existed.
ALTER TABLE bundle_files ADD COLUMN br_size_bytes BIGINT;
