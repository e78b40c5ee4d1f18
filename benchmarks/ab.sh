#!/usr/bin/env bash
# Before/after: the same redis-benchmark rows against two Hati builds, alternating, in one run
# (the machine is shared and noisy, so only ratios measured side by side mean anything).
#   bash benchmarks/ab.sh <dir of a built checkout to compare with> [rounds]
#   AB_ROWS=hdd bash benchmarks/ab.sh <dir> [rounds]     # SET hdd at -P 16 (AB_DURABILITY, default everysec)
#   AB_PIPELINES=16 bash benchmarks/ab.sh <dir> [rounds]  # the memory rows at -P 16 only (default: 16 1)
#   AB_BEFORE_FLAGS='--shards 8' bash benchmarks/ab.sh . [rounds]   # one build, two sets of flags
# Build the other checkout first (pnpm install && pnpm exec turbo run build). Prints each
# round's requests/s, the server's CPU time per request (main thread, and the other threads:
# LevelDB's work for hdd) read from /proc, and the after/before ratio; then the medians per row.
# CPU per request moves far less than requests/s when the machine is busy: judge by it.
set -euo pipefail
before=${1:?usage: ab.sh <built checkout> [rounds]}
rounds=${2:-3}
rows=${AB_ROWS:-memory}
durability=${AB_DURABILITY:-$([ "$rows" = hdd ] && echo everysec || echo no)}
after=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
start() { # build port [extra hati start flags]
  # shellcheck disable=SC2086 # the extra flags are words
  node "$1/packages/cli/dist/bin.cjs" start --tcp --tcp-host 127.0.0.1 --tcp-port "$2" \
    --data-dir "$dir/$2" --hdd-durability "$durability" --log-level error ${3:-} >/dev/null 2>&1 &
  pids+=($!)
}
start "$before" 5101 "${AB_BEFORE_FLAGS:-}"
start "$after" 5102 "${AB_AFTER_FLAGS:-}"
declare -A pid_of=([5101]=${pids[0]} [5102]=${pids[1]})
for port in 5101 5102; do
  for _ in $(seq 50); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
  # redis-benchmark waits forever for a server that is not there.
  redis-cli -p "$port" PING >/dev/null || { echo "ab.sh: the server on :$port did not start" >&2; exit 1; }
  # Warm-up (JIT), not measured.
  redis-benchmark -p "$port" -c 50 -n 200000 -r 100000 -P 16 -q SET "$([ "$rows" = hdd ] && echo hdd || echo memory)" 0 key:__rand_int__ v >/dev/null 2>&1
done
# utime + stime of the whole process and of its main thread, in clock ticks.
ticks() { echo "$(awk '{print $14 + $15}' "/proc/$1/stat") $(awk '{print $14 + $15}' "/proc/$1/task/$1/stat")"; }
us() { echo "scale=2; $1 * 1000000 / $(getconf CLK_TCK) / $2" | bc; }
# Runs one row against one port; prints "requests/s main-µs other-µs".
measure() { # port pipeline requests command...
  local pid=${pid_of[$1]} all0 main0 all1 main1 rate
  read -r all0 main0 < <(ticks "$pid")
  rate=$(redis-benchmark -p "$1" -c 50 -n "$3" -r 100000 -P "$2" -q "${@:4}" 2>/dev/null |
    tr '\r' '\n' | grep -Eo '[0-9.]+ requests per second' | tail -1 | cut -d' ' -f1)
  read -r all1 main1 < <(ticks "$pid")
  echo "$rate $(us $((main1 - main0)) "$3") $(us $((all1 - all0 - main1 + main0)) "$3")"
}
declare -A ratios cpu_ratios
row() { # name pipeline requests command...
  local ra ma oa rb mb ob
  read -r ra ma oa < <(measure 5101 "${@:2}")
  read -r rb mb ob < <(measure 5102 "${@:2}")
  local r c
  r=$(echo "scale=3; $rb/$ra" | bc)
  c=$(echo "scale=3; ($mb+$ob)/($ma+$oa)" | bc)
  ratios["$1"]+="$r "
  cpu_ratios["$1"]+="$c "
  echo "round $round $1: before $ra/s, cpu $ma+$oa us; after $rb/s, cpu $mb+$ob us; rate ratio $r, cpu ratio $c"
}
for round in $(seq "$rounds"); do
  if [ "$rows" = hdd ]; then
    row "P16 SET hdd" 16 300000 SET hdd 0 key:__rand_int__ v123456789abcdef
  else
    for P in ${AB_PIPELINES:-16 1}; do
      n=$([ "$P" = 16 ] && echo 1000000 || echo 150000)
      row "P$P SET" "$P" "$n" SET memory 0 key:__rand_int__ v123456789abcdef
      row "P$P GET" "$P" "$n" GET memory key:__rand_int__
    done
  fi
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for key in "${!ratios[@]}"; do
  echo "median after/before $key: requests/s $(median "${ratios[$key]}"), cpu per request $(median "${cpu_ratios[$key]}")"
done
