#!/usr/bin/env bash
# Measures update checks against the same binary's GET /health, on loopback, with wrk (see docs/benchmarks.md).
#
#   bench/run.sh                       # full run: release build, 20 apps, 10 s per case, 64 connections
#   bench/run.sh --quick               # a few seconds per case (CI runs this to catch breakage)
#   bench/run.sh --profile debug       # reuse the debug build (no release build)
#   bench/run.sh --duration 30 --apps 20 --connections 64
#   bench/run.sh --rounds 3            # every case three times, in turn; the table shows each case's median
#   bench/run.sh --perf DIR            # also record each case with perf; DIR/<case>.txt lists the top entries
#   bench/run.sh --saturate 60         # 100 000 devices whose reports all change, for 60 s: none may be lost
#   bench/run.sh --scale               # 10 000 bundles, 1 000 channels, 1 000 000 devices: peak RSS, reload time
#   bench/run.sh --database-url URL    # run the gateway on that database (an empty PostgreSQL, for instance)
#
# Every run ends with "device reports shed: N" (reports lost: shed because the coalescing map was full, or refused
# for good by the database) and exits non-zero when N > 0, as on any non-2xx answer.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10 apps=20 connections=64 threads=2 profile=release perf_dir="" saturate="" scale="" database_url=""
devices=1000000 rounds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) duration=2 apps=3 ;;
    --profile) profile="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --apps) apps="$2"; shift ;;
    --connections) connections="$2"; shift ;;
    --perf) perf_dir="$2"; shift ;;
    --saturate) saturate="$2"; shift ;;
    --scale) scale=1 ;;
    --devices) devices="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --database-url) database_url="$2"; shift ;;
    *) echo "error: unknown option $1 (see the header of bench/run.sh)" >&2; exit 2 ;;
  esac
  shift
done
command -v wrk >/dev/null || { echo "error: wrk is required: apt-get install -y wrk" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 is required" >&2; exit 1; }
[ -z "$perf_dir" ] || command -v perf >/dev/null || { echo "error: --perf needs perf: apt-get install -y linux-perf" >&2; exit 1; }
[ -z "$scale" ] || [ -z "$database_url" ] || { echo "error: --scale seeds the SQLite file directly; drop --database-url" >&2; exit 2; }
if [ -n "$saturate$scale" ]; then apps=1; fi

case "$profile" in
  release) cargo build --release --locked -p updraft-server >&2; bin=target/release/updraft ;;
  debug) cargo build --locked -p updraft-server >&2; bin=target/debug/updraft ;;
  *) echo "error: --profile must be release or debug" >&2; exit 2 ;;
esac

data=$(mktemp -d)
key=bench-admin-key-0123456789
# The gateway and the CLI commands seed.py runs (keys generate writes to the store) use the same database.
[ -z "$database_url" ] || export UPDRAFT_DATABASE__URL="$database_url"
# The load comes from one address and a few device ids, far past the rate limits meant for real fleets: off.
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

echo "seeding $apps apps (10 Capgo bundles and 5 channels each, one signed Expo release per platform)..." >&2
seed=$(python3 bench/seed.py "$base" "$key" "$bin" "$data" "$apps")
expo_release=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["expo_ios_release"])' "$seed")

metrics() { curl -s "$base/metrics"; }
# Device reports lost so far, and pending; printed at the end of every mode.
report_losses() {
  python3 - "$(metrics)" <<'PY'
import sys
lost, pending, other = {}, {}, []
for line in sys.argv[1].splitlines():
    if line.startswith("updraft_coalesced_reports_total{"):
        labels, value = line[line.index("{") + 1:line.index("}")], int(float(line.rsplit(" ", 1)[1]))
        signal = labels.split('signal="')[1].split('"')[0]
        if 'outcome="shed"' in labels or 'outcome="dropped"' in labels:
            lost[signal] = lost.get(signal, 0) + value
    elif line.startswith("updraft_coalesced_pending{"):
        signal = line.split('signal="')[1].split('"')[0]
        pending[signal] = int(float(line.rsplit(" ", 1)[1]))
print(f"device reports shed: {lost.get('device_reports', '?')} (pending {pending.get('device_reports', '?')})")
health = {s: n for s, n in lost.items() if s != "device_reports"}
if health:
    for signal, n in sorted(health.items()):
        print(f"{signal} shed: {n} (pending {pending.get(signal, '?')})")
else:
    # Release-health signals travel in their device report's entry: lost only with it.
    print(f"release-health signals shed: {lost.get('device_reports', '?')} (they travel with the device reports)")
sys.exit(1 if any(lost.values()) or "device_reports" not in lost else 0)
PY
}
# Waits until the writer has nothing pending (at most a minute).
wait_written() {
  for _ in $(seq 1200); do
    metrics | grep -q '^updraft_coalesced_pending{signal="device_reports"} 0$' && return 0
    sleep 0.05
  done
  echo "warning: device reports still pending after a minute" >&2
}
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# CPU of the HTTP worker threads alone (actix names them "actix-server worker N"); the rest of the process is the
# background work: the device writer (and SQLite's own thread), catalog reloads, the runtime's other threads.
worker_ticks() {
  local total=0 stat rest fields
  for stat in /proc/"$pid"/task/*/stat; do
    read -r rest <"$stat" 2>/dev/null || continue
    case "$rest" in *"(actix-server"*) ;; *) continue ;; esac
    read -ra fields <<<"${rest##*) }"
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}
rss_mb() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }

if [ -n "$saturate" ]; then
  echo "saturation: 100000 distinct devices, every report new, ${saturate}s at $connections connections..." >&2
  { cat bench/wrk/saturate.lua bench/wrk/report.lua; } >"$data/saturate.lua"
  line=$(BENCH_APP=com.bench.app0 BENCH_DEVICES=100000 BENCH_THREADS=$threads BENCH_SENT_FILE="$data/sent" \
    wrk -t"$threads" -c"$connections" -d"${saturate}s" -s "$data/saturate.lua" "$base/updates" | tail -n 1)
  load_end=$(date +%s.%N)
  echo "load: $line"
  status=0
  python3 bench/fleet_check.py "$base" "$key" com.bench.app0 "$data/sent" "$connections" "$load_end" || status=1
  echo "server peak RSS $(rss_mb) MB"
  report_losses || status=1
  exit "$status"
fi

if [ -n "$scale" ]; then
  app=com.bench.scale
  curl -sf -X POST "$base/app" -H "authorization: $key" -H 'content-type: application/json' \
    -d "{\"app_id\":\"$app\",\"name\":\"Scale\"}" >/dev/null
  python3 bench/scale_seed.py "$data/updraft.db" "$app" 10000 1000 1000 >&2
  # Any management write on the app reloads its catalog; the gateway reports how long the reload took.
  reload() {
    local started ended
    started=$(date +%s%N)
    curl -sf -X POST "$base/channel" -H "authorization: $key" -H 'content-type: application/json' \
      -d "{\"app_id\":\"$app\",\"channel\":\"channel-0000\",\"public\":true}" >/dev/null
    ended=$(date +%s%N)
    local seconds
    seconds=$(metrics | awk '/^updraft_index_refresh_seconds / {print $2}')
    echo "catalog reload of $app ($1): $(python3 -c "print(f'{float(\"$seconds\") * 1000:.0f}')") ms" \
      "(the whole channel write: $(( (ended - started) / 1000000 )) ms)"
  }
  reload "10000 bundles, 1000 channels, 1000 device overrides, no devices yet"
  echo "$devices distinct devices checking in (${duration}s at $connections connections)..." >&2
  { cat bench/wrk/fleet.lua bench/wrk/report.lua; } >"$data/fleet.lua"
  line=$(BENCH_APP=$app BENCH_DEVICES="$devices" BENCH_THREADS=$threads \
    wrk -t"$threads" -c"$connections" -d"${duration}s" -s "$data/fleet.lua" "$base/updates" | tail -n 1)
  echo "load: $line"
  wait_written
  rows=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM devices WHERE app_id = ?', (sys.argv[2],)).fetchone()[0])" "$data/updraft.db" "$app")
  echo "device rows of $app: $rows; server peak RSS after they checked in: $(rss_mb) MB"
  reload "10000 bundles, 1000 channels, 1000 device overrides, $rows device rows"
  status=0
  report_losses || status=1
  [ "$rows" -ge "$devices" ] || { echo "error: only $rows of $devices devices have a row (raise --duration)" >&2; status=1; }
  exit "$status"
fi

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

# The rollout case: half of app1's production devices are offered 1.0.9, the rest keep 1.0.10 (each check buckets
# its device). Its ratio to /health is the plain capgo_update case's, give or take the noise.
check -X POST "$base/rollout" -H "authorization: $key" -H 'content-type: application/json' \
  -d '{"app_id":"com.bench.app1","channel":"production","version":"1.0.9","percent":50}' | grep -q '"state":"active"' \
  || { echo "error: the rollout case could not start a rollout" >&2; exit 1; }

results="$data/results.jsonl"
[ -z "$perf_dir" ] || mkdir -p "$perf_dir"
run_case() {
  local name="$1" script="$2" path="$3" round="$round"; shift 3
  local combined="$data/$name.lua"
  { [ -n "$script" ] && cat "bench/wrk/$script"; cat bench/wrk/report.lua; } >"$combined"
  local before after line recorder=""
  if [ -n "$perf_dir" ]; then
    # Until the case's reports are written, as its CPU figure counts: the niced writer catches up after the load.
    perf record -e cpu-clock -F 999 -p "$pid" -o "$perf_dir/$name.data" >/dev/null 2>&1 &
    recorder=$!
  fi
  before=$(cpu_ticks) workers_before=$(worker_ticks)
  line=$(env "$@" wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "$combined" "$base$path" | tail -n 1)
  # The case's CPU includes writing what its checks reported: the writer's last batches would otherwise land in the
  # next case's measurement (or in none, for the last case).
  wait_written
  after=$(cpu_ticks) workers_after=$(worker_ticks)
  if [ -n "$recorder" ]; then
    kill -INT "$recorder" 2>/dev/null || true
    wait "$recorder" || true
    { perf report -i "$perf_dir/$name.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | sed 's/  */ /g' | head -40 >"$perf_dir/$name.txt"; } || true
  fi
  python3 - "$name" "$line" "$before" "$after" "$ticks" "$workers_before" "$workers_after" "$(uptime)" "$round" >>"$results" <<'PY'
import json, sys
name, line, before, after, ticks = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
workers_before, workers_after, uptime, round_ = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8], int(sys.argv[9])
per_1000 = lambda ticks_used: ticks_used / ticks * 1000 / max(line["requests"], 1) * 1000
line.update(name=name, cpu_ms_per_1000=per_1000(after - before),
            worker_cpu_ms_per_1000=per_1000(workers_after - workers_before),
            load=uptime.split("load average:")[-1].strip(), round=round_)
print(json.dumps(line))
PY
  echo "  $name done (round $round)" >&2
}

echo "running each case for ${duration}s at $connections connections ($threads wrk threads), $rounds round(s)..." >&2
for round in $(seq "$rounds"); do
  run_case health "" /health
  run_case capgo_update capgo.lua /updates BENCH_APP=com.bench.app0 BENCH_VERSION_NAME=1.0.0
  run_case capgo_no_update capgo.lua /updates BENCH_APP=com.bench.app0 BENCH_VERSION_NAME=1.0.10
  run_case capgo_update_in_rollout capgo.lua /updates BENCH_APP=com.bench.app1 BENCH_VERSION_NAME=1.0.0
  run_case expo_manifest_signed expo.lua /expo/com.bench.app0/manifest BENCH_APP=com.bench.app0
  run_case expo_no_update_signed expo.lua /expo/com.bench.app0/manifest BENCH_APP=com.bench.app0 BENCH_CURRENT_UPDATE_ID="$expo_release"
  # The floor again: the machine's load drifts (other work on the same cores), so ratios use both measurements.
  run_case health_end "" /health
done

rss=$(rss_mb)
wait_written
python3 - "$results" "$rss" "$profile" "$duration" "$connections" "$(metrics)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rss_mb, profile, duration, connections, metrics = float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
rounds = sorted({r["round"] for r in rows})
# Each round's floor is the mean of /health measured first and last in it (the machine's load drifts).
for round_ in rounds:
    ends = [r for r in rows if r["round"] == round_ and r["name"] in ("health", "health_end")]
    floor = {k: sum(r[k] for r in ends) / len(ends) for k in ("rps", "p99_ms", "cpu_ms_per_1000", "worker_cpu_ms_per_1000")}
    for r in rows:
        if r["round"] == round_:
            r.update(rps_ratio=r["rps"] / floor["rps"], p99_ratio=r["p99_ms"] / max(floor["p99_ms"], 1e-9),
                     cpu_ratio=r["cpu_ms_per_1000"] / max(floor["cpu_ms_per_1000"], 1e-9),
                     worker_ratio=r["worker_cpu_ms_per_1000"] / max(floor["worker_cpu_ms_per_1000"], 1e-9))
print(f"profile {profile}, {duration}s per case, {connections} connections, {len(rounds)} round(s); "
      f"server peak RSS {rss_mb:.1f} MB")
print("ratios are to the mean of the round's health and health_end (the floor, measured first and last)")
print("CPU: the whole server process; workers: its HTTP worker threads alone (the rest is the background writer)")
header = ("| case | requests/s | p50 ms | p99 ms | ratio to /health | p99 vs /health | CPU ms per 1000 | CPU vs /health "
          "| workers' CPU ms per 1000 | workers vs /health | non-2xx/errors | load (1, 5, 15 min) |")
rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
def line(name, r):
    return (f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rps_ratio']:.2f} | "
            f"{r['p99_ratio']:.2f} | {r['cpu_ms_per_1000']:.1f} | {r['cpu_ratio']:.2f} | "
            f"{r['worker_cpu_ms_per_1000']:.1f} | {r['worker_ratio']:.2f} | {r['non_2xx_or_errors']} | {r['load']} |")
for round_ in rounds:
    print()
    if len(rounds) > 1:
        print(f"round {round_}:")
    print(header)
    print(rule)
    for r in rows:
        if r["round"] == round_:
            print(line(r["name"], r))
if len(rounds) > 1:
    def median(values):
        values = sorted(values)
        middle = len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    print()
    print(f"median of {len(rounds)} rounds (each column on its own; ratios are medians of the per-round ratios):")
    print(header)
    print(rule)
    for name in dict.fromkeys(r["name"] for r in rows):
        mine = [r for r in rows if r["name"] == name]
        merged = {k: median([r[k] for r in mine]) for k in mine[0] if isinstance(mine[0][k], (int, float))}
        merged["non_2xx_or_errors"] = sum(r["non_2xx_or_errors"] for r in mine)
        merged["load"] = " / ".join(r["load"].split(",")[0] for r in mine) + " (1 min, per round)"
        print(line(name, merged))
signatures = next((l.split()[1] for l in metrics.splitlines() if l.startswith("updraft_expo_signatures_total ")), "?")
print()
print(f"RSA signatures made during the whole run: {signatures}")
failed = [r["name"] for r in rows if r["non_2xx_or_errors"] > 0]
if failed:
    print(f"error: non-2xx answers or socket errors in {failed}", file=sys.stderr)
    sys.exit(1)
PY
report_losses
