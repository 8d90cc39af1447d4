#!/usr/bin/env bash
# Instances and the fleet's shared quota with real processes (README: "Running a fleet"):
# installs PostgreSQL's server when missing, builds the debug binaries, runs bench/fleet.py.
#   bench/fleet.sh                  # every scenario: alone, fleet, outage, tenants (about 4 minutes)
#   bench/fleet.sh fleet outage     # some of them
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-prerequisites
scripts/ensure-test-tools
swift build --product participantd
swift build --product participantctl
swift build --product participant-standin
exec python3 bench/fleet.py "$@"
