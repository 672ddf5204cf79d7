#!/usr/bin/env bash
# How honest the planner is: its expected time per token (the plan's
# estimate, from each node's probed speed and latency) against what the
# ring then measures, for local clusters of 1 to 4 nodes (one thread each,
# every node holding layers: --spread), one stream, greedy.
#   bash scripts/bench_planner.sh [MODEL.gguf] [TOKENS]
# Default model: a TinyLlama-1.1B-shaped Q4_0 made with `hive mkmodel` in
# /tmp (600 MB: a node's layers do not fit in the caches, as on a real
# model; a model whose slices sit in the last-level cache runs faster than
# the probe, which streams from memory). Prints a table and a JSON line.
# The nodes probe their speed at start (no --no-probe): the figure the
# planner uses. Runs on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/hive
[ -x "$bin" ] || { echo "bench_planner: build first (cmake --build build)" >&2; exit 1; }
model="${1:-/tmp/hive-bench-planner-tl-q4_0.gguf}"
tokens="${2:-64}"
if [ ! -f "$model" ]; then
  "$bin" mkmodel --preset tinyllama-1.1b --type q4_0 --seed 1 -q -o "$model"
fi
dir=$(mktemp -d /tmp/hive-bench-planner-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
"$bin" keygen -o "$dir/key" >/dev/null
addrs=()
speeds=()
for i in 1 2 3 4; do
  "$bin" node --listen 127.0.0.1:0 --key "$dir/key" --name "p$i" -t 1 --cache-dir "$dir/c$i" >"$dir/n$i.out" 2>"$dir/n$i.log" &
  pids+=($!)
done
for i in 1 2 3 4; do
  for _ in $(seq 1 300); do grep -q "listening on" "$dir/n$i.out" && break; sleep 0.1; done
  addrs+=("$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$dir/n$i.out" | head -1)")
  speeds+=("$(sed -n 's/.*decode speed \([0-9]*\) MB\/s.*/\1/p' "$dir/n$i.out" "$dir/n$i.log" | head -1)")
done
echo "probed speeds (MB/s): ${speeds[*]}"

printf "%-6s %14s %14s %10s\n" nodes "expected ms" "measured ms" "error"
sep=
json="{\"bench\":\"planner\",\"model\":\"$model\",\"tokens\":$tokens,\"probe_mbps\":[$(IFS=,; echo "${speeds[*]}")],\"runs\":["
for n in 1 2 3 4; do
  peers=$(IFS=,; echo "${addrs[*]:0:$n}")
  # once to put the stages in the nodes' caches, then the measured run
  "$bin" run -m "$model" --peers "$peers" --key "$dir/key" --spread -p "Once upon a time" -n 4 -t 1 --quiet >/dev/null 2>&1
  "$bin" run -m "$model" --peers "$peers" --key "$dir/key" --spread -p "Once upon a time" -n "$tokens" -t 1 \
    --stats-json "$dir/s$n.json" >/dev/null 2>"$dir/head$n.log"
  read -r exp meas < <(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['plan_ms'], d['ring_ms'])" "$dir/s$n.json")
  err=$(python3 -c "print(f'{($exp/$meas-1)*100:+.0f}%')")
  printf "%-6s %14.2f %14.2f %10s\n" "$n" "$exp" "$meas" "$err"
  json+="$sep{\"nodes\":$n,\"expected_ms\":$exp,\"measured_ms\":$meas}"
  sep=,
done
echo "$json]}"
