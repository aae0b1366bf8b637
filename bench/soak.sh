#!/usr/bin/env bash
# A saturation soak (not CI): update checks from 5 000 devices at full speed for 60 s, on loopback, while the
# gateway's resident memory is sampled every 5 s. It passes when every answer is 2xx and RSS stays flat after the
# warm-up (the first 20 s, while the coalescing map fills with every device and the allocator settles): at most
# 10 % + 8 MB above the highest RSS of the warm-up. Memory that grows with distinct devices is bounded by design
# (docs/architecture.md); the soak looks for growth with time at a fixed fleet.
#
#   bench/soak.sh                      # release build, 60 s, 64 connections
#   bench/soak.sh --profile debug      # reuse the debug build
#   bench/soak.sh --duration 120 --connections 128
set -euo pipefail
cd "$(dirname "$0")/.."

duration=60 connections=64 threads=2 profile=release warmup=20 devices=5000
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --connections) connections="$2"; shift ;;
    --devices) devices="$2"; shift ;;
    *) echo "error: unknown option $1 (see the header of bench/soak.sh)" >&2; exit 2 ;;
  esac
  shift
done
command -v wrk >/dev/null || { echo "error: wrk is required: apt-get install -y wrk" >&2; exit 1; }
[ "$duration" -gt "$warmup" ] || { echo "error: --duration must be longer than the ${warmup}s warm-up" >&2; exit 2; }
case "$profile" in
  release) cargo build --release --locked -p updraft-server >&2; bin=target/release/updraft ;;
  debug) cargo build --locked -p updraft-server >&2; bin=target/debug/updraft ;;
  *) echo "error: --profile must be release or debug" >&2; exit 2 ;;
esac

data=$(mktemp -d)
key=soak-admin-key-0123456789
# One address and 100 000 devices far past the rate limits meant for real fleets: off.
UPDRAFT_LIMITS__DEVICE_REQUESTS_PER_SECOND=0 UPDRAFT_LIMITS__ADDRESS_REQUESTS_PER_SECOND=0 \
  UPDRAFT_LIMITS__KEY_REQUESTS_PER_SECOND=0 \
  UPDRAFT_LISTEN=127.0.0.1:0 UPDRAFT_DATA_DIR="$data" UPDRAFT_ADMIN_API_KEY="$key" UPDRAFT_LOG=warn \
  "$bin" serve >"$data/stdout" 2>"$data/stderr" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 100); do grep -q "listening on" "$data/stdout" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/^updraft listening on //p' "$data/stdout")
[ -n "$base" ] || { echo "error: the gateway did not start:" >&2; cat "$data/stderr" >&2; exit 1; }

app=com.bench.app0
curl -sf -X POST "$base/app" -H "authorization: $key" -H 'content-type: application/json' \
  -d "{\"app_id\":\"$app\",\"name\":\"Soak\"}" >/dev/null
python3 - "$data/bundle.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("index.html", "<html><body>soak</body></html>")
    z.writestr("app.js", "CapacitorUpdater.notifyAppReady()")
PY
curl -sf -X POST "$base/bundle" -H "authorization: $key" -F app_id=$app -F version=1.0.1 -F channel=production \
  -F "file=@$data/bundle.zip" >/dev/null

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
{ sed "s/^local n_devices = 100000$/local n_devices = $devices/" bench/wrk/capgo.lua; cat bench/wrk/report.lua; } \
  >"$data/soak.lua"
grep -q "n_devices = $devices" "$data/soak.lua" || { echo "error: bench/wrk/capgo.lua changed its device pool" >&2; exit 1; }
echo "soak: ${duration}s of update checks from $devices devices at $connections connections ($profile build)..." >&2
BENCH_APP=$app BENCH_VERSION_NAME=1.0.0 \
  wrk -t"$threads" -c"$connections" -d"${duration}s" -s "$data/soak.lua" "$base/updates" >"$data/wrk.txt" &
load=$!
samples=()
for second in $(seq 5 5 "$duration"); do
  sleep 5
  samples+=("$second:$(rss_kb)")
done
wait "$load"
line=$(tail -n 1 "$data/wrk.txt")
echo "load: $line"
python3 - "$line" "$warmup" "${samples[@]}" <<'PY'
import json, sys
load, warmup, samples = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
series = [(int(s.split(":")[0]), int(s.split(":")[1]) / 1024) for s in samples]
print("RSS MB by second: " + ", ".join(f"{t}s {mb:.1f}" for t, mb in series))
base = max(mb for t, mb in series if t <= warmup)
after = [mb for t, mb in series if t > warmup]
peak = max(after)
allowed = base * 1.10 + 8
flat = peak <= allowed
print(f"RSS after warm-up: {base:.1f} MB at {warmup}s, peak {peak:.1f} MB afterwards (allowed {allowed:.1f}): "
      + ("flat" if flat else "GROWING"))
print(f"requests {load['requests']}, {load['rps']:.0f}/s, p50 {load['p50_ms']:.2f} ms, p99 {load['p99_ms']:.2f} ms, "
      f"non-2xx or errors {load['non_2xx_or_errors']}")
sys.exit(0 if flat and load["non_2xx_or_errors"] == 0 else 1)
PY
