#!/usr/bin/env bash
# The whole test suite, from a fresh machine. Installs what it needs (pnpm, dependencies, and the
# system packages some tests use), builds, runs every jest project, and ends with one plain line
# "N passed, M failed".
#
#   bash scripts/test.sh                   # everything: the README's command, and what .ci/run runs
#   bash scripts/test.sh --phase lint      # set-up, the type-check (tsc -b), ESLint, the file-size check
#   bash scripts/test.sh --phase unit      # every package's tests except packages/cluster-tests
#   bash scripts/test.sh --phase cluster   # packages/cluster-tests except the Jepsen suites
#   bash scripts/test.sh --phase jepsen    # the Jepsen suites, one at a time
#   bash scripts/test.sh JEST_ARGS...      # set-up, then jest with these arguments
#
# The GitHub workflow (.github/workflows/ci.yml) runs the phases as separate jobs; unit + cluster +
# jepsen are exactly the tests of the default run. Its runners are not root: with
# COFFER_TEST_SUDO=1 the system packages and jest run under sudo, keeping PATH (sudo's secure_path
# would otherwise drop the Node that setup-node installed and the pip-installed moto_server).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

phase=all
if [ "${1:-}" = "--phase" ]; then
  phase="${2:-}"
  case "$phase" in
    lint | unit | cluster | jepsen) shift 2 ;;
    *)
      echo "usage: bash scripts/test.sh [--phase lint|unit|cluster|jepsen | JEST_ARGS...]" >&2
      exit 2
      ;;
  esac
  if [ "$#" -gt 0 ]; then
    echo "coffer: --phase takes no further arguments" >&2
    exit 2
  fi
fi

as_root=()
if [ "${COFFER_TEST_SUDO:-}" = "1" ] && [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo -E env "PATH=$PATH")
  # NB: glibc strips TMPDIR from a setuid program's environment, so `sudo -E` alone loses it (and
  # the CI job points it at the directory whose failed-run logs it uploads).
  if [ -n "${TMPDIR:-}" ]; then as_root+=("TMPDIR=$TMPDIR"); fi
fi

# ESLint (eslint.config.mjs: floating promises, unused code, import boundaries, casts) and no
# source file over 600 lines (scripts/check-size.mjs). Both run in the lint phase and, before any
# test, in the default run (where a failure still lets the tests run and counts as one failed check
# in the final line).
static_checks() {
  local failed=0 rc
  echo "coffer: type-check of the tests (tsc -p tsconfig.eslint.json --noEmit)" >&2
  ./node_modules/.bin/tsc -p tsconfig.eslint.json --noEmit >&2 || failed=1
  echo "coffer: eslint (pnpm lint)" >&2
  rc=0
  ./node_modules/.bin/eslint --max-warnings 0 packages/*/src packages/*/test scripts >&2 || rc=$?
  if [ "$rc" -gt 1 ]; then echo "coffer: eslint could not run (exit $rc)" >&2; return 1; fi
  [ "$rc" -eq 0 ] || failed=1
  echo "coffer: file sizes (scripts/check-size.mjs)" >&2
  rc=0
  node scripts/check-size.mjs >&2 || rc=$?
  if [ "$rc" -gt 1 ]; then echo "coffer: check-size could not run (exit $rc)" >&2; return 1; fi
  [ "$rc" -eq 0 ] || failed=1
  if [ "$failed" -ne 0 ]; then
    echo "coffer: static checks failed (see above)" >&2
    return 1
  fi
}

# pnpm and the build run as the calling user (the CI cache holds that user's pnpm store).
bash scripts/bootstrap.sh
if [ "$phase" = lint ]; then
  ./node_modules/.bin/tsc -b
  echo "tsc -b: no errors"
  static_checks
  exit 0
fi
static_failed=0
if [ "$phase" = all ] && [ "$#" -eq 0 ]; then static_checks || static_failed=1; fi
${as_root[@]+"${as_root[@]}"} bash scripts/system-deps.sh

run_jest() {
  ${as_root[@]+"${as_root[@]}"} ./node_modules/.bin/jest --ci --json "$@"
}

mkdir -p .test-results
rm -f .test-results/jest*.json .test-results/static-checks.json
set +e
if [ "$phase" = all ] && [ "$#" -gt 0 ]; then
  run_jest --outputFile=.test-results/jest.json "$@"
  status=$?
  results=(.test-results/jest.json)
else
  # The Jepsen suites check availability bounds in wall-clock time (a majority writes again within
  # 2 x the election timeout), so they run one at a time after the rest, instead of sharing the
  # cores with each other's three-node clusters.
  case "$phase" in
    all)
      run_jest --outputFile=.test-results/jest.json --testPathIgnorePatterns /node_modules/ /jepsen-
      status=$?
      run_jest --outputFile=.test-results/jest-jepsen.json --runInBand packages/cluster-tests/test/jepsen-
      jepsen=$?
      [ "$status" -eq 0 ] && status=$jepsen
      results=(.test-results/jest.json .test-results/jest-jepsen.json)
      ;;
    unit)
      run_jest --outputFile=.test-results/jest-unit.json --testPathIgnorePatterns /node_modules/ /packages/cluster-tests/ /jepsen-
      status=$?
      results=(.test-results/jest-unit.json)
      ;;
    cluster)
      run_jest packages/cluster-tests/ --outputFile=.test-results/jest-cluster.json --testPathIgnorePatterns /node_modules/ /jepsen-
      status=$?
      results=(.test-results/jest-cluster.json)
      ;;
    jepsen)
      run_jest --outputFile=.test-results/jest-jepsen.json --runInBand packages/cluster-tests/test/jepsen-
      status=$?
      results=(.test-results/jest-jepsen.json)
      ;;
  esac
fi
set -e
if [ "$static_failed" -ne 0 ]; then
  echo '{"numPassedTests":0,"numFailedTests":1,"numFailedTestSuites":1,"testResults":[{"status":"failed","name":"static checks: test type-check, eslint, file sizes (bash scripts/test.sh --phase lint)"}]}' >.test-results/static-checks.json
  results+=(.test-results/static-checks.json)
  status=1
fi
node scripts/summarize-jest.mjs "${results[@]}"
exit "$status"
