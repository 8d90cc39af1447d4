#!/usr/bin/env bash
# The micro-benchmarks (ordo-one/benchmark): request decoding and validation, the outbox's group
# commit, the upstream request. Builds in .build-bench (release), apart from the test suite's build.
#   bench/micro.sh                      # run all, print the table
#   bench/micro.sh --filter 'Outbox.*'  # one of them
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-prerequisites
export PARTICIPANTD_BENCHMARKS=1
exec swift package --scratch-path .build-bench --disable-sandbox benchmark --no-progress "$@"
