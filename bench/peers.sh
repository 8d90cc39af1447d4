#!/usr/bin/env bash
# participantd beside Redis and PostgreSQL keeping the same events durably, in one run (issue 31;
# BENCHMARKS.md, "Against Redis and PostgreSQL"): installs redis-server and postgresql (Debian's
# packages) when missing, builds participantd and participant-load in release mode, runs
# bench/peers.py and prints the table. Options go to peers.py, e.g.
#   bench/peers.sh                                 # 3 rounds of 8 s each (about 5 minutes after the build)
#   bench/peers.sh --rounds 1 --seconds 4          # a quicker one
#   bench/peers.sh --json /tmp/peers.json          # every figure, also as JSON
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-prerequisites
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
missing=()
command -v redis-server >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-server)
command -v pgbench >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql postgresql-contrib)
if [ ${#missing[@]} -gt 0 ]; then
  echo "peers.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
swift build -c release --product participantd
swift build -c release --product participant-load
bin="$(swift build -c release --show-bin-path)"
echo "machine: $(nproc) cores, $(uname -r), $(swift --version 2>/dev/null | head -1)"
echo "$(redis-server --version | cut -d' ' -f1-3), $(pgbench --version), sqlite $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)')"
exec python3 bench/peers.py --bin "$bin" "$@"
