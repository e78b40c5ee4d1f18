#!/usr/bin/env bash
# The benchmarks, from a fresh clone: installs the pinned pnpm and the dependencies when they
# are missing, builds every package, then runs the storage benchmark.
# BENCH_QUICK=1 makes a short smoke run; BENCH_REOPEN_KEYS sets the reopen row's key count.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh
export TURBO_TELEMETRY_DISABLED=1 TURBO_NO_UPDATE_NOTIFIER=1
pnpm exec turbo run build --output-logs=new-only
pnpm --filter @hati/benchmarks run bench:storage
