#!/usr/bin/env python3
"""Gives an app a large catalog for bench/run.sh --scale, straight in the gateway's SQLite database (uploading
10 000 bundles through the API would reload the catalog 10 000 times): BUNDLES bundles with external URLs and
CHANNELS channels, each pointing at one of them, plus OVERRIDES device overrides. The gateway sees them at the next
reload of the app (any management write on it).

Usage: scale_seed.py DATABASE_FILE APP_ID BUNDLES CHANNELS OVERRIDES"""
import sqlite3
import sys
import time

db, app_id, n_bundles, n_channels, n_overrides = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
connection = sqlite3.connect(db, timeout=30)
with connection:
    first = connection.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM bundles").fetchone()[0]
    connection.executemany(
        "INSERT INTO bundles (app_id, version, checksum, external_url, created_at, updated_at, deleted) "
        "VALUES (?, ?, ?, ?, ?, ?, 0)",
        ((app_id, f"2.{n // 1000}.{n % 1000}", f"{n:064x}", f"https://cdn.example.com/{app_id}/{n}.zip", now, now)
         for n in range(n_bundles)),
    )
    connection.executemany(
        "INSERT INTO channels (app_id, name, bundle_id, public, disable_auto_update, disable_auto_update_under_native,"
        " ios, android, electron, allow_device_self_set, allow_emulator, allow_device, allow_dev, allow_prod,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, 'none', 0, 1, 1, 1, 0, 1, 1, 1, 1, ?, ?)",
        ((app_id, f"channel-{c:04d}", first + (c * 7919) % n_bundles, int(c == 0), now, now)
         for c in range(n_channels)),
    )
    channel_ids = [row[0] for row in connection.execute("SELECT id FROM channels WHERE app_id = ?", (app_id,))]
    connection.executemany(
        "INSERT INTO device_overrides (app_id, device_id, channel_id, bundle_id, updated_at) VALUES (?, ?, ?, NULL, ?)",
        ((app_id, f"override-{d:08d}", channel_ids[d % len(channel_ids)], now) for d in range(n_overrides)),
    )
print(f"seeded {n_bundles} bundles, {n_channels} channels and {n_overrides} device overrides into {app_id}")
