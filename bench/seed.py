#!/usr/bin/env python3
"""Seeds a running gateway with a realistic installation for bench/run.sh: N apps, 5 Capgo channels each, 10 Capgo
bundles per app (200 releases for 20 apps), one Expo release per platform per app, and a signing key per app.

Usage: seed.py BASE_URL ADMIN_KEY UPDRAFT_BINARY DATA_DIR N_APPS
Prints JSON with what the benchmark cases need (the Expo release id for the no-update case)."""
import io
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import uuid
import zipfile

base, key, binary, data_dir, n_apps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])


def call(method, path, body=None, content_type="application/json"):
    data = json.dumps(body).encode() if content_type == "application/json" and body is not None else body
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("authorization", key)
    if data is not None:
        request.add_header("content-type", content_type)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


def bundle_zip(marker):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.html", f"<html><body>{marker}</body></html>")
        archive.writestr("app.js", "CapacitorUpdater.notifyAppReady();" + "x" * 2000)
    return buffer.getvalue()


def upload(app_id, version, channel=None):
    boundary = uuid.uuid4().hex
    fields = {"app_id": app_id, "version": version}
    if channel:
        fields["channel"] = channel
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="b.zip"\r\n'
                 f'Content-Type: application/zip\r\n\r\n'.encode() + bundle_zip(f"{app_id} {version}") + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return call("POST", "/bundle", b"".join(parts), f"multipart/form-data; boundary={boundary}")


def export_folder(root, marker):
    metadata = {"version": 0, "bundler": "metro", "fileMetadata": {}}
    for platform in ("ios", "android"):
        bundle = f"_expo/static/js/{platform}/index-{marker}.hbc"
        assets = []
        for n in range(5):
            path = f"assets/{marker}-{n}"
            os.makedirs(os.path.join(root, "assets"), exist_ok=True)
            with open(os.path.join(root, path), "wb") as f:
                f.write(f"asset {n} of {marker}".encode() * 50)
            assets.append({"path": path, "ext": "png"})
        os.makedirs(os.path.join(root, os.path.dirname(bundle)), exist_ok=True)
        with open(os.path.join(root, bundle), "wb") as f:
            f.write(f"// {platform} bundle {marker}\n".encode() * 200)
        metadata["fileMetadata"][platform] = {"bundle": bundle, "assets": assets}
    with open(os.path.join(root, "metadata.json"), "w") as f:
        json.dump(metadata, f)
    with open(os.path.join(root, "expoConfig.json"), "w") as f:
        json.dump({"name": f"Bench {marker}", "slug": marker, "version": "1.0.0"}, f)


env = dict(os.environ, UPDRAFT_SERVER=base, UPDRAFT_API_KEY=key, UPDRAFT_DATA_DIR=data_dir, UPDRAFT_LOG="warn")
expo_release = None
for n in range(n_apps):
    app_id = f"com.bench.app{n}"
    call("POST", "/app", {"app_id": app_id, "name": f"Bench {n}"})
    for b in range(10):
        upload(app_id, f"1.0.{b + 1}")
    channels = ["production", "beta", "staging", "qa", "internal"]
    for c, channel in enumerate(channels):
        call("POST", "/channel", {"app_id": app_id, "channel": channel, "version": f"1.0.{10 - c}",
                                  "public": channel == "production", "allow_device_self_set": channel == "beta"})
    with tempfile.TemporaryDirectory() as keys:
        subprocess.run([binary, "keys", "generate", "--app", app_id, "--out", keys], env=env, check=True,
                       stderr=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as dist:
        export_folder(dist, f"app{n}")
        out = subprocess.run([binary, "publish", "expo", "--app", app_id, "--channel", "production",
                              "--runtime-version", "1.0.0", "--json", dist], env=env, check=True,
                             capture_output=True).stdout
        releases = json.loads(out)["releases"]
        if n == 0:
            expo_release = next(r["id"] for r in releases if r["platform"] == "ios")
print(json.dumps({"expo_ios_release": expo_release, "production_version": "1.0.10"}))
