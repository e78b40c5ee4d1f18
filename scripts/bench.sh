#!/usr/bin/env bash
# The benchmarks, from a fresh clone: installs the pinned pnpm and the dependencies when they
# are missing, builds every package, then runs the storage benchmark and the server benchmark.
#   npm run bench                  # both, storage first
#   npm run bench -- server        # one of them (or BENCH_ONLY=server|storage)
# BENCH_QUICK=1 makes a short smoke run; BENCH_REOPEN_KEYS sets the reopen row's key count.
# The server benchmark needs redis-server and redis-benchmark; run as root, it installs them
# with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

only="${1:-${BENCH_ONLY:-}}"
case "$only" in
  '' | all) benches=(storage server) ;;
  storage | server) benches=("$only") ;;
  *)
    echo "bench: unknown benchmark '$only' (expected storage or server; as an argument or BENCH_ONLY)" >&2
    exit 2
    ;;
esac

source scripts/ensure-deps.sh
export TURBO_TELEMETRY_DISABLED=1 TURBO_NO_UPDATE_NOTIFIER=1
pnpm exec turbo run build --output-logs=new-only
for bench in "${benches[@]}"; do
  pnpm --filter @hati/benchmarks run "bench:$bench"
done
