#!/usr/bin/env bash
# The whole test suite, from a fresh machine. Installs what it needs (pnpm, dependencies, and the
# system packages some tests use), builds, runs every jest project, and ends with one plain line
# "N passed, M failed".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
bash scripts/system-deps.sh

mkdir -p .test-results
rm -f .test-results/jest*.json
set +e
if [ "$#" -gt 0 ]; then
  ./node_modules/.bin/jest --ci --json --outputFile=.test-results/jest.json "$@"
  status=$?
  results=(.test-results/jest.json)
else
  # Two phases. The Jepsen suites check availability bounds in wall-clock time (a majority writes
  # again within 2 x the election timeout), so they run one at a time after the rest, instead of
  # sharing the two cores with each other's three-node clusters.
  ./node_modules/.bin/jest --ci --json --outputFile=.test-results/jest.json --testPathIgnorePatterns /node_modules/ /jepsen-
  status=$?
  ./node_modules/.bin/jest --ci --json --outputFile=.test-results/jest-jepsen.json --runInBand packages/cluster-tests/test/jepsen-
  jepsen=$?
  [ "$status" -eq 0 ] && status=$jepsen
  results=(.test-results/jest.json .test-results/jest-jepsen.json)
fi
set -e
node scripts/summarize-jest.mjs "${results[@]}"
exit "$status"
