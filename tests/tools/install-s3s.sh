#!/usr/bin/env bash
# Installs s3s-fs, a real S3-compatible server that checks SigV4 signatures and presigned-URL expiry, for the
# object-storage tests. Built once with cargo (about 2.5 minutes) into a cache outside the work tree and reused.
# Prints the binary's path.
set -euo pipefail
root="${UPDRAFT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/updraft/tools}"
bin="$root/bin/s3s-fs"
if [ ! -x "$bin" ]; then
  echo "building s3s-fs 0.14.1 into $root (once)..." >&2
  # 0.14.1 is the newest release that builds with rustc 1.95.
  cargo install s3s-fs@0.14.1 --locked --features binary --root "$root" >&2
fi
echo "$bin"
