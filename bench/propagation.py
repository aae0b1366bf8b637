#!/usr/bin/env python3
"""How long a write through one gateway instance takes to be served by another sharing the same PostgreSQL.

    bench/propagation.py --bin target/release/updraft --database-url postgres://postgres@127.0.0.1:5432/updraft_bench

Starts two instances (A and B) on the given (empty or fresh) database and one shared filesystem store, publishes two
bundles, then flips the production channel between them through A, N times, and times how long until B's update
answer changes (polling B every millisecond). Prints p50 / p95 / max in milliseconds. Stdlib only.
"""
import argparse, json, os, subprocess, sys, tempfile, time, urllib.request, io, zipfile

KEY = "bench-admin-key-0123456789"
APP = "com.example.propagation"


def call(base, method, path, body=None, key=KEY):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if key:
        request.add_header("authorization", key)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def upload(base, version):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("index.html", f"<html>{version}</html>")
    boundary = "benchboundary"
    parts = []
    for name, value in (("app_id", APP), ("version", version)):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="b.zip"\r\n'
                 f"Content-Type: application/zip\r\n\r\n".encode() + buffer.getvalue() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(base + "/bundle", data=b"".join(parts), method="POST")
    request.add_header("content-type", f"multipart/form-data; boundary={boundary}")
    request.add_header("authorization", KEY)
    urllib.request.urlopen(request, timeout=30).read()


def check(base):
    body = {"app_id": APP, "device_id": "bench-device", "version_name": "builtin", "version_build": "1.0.0",
            "platform": "android", "plugin_version": "8.51.14", "is_emulator": False, "is_prod": True}
    return call(base, "POST", "/updates", body, key=None).get("version")


def start(binary, data_dir, database_url):
    env = dict(os.environ, UPDRAFT_LISTEN="127.0.0.1:0", UPDRAFT_DATA_DIR=data_dir, UPDRAFT_ADMIN_API_KEY=KEY,
               UPDRAFT_DATABASE__URL=database_url, UPDRAFT_LOG="warn")
    process = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if not line.startswith("updraft listening on "):
        sys.exit(f"updraft did not start: {line!r}")
    return process, line.strip().removeprefix("updraft listening on ")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default="target/release/updraft")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        a, base_a = start(args.bin, data_dir, args.database_url)
        b, base_b = start(args.bin, data_dir, args.database_url)
        try:
            call(base_a, "POST", "/app", {"app_id": APP, "name": "Propagation"})
            for version in ("1.0.1", "1.0.2"):
                upload(base_a, version)
            lags = []
            for round_ in range(args.rounds):
                version = ("1.0.1", "1.0.2")[round_ % 2]
                call(base_a, "POST", "/channel", {"app_id": APP, "channel": "production", "version": version,
                                                  "public": True})
                written = time.perf_counter()
                while check(base_b) != version:
                    if time.perf_counter() - written > 10:
                        sys.exit(f"round {round_}: instance B never served {version}")
                    time.sleep(0.001)
                lags.append((time.perf_counter() - written) * 1000)
            lags.sort()
            pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
            print(f"propagation A->B over {len(lags)} channel changes: p50 {pick(0.5):.1f} ms, "
                  f"p95 {pick(0.95):.1f} ms, max {lags[-1]:.1f} ms")
        finally:
            for process in (a, b):
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
