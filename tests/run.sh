#!/usr/bin/env bash
# The whole Updraft check, as CI runs it: install the upstream test tools, then formatting, lints, the benchmark in
# quick mode (catches breakage; asserts no timings), and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/tools/install.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
bench/run.sh --quick --profile debug
cargo test --workspace --locked
