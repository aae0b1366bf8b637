#!/usr/bin/env bash
# Measures update checks against the same binary's GET /health, on loopback, with wrk (see docs/benchmarks.md).
#
#   bench/run.sh                       # full run: release build, 20 apps, 10 s per case, 64 connections
#   bench/run.sh --quick               # a few seconds per case (CI runs this to catch breakage)
#   bench/run.sh --profile debug       # reuse the debug build (no release build)
#   bench/run.sh --duration 30 --apps 20 --connections 64
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10 apps=20 connections=64 threads=2 profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) duration=2 apps=3 ;;
    --profile) profile="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --apps) apps="$2"; shift ;;
    --connections) connections="$2"; shift ;;
    *) echo "error: unknown option $1 (see the header of bench/run.sh)" >&2; exit 2 ;;
  esac
  shift
done
command -v wrk >/dev/null || { echo "error: wrk is required: apt-get install -y wrk" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 is required" >&2; exit 1; }

case "$profile" in
  release) cargo build --release --locked -p updraft-server >&2; bin=target/release/updraft ;;
  debug) cargo build --locked -p updraft-server >&2; bin=target/debug/updraft ;;
  *) echo "error: --profile must be release or debug" >&2; exit 2 ;;
esac

data=$(mktemp -d)
key=bench-admin-key-0123456789
UPDRAFT_LISTEN=127.0.0.1:0 UPDRAFT_DATA_DIR="$data" UPDRAFT_ADMIN_API_KEY="$key" UPDRAFT_LOG=warn \
  "$bin" serve >"$data/stdout" 2>"$data/stderr" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 100); do grep -q "listening on" "$data/stdout" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/^updraft listening on //p' "$data/stdout")
[ -n "$base" ] || { echo "error: the gateway did not start:" >&2; cat "$data/stderr" >&2; exit 1; }

echo "seeding $apps apps (10 Capgo bundles and 5 channels each, one signed Expo release per platform)..." >&2
seed=$(python3 bench/seed.py "$base" "$key" "$bin" "$data" "$apps")
expo_release=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["expo_ios_release"])' "$seed")

# Check each case answers what it should before timing it.
check() { curl -s "$@"; }
check -X POST "$base/updates" -H 'content-type: application/json' \
  -d '{"platform":"android","device_id":"d","app_id":"com.bench.app0","version_build":"1.0.0","version_name":"1.0.0","plugin_version":"8.51.14"}' \
  | grep -q '"version":"1.0.10"' || { echo "error: the update case does not offer an update" >&2; exit 1; }
check -X POST "$base/updates" -H 'content-type: application/json' \
  -d '{"platform":"android","device_id":"d","app_id":"com.bench.app0","version_build":"1.0.0","version_name":"1.0.10","plugin_version":"8.51.14"}' \
  | grep -q 'no_new_version_available' || { echo "error: the no-update case does not answer no update" >&2; exit 1; }
expo_headers=(-H 'expo-protocol-version: 1' -H 'expo-platform: ios' -H 'expo-runtime-version: 1.0.0'
  -H 'expo-channel-name: production' -H 'expo-expect-signature: sig, keyid="main", alg="rsa-v1_5-sha256"')
check "$base/expo/com.bench.app0/manifest" "${expo_headers[@]}" | grep -q 'name="manifest"' \
  || { echo "error: the Expo case does not serve a manifest" >&2; exit 1; }
check "$base/expo/com.bench.app0/manifest" "${expo_headers[@]}" -H "expo-current-update-id: $expo_release" \
  | grep -q 'noUpdateAvailable' || { echo "error: the Expo no-update case does not answer a directive" >&2; exit 1; }

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
results="$data/results.jsonl"
run_case() {
  local name="$1" script="$2" path="$3"; shift 3
  local combined="$data/$name.lua"
  { [ -n "$script" ] && cat "bench/wrk/$script"; cat bench/wrk/report.lua; } >"$combined"
  local before after line
  before=$(cpu_ticks)
  line=$(env "$@" wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "$combined" "$base$path" | tail -n 1)
  after=$(cpu_ticks)
  python3 - "$name" "$line" "$before" "$after" "$ticks" >>"$results" <<'PY'
import json, sys
name, line, before, after, ticks = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cpu_ms = (after - before) / ticks * 1000
line.update(name=name, cpu_ms_per_1000=cpu_ms / max(line["requests"], 1) * 1000)
print(json.dumps(line))
PY
  echo "  $name done" >&2
}

echo "running each case for ${duration}s at $connections connections ($threads wrk threads)..." >&2
run_case health "" /health
run_case capgo_update capgo.lua /updates BENCH_APP=com.bench.app0 BENCH_VERSION_NAME=1.0.0
run_case capgo_no_update capgo.lua /updates BENCH_APP=com.bench.app0 BENCH_VERSION_NAME=1.0.10
run_case expo_manifest_signed expo.lua /expo/com.bench.app0/manifest BENCH_APP=com.bench.app0
run_case expo_no_update_signed expo.lua /expo/com.bench.app0/manifest BENCH_APP=com.bench.app0 BENCH_CURRENT_UPDATE_ID="$expo_release"

rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
metrics=$(curl -s "$base/metrics")
python3 - "$results" "$rss_kb" "$profile" "$duration" "$connections" "$metrics" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rss_mb, profile, duration, connections, metrics = int(sys.argv[2]) / 1024, sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
health = rows[0]
print(f"profile {profile}, {duration}s per case, {connections} connections; server peak RSS {rss_mb:.1f} MB")
print()
print("| case | requests/s | p50 ms | p99 ms | ratio to /health | p99 vs /health | CPU ms per 1000 | non-2xx/errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['name']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rps'] / health['rps']:.2f} | "
          f"{r['p99_ms'] / max(health['p99_ms'], 1e-9):.2f} | {r['cpu_ms_per_1000']:.1f} | {r['non_2xx_or_errors']} |")
signatures = next((l.split()[1] for l in metrics.splitlines() if l.startswith("updraft_expo_signatures_total ")), "?")
shed = next((l.split()[1] for l in metrics.splitlines() if l.startswith("updraft_write_queue_shed_total ")), "?")
print()
print(f"RSA signatures made during the whole run: {signatures}; device reports shed: {shed}")
failed = [r["name"] for r in rows if r["non_2xx_or_errors"] > 0]
if failed:
    print(f"error: non-2xx answers or socket errors in {failed}", file=sys.stderr)
    sys.exit(1)
PY
