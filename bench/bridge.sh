#!/usr/bin/env bash
# A bridge's whole outgoing side through participantd: messages, receipts, typing, disconnects,
# chats by participant token, the aws CLI and boto3 (README: "Messages, disconnects and
# participant tokens"). Builds the debug binaries and runs bench/bridge.py.
#   bench/bridge.sh                 # every scenario (about 5 minutes)
#   bench/bridge.sh participant     # one of them: bridge, participant, sdk
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-prerequisites
if [ "$#" -eq 0 ] || [[ " $* " == *" sdk "* ]]; then scripts/ensure-sdk-clients; fi
swift build --product participantd
swift build --product participant-standin
exec python3 bench/bridge.py "$@"
