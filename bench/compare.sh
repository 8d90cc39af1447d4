#!/usr/bin/env bash
# Every comparison of BENCHMARKS.md in one run: installs what it needs (persist-queue and boto3 with
# pip, nginx with apt), builds participantd and participant-load in release mode (and the static
# participantd the package ships, for memory and start), runs bench/compare.py and prints the
# table. Options go to compare.py, e.g.
#   bench/compare.sh                                  # the full run (about 25 minutes after the builds)
#   bench/compare.sh --rounds 1 --backlog 200000      # a quicker one
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-prerequisites
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "compare.sh: installing nginx" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq nginx >/dev/null
fi
if ! python3 -c "import persistqueue, boto3" 2>/dev/null; then
  echo "compare.sh: installing persist-queue and boto3" >&2
  python3 -m pip install -q persist-queue boto3
fi
swift build -c release --product participantd
swift build -c release --product participant-load
bin="$(swift build -c release --show-bin-path)"
# Memory and start are measured on the binary the Debian package ships: linked statically
# against the Swift runtime and Foundation (scripts/build-release, in .build-release).
static_bin="$(scripts/build-release)"
echo "machine: $(nproc) cores, $(uname -r), $(swift --version 2>/dev/null | head -1)"
echo "sqlite $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)'), $(nginx -v 2>&1 || /usr/sbin/nginx -v 2>&1)"
exec python3 bench/compare.py --bin "$bin" --memory-bin "$static_bin" "$@"
