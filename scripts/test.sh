#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the pinned pnpm and the dependencies
# when they are missing, then checks formatting and lint, builds and type-checks every
# package, runs every package's tests, and checks the packed packages install and run
# (scripts/pack-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh
export TURBO_TELEMETRY_DISABLED=1 TURBO_NO_UPDATE_NOTIFIER=1
pnpm exec biome ci .
pnpm exec turbo run build typecheck test --output-logs=new-only --concurrency=1
bash scripts/pack-check.sh
