#!/usr/bin/env bash
# Starts a Hati server from a fresh clone: installs the pinned pnpm and the dependencies when
# they are missing, builds, then runs `hati start` with the arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh
export TURBO_TELEMETRY_DISABLED=1 TURBO_NO_UPDATE_NOTIFIER=1
pnpm exec turbo run build --output-logs=errors-only >&2
exec node packages/cli/dist/bin.cjs start "$@"
