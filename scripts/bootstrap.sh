#!/usr/bin/env bash
# Brings a fresh machine (only Node.js 20 and npm) to a built checkout: pinned pnpm, dependencies,
# TypeScript build. Idempotent; sourced by scripts/test.sh and scripts/start.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The pinned pnpm. Not a `packageManager` field: pnpm 12 then tries to manage its own version on
# every run, which needs a download this network does not always allow.
PNPM_VERSION=12.21.0
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  echo "coffer: installing pnpm@$PNPM_VERSION" >&2
  npm install --global --no-fund --no-audit "pnpm@$PNPM_VERSION" >&2
fi

if [ "${CI:-}" = "true" ]; then
  pnpm install --frozen-lockfile >&2
else
  pnpm install >&2
fi
./node_modules/.bin/tsc -b >&2
