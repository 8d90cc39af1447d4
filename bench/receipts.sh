#!/usr/bin/env bash
# Spending the quota as the official chat client does, with real processes (README: Delivery,
# "Coalescing"): builds the debug binaries and runs bench/receipts.py.
#   bench/receipts.sh              # both scenarios (about 6 minutes: the runs with rules off wait for every request)
#   bench/receipts.sh fairness     # one of them
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-prerequisites
swift build --product participantd
swift build --product participant-standin
exec python3 bench/receipts.py "$@"
