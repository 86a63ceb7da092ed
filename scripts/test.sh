#!/usr/bin/env bash
# The whole test suite, from a fresh machine. Installs what it needs (pnpm, dependencies, and the
# system packages some tests use), builds, runs every jest project, and ends with one plain line
# "N passed, M failed".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
bash scripts/system-deps.sh

mkdir -p .test-results
results=.test-results/jest.json
rm -f "$results"
set +e
./node_modules/.bin/jest --ci --json --outputFile="$results" "$@"
status=$?
set -e
node scripts/summarize-jest.mjs "$results"
exit "$status"
