#!/usr/bin/env bash
# The whole Updraft check, as CI runs it: install the upstream test tools, start a real S3-compatible server and a
# throwaway PostgreSQL on loopback, then formatting, lints, the benchmark in quick mode (catches breakage; asserts no
# timings), and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/tools/install.sh
s3s_bin=$(tests/tools/install-s3s.sh)

# s3s-fs on a free loopback port with a throwaway root; stopped on exit.
s3_root=$(mktemp -d)
s3_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$s3s_bin" --host 127.0.0.1 --port "$s3_port" --access-key updraft-test --secret-key updraft-test-secret-key \
  "$s3_root" >"$s3_root.log" 2>&1 &
s3_pid=$!
# PostgreSQL on another free port, in a throwaway cluster (tests/tools/pg-cluster.sh); removed on exit.
pg_root=$(mktemp -d -u /tmp/updraft-pg.XXXXXX)
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'kill "$s3_pid" 2>/dev/null || true; rm -rf "$s3_root" "$s3_root.log"; tests/tools/pg-cluster.sh destroy "$pg_root"' EXIT
UPDRAFT_TEST_DATABASE_URL=$(tests/tools/pg-cluster.sh start "$pg_root" "$pg_port")
export UPDRAFT_TEST_DATABASE_URL
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$s3_port/" && break; sleep 0.05; done
export UPDRAFT_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
export UPDRAFT_TEST_S3_ACCESS_KEY=updraft-test
export UPDRAFT_TEST_S3_SECRET_KEY=updraft-test-secret-key
export UPDRAFT_TEST_S3S_BIN="$s3s_bin"
# The console's browser tests drive headless Chromium through chromedriver; they fail, saying how to install it, when
# it is missing (`apt-get install -y chromium chromium-driver`, as .ci/run does). Screenshots: target/test-artifacts/.
UPDRAFT_CHROMEDRIVER=${UPDRAFT_CHROMEDRIVER:-$(command -v chromedriver || echo /usr/bin/chromedriver)}
export UPDRAFT_CHROMEDRIVER

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
bench/run.sh --quick --profile debug
# cargo prints one summary per test binary (the last is often a doc-test run with nothing in it); the final line
# adds them all up.
test_log=$(mktemp)
set +e
cargo test --workspace --locked 2>&1 | tee "$test_log"
test_status=${PIPESTATUS[0]}
set -e
python3 - "$test_log" <<'PY'
import re, sys
passed = failed = 0
for line in open(sys.argv[1], errors="replace"):
    match = re.search(r"test result: \w+\. (\d+) passed; (\d+) failed", line)
    if match:
        passed += int(match.group(1))
        failed += int(match.group(2))
print(f"tests: {passed} passed, {failed} failed")
PY
rm -f "$test_log"
exit "$test_status"
