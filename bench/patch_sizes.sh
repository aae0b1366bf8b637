#!/usr/bin/env bash
# bsdiff patch sizes and costs for a 5 MiB JavaScript bundle (the first 5 MiB of the Capgo CLI's real bundle, from
# the test tools) after a small source change and after a dependency change (a real library, node-forge, added as a
# module in the middle), with the worker's own calls (`crates/updraft-server/examples/patch_cost.rs`: diff on one
# thread, then apply to verify), under /usr/bin/time for CPU time and peak memory. See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "error: /usr/bin/time is required: apt-get install -y time" >&2; exit 1; }
cargo build --release --locked -p updraft-server --example patch_cost >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
modules=tests/tools/node_modules
head -c $((5 * 1024 * 1024)) "$modules/@capgo/cli/dist/index.js" >"$work/base.js"
python3 - "$work" "$modules/node-forge/dist/forge.min.js" <<'PY'
import sys
work, dependency = sys.argv[1], sys.argv[2]
base = open(f"{work}/base.js", "rb").read()
middle = len(base) // 2
# A small source change: one string literal edited, two lines added, as a bug fix would.
at = base.index(b'"', middle)
small = base[:at + 1] + b"fixed: " + base[at + 1:]
small = small[:middle // 2] + b"\nconsole.log('v2');\nvar retry = 3;\n" + small[middle // 2:]
open(f"{work}/small.js", "wb").write(small)
# A dependency change: a library added as a module near the middle (every later module shifts).
lib = open(dependency, "rb").read()
line = base.index(b"\n", middle)
open(f"{work}/dependency.js", "wb").write(base[:line + 1] + b"__d(function(){" + lib + b"});\n" + base[line + 1:])
PY
printf '| change | target bytes | brotli-11 bytes | patch bytes | patch / brotli | diff + verify CPU | peak memory |\n|---|---:|---:|---:|---:|---:|---:|\n'
for change in small dependency; do
  line=$(/usr/bin/time -f 'TIME %U %S %M' -o "$work/time" target/release/examples/patch_cost "$work/base.js" "$work/$change.js")
  read -r _ user sys rss <"$work/time"
  # Node's zlib: brotli at its default quality, 11 (what the gateway stores for the full file).
  br=$(node -e "process.stdout.write(String(require('zlib').brotliCompressSync(require('fs').readFileSync(process.argv[1])).length))" "$work/$change.js")
  python3 - "$change" "$line" "$user" "$sys" "$rss" "$br" <<'PY'
import re, sys
change, line, user, sys_, rss, br = sys.argv[1:]
n = dict(re.findall(r"(target|patch) (\d+) B", line))
patch, br = int(n["patch"]), int(br)
print(f"| {change} | {n['target']} | {br} | {patch} | {100 * patch / br:.1f} % | {float(user) + float(sys_):.2f} s | {int(rss) / 1024:.0f} MiB |")
PY
done
