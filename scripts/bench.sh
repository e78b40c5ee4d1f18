#!/usr/bin/env bash
# The benchmarks, from a fresh clone: installs the pinned pnpm and the dependencies when they
# are missing, builds every package, then runs the storage, server, client and broker benchmarks.
#   npm run bench                  # all four, in that order
#   npm run bench -- server        # one of them (or BENCH_ONLY=storage|server|client|broker)
#   npm run bench -- security      # what credentials and TLS cost (not part of the four above)
#   npm run bench -- backup        # hati backup export/import throughput and RSS (BENCH_BACKUP_BYTES)
#   npm run bench -- profile       # where a server's CPU time goes under redis-benchmark (V8 profiler)
#   npm run bench -- parser        # the request parser alone, ns per command in 16-command chunks
#   npm run bench -- scale         # 10M memory keys next to Redis: throughput, p99.9, RSS (BENCH_SCALE_KEYS)
# BENCH_QUICK=1 makes a short smoke run; BENCH_REOPEN_KEYS sets the reopen row's key count.
# The server benchmark needs redis-server and redis-benchmark, the client benchmark redis-server,
# the broker benchmark rabbitmq-server, nats-server and redis-server (BENCH_BROKER_PEERS picks
# the systems), the security benchmark redis-server and redis-benchmark; run as root, they
# install them with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

only="${1:-${BENCH_ONLY:-}}"
case "$only" in
  '' | all) benches=(storage server client broker) ;;
  storage | server | client | broker | security | backup | scale | profile | parser) benches=("$only") ;;
  *)
    echo "bench: unknown benchmark '$only' (expected storage, server, client, broker, security, backup, scale, profile or parser; as an argument or BENCH_ONLY)" >&2
    exit 2
    ;;
esac

source scripts/ensure-deps.sh
export TURBO_TELEMETRY_DISABLED=1 TURBO_NO_UPDATE_NOTIFIER=1
pnpm exec turbo run build --output-logs=new-only
for bench in "${benches[@]}"; do
  pnpm --filter @hati/benchmarks run "bench:$bench"
done
