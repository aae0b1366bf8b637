#!/usr/bin/env bash
# The whole Updraft check, as CI runs it: install the upstream test tools, then formatting, lints, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/tools/install.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
