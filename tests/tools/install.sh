#!/usr/bin/env bash
# Installs the upstream tools the test suite drives (the real @capgo/cli and @capgo/capacitor-updater) into
# tests/tools/node_modules, from the pinned package-lock.json. Skips the install when it is already current.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is required to install the test tools (Debian: apt-get install -y nodejs npm)" >&2
  exit 1
fi
stamp=node_modules/.updraft-lock.sha256
fingerprint() { cat package.json package-lock.json | sha256sum | cut -d' ' -f1; }
if [ -x node_modules/.bin/capgo ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(fingerprint)" ]; then
  exit 0
fi
echo "installing test tools (npm install in tests/tools, versions pinned by package-lock.json)..." >&2
# `npm ci` refuses this lock file (it omits the CLI's optional helpers for other platforms); `npm install` honours it.
npm install --legacy-peer-deps --no-audit --no-fund --loglevel=error >&2
fingerprint > "$stamp"
