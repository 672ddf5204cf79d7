#!/usr/bin/env bash
# The mixed cluster beside an all-Linux one of the same shape: a Linux head
# (build/hive run --peers A,B --spread) over two nodes on 127.0.0.1, where A
# is a Windows node (build-mingw/hive.exe under wine) or a second Linux
# node, B a Linux node. The two shapes run interleaved, RUNS times each, and
# the medians of the head's tok/s (--stats-json) are printed with their
# ratio. wine emulates nothing of the CPU (same x86-64 code), so the ratio
# shows the cost of wine's system calls (sockets, waits), not of Windows.
#   bash scripts/cross/bench_mixed.sh [MODEL] [RUNS] [N_PREDICT]
# Needs build/hive and build-mingw/hive.exe (scripts/cross/mingw.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:-../shared/models/stories260K.gguf}
runs=${2:-5}
n=${3:-128}
[ -x build/hive ] && [ -f build-mingw/hive.exe ] || { echo "bench_mixed: build build/ and build-mingw/ first" >&2; exit 1; }
export WINEPREFIX=${WINEPREFIX:-$PWD/build-mingw/wineprefix} WINEDEBUG=-all
dir=$(mktemp -d /tmp/hive-bench-mixed-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 2
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done # nodes stuck handing off
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
build/hive keygen -o "$dir/key" >/dev/null

# start_node NAME VAR CMD... : runs a node on an ephemeral port, its address into VAR
start_node() {
  local name=$1 var=$2
  shift 2
  "$@" node --listen 127.0.0.1:0 --key "$dir/key" --cache-dir "$dir/cache-$name" --name "$name" --no-probe -t 1 \
    >"$dir/$name.out" 2>"$dir/$name.log" &
  pids+=($!)
  for _ in $(seq 300); do
    grep -q '^listening on ' "$dir/$name.out" 2>/dev/null && break
    sleep 0.1
  done
  # (a Windows console writes \r\n)
  printf -v "$var" '%s' "$(tr -d '\r' <"$dir/$name.out" | sed -n 's/^listening on \([^ ]*\).*/\1/p')"
}
start_node win win wine build-mingw/hive.exe
start_node lin1 lin1 build/hive
start_node lin2 lin2 build/hive
[ -n "$win" ] && [ -n "$lin1" ] && [ -n "$lin2" ] || { echo "bench_mixed: a node did not start (logs in $dir)" >&2; exit 1; }

# run PEERS: one head run; prints its tok/s
run() {
  build/hive run -m "$model" --peers "$1" --key "$dir/key" --spread -p "Once upon a time" -n "$n" -t 1 \
    --stats-json "$dir/stats.json" >/dev/null 2>"$dir/head.log"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tok_per_s"])' "$dir/stats.json"
}
run "$win,$lin1" >/dev/null # first runs send the weights: not timed
run "$lin2,$lin1" >/dev/null
mixed=()
linux=()
for _ in $(seq "$runs"); do
  mixed+=("$(run "$win,$lin1")")
  linux+=("$(run "$lin2,$lin1")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
m=$(median "${mixed[@]}")
l=$(median "${linux[@]}")
echo "model $(basename "$model"), $n tokens, $runs interleaved runs each (tok/s of the head, decode)"
echo "  windows(wine)+linux: median $m  (${mixed[*]})"
echo "  linux+linux:         median $l  (${linux[*]})"
awk -v m="$m" -v l="$l" 'BEGIN { printf "  ratio mixed/all-linux: %.2f\n", m / l }'
