#!/usr/bin/env bash
# Before/after: the same redis-benchmark rows against two Hati builds, alternating, in one run
# (the machine is shared and noisy, so only ratios measured side by side mean anything).
#   bash benchmarks/ab.sh <dir of a built checkout to compare with> [rounds]
# Build the other checkout first (pnpm install && pnpm exec turbo run build). Prints each
# round's requests/s and the after/before ratio, then the median ratio per row.
set -euo pipefail
before=${1:?usage: ab.sh <built checkout> [rounds]}
rounds=${2:-3}
after=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
start() { # build port
  node "$1/packages/cli/dist/bin.cjs" start --tcp --tcp-host 127.0.0.1 --tcp-port "$2" \
    --data-dir "$dir/$2" --log-level error >/dev/null 2>&1 &
  pids+=($!)
}
start "$before" 5101
start "$after" 5102
for port in 5101 5102; do
  for _ in $(seq 50); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
  # Warm-up (JIT), not measured.
  redis-benchmark -p "$port" -c 50 -n 200000 -r 100000 -P 16 -q SET memory 0 key:__rand_int__ v >/dev/null 2>&1
done
rate() { # port pipeline requests command...
  redis-benchmark -p "$1" -c 50 -n "$3" -r 100000 -P "$2" -q "${@:4}" 2>/dev/null |
    tr '\r' '\n' | grep -Eo '[0-9.]+ requests per second' | tail -1 | cut -d' ' -f1
}
declare -A ratios
for round in $(seq "$rounds"); do
  for P in 16 1; do
    n=$([ "$P" = 16 ] && echo 1000000 || echo 150000)
    for row in SET GET; do
      if [ "$row" = SET ]; then cmd=(SET memory 0 key:__rand_int__ v123456789abcdef); else cmd=(GET memory key:__rand_int__); fi
      a=$(rate 5101 "$P" "$n" "${cmd[@]}")
      b=$(rate 5102 "$P" "$n" "${cmd[@]}")
      r=$(echo "scale=3; $b/$a" | bc)
      ratios["P$P $row"]+="$r "
      echo "round $round P$P $row: before $a after $b ratio $r"
    done
  done
done
for key in "P16 SET" "P16 GET" "P1 SET" "P1 GET"; do
  median=$(tr ' ' '\n' <<<"${ratios[$key]}" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "median after/before $key: $median"
done
