#!/usr/bin/env bash
# Large-asset downloads: the gateway serving an Expo launch asset (identity, and the gzip/br copies made at publish)
# against nginx serving the same file from disk (identity, and gzip_static with a `gzip -9` copy), on loopback,
# with wrk. See docs/benchmarks.md, "Fewer bytes".
#
#   bench/downloads.sh                    # release build, a 3 MiB real JavaScript file, 10 s per case, 16 connections
#   bench/downloads.sh --profile debug    # reuse the debug build
#   bench/downloads.sh --file PATH --duration 10 --connections 16
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10 connections=16 threads=2 profile=release file=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --connections) connections="$2"; shift ;;
    --file) file="$2"; shift ;;
    *) echo "error: unknown option $1 (see the header of bench/downloads.sh)" >&2; exit 2 ;;
  esac
  shift
done
command -v wrk >/dev/null || { echo "error: wrk is required: apt-get install -y wrk" >&2; exit 1; }
command -v nginx >/dev/null || { echo "error: nginx is required: apt-get install -y nginx-light" >&2; exit 1; }
case "$profile" in
  release) cargo build --release --locked -p updraft-server >&2; bin=target/release/updraft ;;
  debug) cargo build --locked -p updraft-server >&2; bin=target/debug/updraft ;;
  *) echo "error: --profile must be release or debug" >&2; exit 2 ;;
esac

work=$(mktemp -d)
key=bench-admin-key-0123456789
gateway_pid="" nginx_pid=""
cleanup() {
  [ -z "$gateway_pid" ] || kill "$gateway_pid" 2>/dev/null || true
  [ -z "$nginx_pid" ] || kill "$nginx_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The asset: by default the first 3 MiB of a real JavaScript bundle (the Capgo CLI's, from the test tools).
if [ -z "$file" ]; then
  file=tests/tools/node_modules/@capgo/cli/dist/index.js
  [ -f "$file" ] || { echo "error: $file is missing; run tests/tools/install.sh" >&2; exit 1; }
  head -c $((3 * 1024 * 1024)) "$file" >"$work/bundle.js"
else
  cp "$file" "$work/bundle.js"
fi

# An `expo export` folder whose launch bundle is that file.
python3 - "$work" <<'PY'
import hashlib, json, os, shutil, sys
work = sys.argv[1]
dist = os.path.join(work, "dist")
data = open(os.path.join(work, "bundle.js"), "rb").read()
meta = {}
for platform in ("ios", "android"):
    path = f"_expo/static/js/{platform}/index-{hashlib.md5(data).hexdigest()}.hbc"
    os.makedirs(os.path.dirname(os.path.join(dist, path)), exist_ok=True)
    open(os.path.join(dist, path), "wb").write(data)
    meta[platform] = {"bundle": path, "assets": []}
json.dump({"version": 0, "bundler": "metro", "fileMetadata": meta}, open(os.path.join(dist, "metadata.json"), "w"))
json.dump({"name": "bench", "slug": "bench", "version": "1.0.0", "runtimeVersion": "1.0.0"},
          open(os.path.join(dist, "expoConfig.json"), "w"))
PY

UPDRAFT_LISTEN=127.0.0.1:0 UPDRAFT_DATA_DIR="$work/data" UPDRAFT_ADMIN_API_KEY="$key" UPDRAFT_LOG=warn \
  "$bin" serve >"$work/stdout" 2>"$work/stderr" &
gateway_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/stdout" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/^updraft listening on //p' "$work/stdout")
[ -n "$base" ] || { echo "error: the gateway did not start:" >&2; cat "$work/stderr" >&2; exit 1; }
curl -sf -X POST "$base/app" -H "authorization: $key" -H 'content-type: application/json' \
  -d '{"app_id":"com.example.bench","name":"bench"}' >/dev/null
UPDRAFT_SERVER="$base" UPDRAFT_API_KEY="$key" UPDRAFT_LOG=warn "$bin" publish expo --app com.example.bench \
  --channel production --runtime-version 1.0.0 --json "$work/dist" >/dev/null 2>&1
sha=$(sha256sum "$work/bundle.js" | cut -d' ' -f1)
asset="$base/expo/com.example.bench/assets/$sha.hbc"

size_of_plain() { curl -s -o /dev/null -w '%{size_download}' "$1"; }
# nginx on another free port, serving the same file and its gzip -9 copy (gzip_static), one worker per core.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/www" "$work/nginx"
cp "$work/bundle.js" "$work/www/bundle.js"
gzip -9 -k "$work/www/bundle.js"
# nginx's workers run as an unprivileged user: they must be able to read the files (mktemp -d is 0700).
chmod -R a+rX "$work"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$port;
    root $work/www;
    gzip_static on;
    gzip_vary on;
    types { application/javascript js; }
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
nginx_pid=$!
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/bundle.js" && break; sleep 0.1; done
[ "$(size_of_plain "http://127.0.0.1:$port/bundle.js")" = "$(wc -c <"$work/bundle.js")" ] \
  || { echo "error: nginx does not serve the file:" >&2; cat "$work/nginx/error.log" >&2; exit 1; }

size_of() { curl -s -o /dev/null -w '%{size_download}' -H "accept-encoding: $2" "$1"; }
encoding_of() { curl -s -o /dev/null -D - -H "accept-encoding: $2" "$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-encoding" {print $2}'; }
# CPU time (user + system, in clock ticks) the processes $@ have used so far.
ticks() {
  local total=0 pid fields
  for pid in "$@"; do
    read -r -a fields < <(sed 's/.*) //' "/proc/$pid/stat")
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)
# "<requests/s> <server CPU µs per request>" for wrk against $1 with Accept-Encoding $2, the server being pids $3...
# The CPU per request does not depend on how much of the shared machine the server got, requests/s does.
rate() {
  local url=$1 accept=$2 before after rps
  shift 2
  before=$(ticks "$@")
  rps=$(wrk -t"$threads" -c"$connections" -d"${duration}s" -H "accept-encoding: $accept" "$url" | awk '/Requests\/sec/ {print $2}')
  after=$(ticks "$@")
  python3 -c "import sys; r, t, hz, d = map(float, sys.argv[1:]); print(f'{r} {t / hz / (r * d) * 1e6:.0f}')" \
    "$rps" "$((after - before))" "$hz" "$duration"
}
nginx_workers=$(pgrep -P "$nginx_pid" | tr '\n' ' ')

echo "asset: $(wc -c <"$work/bundle.js") bytes; ${duration}s per case, $connections connections, $threads wrk threads" >&2
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '| Accept-Encoding | Updraft req/s | bytes each | nginx req/s | bytes each | Updraft / nginx | CPU µs per request, Updraft / nginx |\n|---|---:|---:|---:|---:|---:|---:|\n'
for accept in identity gzip br; do
  read -r ours our_cpu < <(rate "$asset" "$accept" "$gateway_pid")
  our_size=$(size_of "$asset" "$accept")
  [ "$(encoding_of "$asset" "$accept")" = "$([ "$accept" = identity ] || echo "$accept")" ] \
    || { echo "error: the gateway did not answer $accept with $accept" >&2; exit 1; }
  # shellcheck disable=SC2086 # one argument per worker pid
  read -r theirs their_cpu < <(rate "http://127.0.0.1:$port/bundle.js" "$accept" $nginx_workers)
  their_size=$(size_of "http://127.0.0.1:$port/bundle.js" "$accept")
  ratio=$(python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}')" "$ours" "$theirs")
  printf '| `%s` | %s | %s | %s | %s | %s | %s / %s |\n' "$accept" "$ours" "$our_size" "$theirs" "$their_size" "$ratio" \
    "$our_cpu" "$their_cpu"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
