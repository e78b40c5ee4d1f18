#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the pinned pnpm and the dependencies
# when they are missing, then checks formatting and lint, builds and type-checks every
# package, runs every package's tests, and checks the packed packages install and run
# (scripts/pack-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh
# The server's tests run redis-cli and python's redis client from Debian, as users do, and drive
# the web console in Debian's Chromium (headless).
missing=()
command -v redis-cli >/dev/null || missing+=(redis-tools)
/usr/bin/python3 -c 'import redis' 2>/dev/null || missing+=(python3-redis)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing ${missing[*]} with apt-get" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  else
    echo "${missing[*]} missing and this is not root: the tests that use them will be skipped" >&2
  fi
fi
export TURBO_TELEMETRY_DISABLED=1 TURBO_NO_UPDATE_NOTIFIER=1
pnpm exec biome ci .
# tsc is single-threaded: builds and type-checks run two at a time. The tests of two packages run
# at once, each with tap's two files at a time: a test file spends most of its time starting up
# (TypeScript, tap) and waiting for the processes and sockets it drives, so one package at a time
# left a third of the two cores idle.
pnpm exec turbo run build typecheck --output-logs=new-only --concurrency=2
pnpm exec turbo run test --output-logs=new-only --concurrency=2
bash scripts/pack-check.sh
