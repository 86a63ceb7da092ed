#!/usr/bin/env bash
# The README's start command: sets up a fresh checkout, then starts a local three-node cluster
# (`coffer dev`). Extra arguments go to `coffer dev`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
exec ./bin/coffer dev "$@"
