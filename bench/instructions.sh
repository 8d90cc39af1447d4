#!/usr/bin/env bash
# CPU instructions per accepted and per delivered event, counted by valgrind's callgrind
# (BENCHMARKS.md, "Instructions"). Builds the release binaries, strips their debug information
# into .build-instructions/ (valgrind 3.19 cannot read DWARF 5), builds the sigsuspend shim, and
# runs bench/instructions.py. Options go to it, e.g. --n1 500 --n2 2500 --profiles DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-prerequisites
if ! command -v valgrind >/dev/null 2>&1; then
  sudo_cmd=""; if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq valgrind >/dev/null
fi
for product in participantd participantctl participant-load participant-standin; do
  swift build -c release --product "$product"
done
bin="$(swift build -c release --show-bin-path)"
out=.build-instructions
mkdir -p "$out"
for product in participantd participant-load; do
  strip --strip-debug -o "$out/$product" "$bin/$product"
done
gcc -shared -fPIC -O2 -o "$out/sigsuspend-shim.so" bench/valgrind/sigsuspend-shim.c
exec python3 bench/instructions.py --bin "$bin" --valgrind-bin "$out" --shim "$PWD/$out/sigsuspend-shim.so" "$@"
