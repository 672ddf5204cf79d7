#!/usr/bin/env bash
# bench_serve.sh - the serving benchmark (issue 6): aggregate decode tok/s and
# time to first token at 1, 4, 8 and 16 concurrent streams, for
#   llama    - llama.cpp's llama-server -np 8 (continuous batching), the anchor;
#   hive1    - `hive serve` on one node;
#   ring2    - `hive serve` heading a 2-stage ring of two local `hive node`s,
# on the same TinyLlama-1.1B-shaped Q4_0 GGUF (`hive mkmodel`, random weights)
# with the same threads, all measured by the same client (build/bench_serve).
# Also hive's own prefill tok/s at the same threads (`hive bench`) and
# llama-bench's pp/tg for reference.
#
# The servers stay up side by side (an idle server costs nothing) and the runs
# are interleaved: round r, stream count c, server s, one run each; every
# figure is the median over the rounds, so the VM's bandwidth drift lands on
# all servers alike. The hive modes run only when `build/hive serve` exists.
#
# llama.cpp is never vendored: give this script its source at the pinned tag
# and it builds it in the scratch folder, e.g.
#   git clone --depth 1 --branch b10573 https://github.com/ggml-org/llama.cpp /tmp/llama.cpp
#   LLAMA_SRC=/tmp/llama.cpp bash scripts/bench_serve.sh
# or export the tag from any git dir holding it (a mirror, a clone):
#   LLAMA_GIT=/path/to/llama.cpp/.git bash scripts/bench_serve.sh
# or reuse a build: LLAMA_BIN=/path/to/build/bin bash scripts/bench_serve.sh
#
# Environment (defaults in brackets):
#   LLAMA_TAG [b10573]   pinned llama.cpp release
#   LLAMA_SRC / LLAMA_GIT / LLAMA_BIN   see above
#   SCRATCH [/tmp/hive-bench-serve]     builds, model, logs, results
#   THREADS [2]          threads of llama-server, of single-node hive and of hive bench
#   RING_NODE_THREADS [1] threads per ring node (2 nodes x 1 = THREADS)
#   STREAMS ["1 4 8 16"] RUNS [3] MAX_TOKENS [64] NP [8] CTX_PER_SLOT [512] HIVE_SLOTS [16]
#   MODES ["llama hive1 ring2"]   which servers to measure
#   LLAMA_BENCH [1]      also run llama-bench (pp128 / tg64) once for reference
#   BAN_TOKENS [131-258] token ids every request bans with logit_bias (empty: none)
#   HIVE_SERVE_ARGS, RING_SERVE_ARGS, LLAMA_SERVER_ARGS   extra arguments
#   OUT [$SCRATCH/bench_serve.json]  every raw figure and the summary
#   SUMMARY_ONLY=1       only redo the summary from $SCRATCH's raw files (e.g. after an interrupted sweep)
#   BUILD [build]        hive build directory (hive, bench_serve)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LLAMA_TAG=${LLAMA_TAG:-b10573}
SCRATCH=${SCRATCH:-/tmp/hive-bench-serve}
THREADS=${THREADS:-2}
RING_NODE_THREADS=${RING_NODE_THREADS:-1}
STREAMS=${STREAMS:-"1 4 8 16"}
RUNS=${RUNS:-3}
MAX_TOKENS=${MAX_TOKENS:-64}
NP=${NP:-8}
CTX_PER_SLOT=${CTX_PER_SLOT:-512}
HIVE_SLOTS=${HIVE_SLOTS:-16}
MODES=${MODES:-"llama hive1 ring2"}
# Lone UTF-8 bytes (ids 131-258 of mkmodel's vocab) make llama-server fail a
# stream of random-weight output; every server gets the same ban (see bench_serve.c).
BAN_TOKENS=${BAN_TOKENS:-131-258}
LLAMA_PORT=${LLAMA_PORT:-18180}
HIVE_PORT=${HIVE_PORT:-18181}
RING_PORT=${RING_PORT:-18182}
OUT=${OUT:-$SCRATCH/bench_serve.json}
BUILD=${BUILD:-$ROOT/build}
HIVE=$BUILD/hive
CLIENT=$BUILD/bench_serve
MODEL=$SCRATCH/tl-q4_0.gguf
LOGS=$SCRATCH/logs
RAW=$SCRATCH/raw.jsonl

mkdir -p "$SCRATCH" "$LOGS"
log() { echo "bench_serve: $*" >&2; }
die() { log "$*"; exit 1; }
have_mode() { [[ " $MODES " == *" $1 "* ]]; }

# ---- summary: from the raw lines and the per-round files (SUMMARY_ONLY=1 redoes it) ----
summary() {
    local prefill_json loadavg_json llama_bench_json
    prefill_json=$(jq -s -c . "$SCRATCH/prefill.txt" 2>/dev/null || echo '[]')
    loadavg_json=$(jq -R -s -c 'split("\n") | map(select(length > 0))' "$SCRATCH/loadavg.txt" 2>/dev/null || echo '[]')
    llama_bench_json=$(cat "$SCRATCH/llama-bench.json" 2>/dev/null || echo null)
    jq -s \
        --argjson prefill "$prefill_json" --argjson llama_bench "$llama_bench_json" --argjson loadavg "$loadavg_json" \
        --arg tag "$LLAMA_TAG" --arg llama_version "${LLAMA_VERSION:-}" --arg hive_rev "$(git -C "$ROOT" rev-parse --short HEAD)" \
        --arg date "$(date -u +%FT%TZ)" --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)" \
        --argjson threads "$THREADS" --argjson np "$NP" --argjson max_tokens "$MAX_TOKENS" '
      def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
                         else (.[length / 2 - 1] + .[length / 2]) / 2 end;
      def r2: if . == null then null else (. * 100 | round) / 100 end;
      (group_by([.label, .streams]) | map({label: .[0].label, streams: .[0].streams, runs: length,
          agg_decode_tps: (map(.agg_decode_tps) | median | r2), overall_tps: (map(.overall_tps) | median | r2),
          ttft_ms_median: (map(.ttft_ms_median) | median | r2), ttft_ms_max: (map(.ttft_ms_max) | median | r2),
          stream_decode_tps: (map(.stream_decode_tps_median) | median | r2),
          agg_decode_runs: map(.agg_decode_tps)})) as $s
      | def at(l; c): ($s[] | select(.label == l and .streams == c) | .agg_decode_tps) // null;
        def ratio(a; b): if a == null or b == null or b == 0 then null else (a / b * 1000 | round) / 1000 end;
        ($prefill | map(tonumber? // empty) | median) as $pf
      | {bench: "serve", date: $date, cpu: $cpu, threads: $threads, llama_np: $np, max_tokens: $max_tokens,
         llama_tag: $tag, llama_version: $llama_version, hive_rev: $hive_rev, loadavg_per_round: $loadavg,
         hive_prefill_tps: $pf, hive_prefill_runs: $prefill, llama_bench: $llama_bench, summary: $s,
         targets: {hive1_vs_llama_at_8: ratio(at("hive1"; 8); at("llama"; 8)),
                   hive1_at_8_vs_hive_prefill: ratio(at("hive1"; 8); $pf),
                   ring2_8_vs_ring2_1: ratio(at("ring2"; 8); at("ring2"; 1)),
                   goals: {hive1_vs_llama_at_8: 1.2, hive1_at_8_vs_hive_prefill: 0.8, ring2_8_vs_ring2_1: 1.6}},
         raw: .}' "$RAW" >"$OUT"

    jq -r '
      "\nserve benchmark, \(.threads) threads, \(.max_tokens) tokens per stream, llama.cpp \(.llama_tag), hive \(.hive_rev), \(.date)",
      "hive prefill (hive bench -t \(.threads)): \(.hive_prefill_tps) tok/s",
      "",
      "| server | streams | agg decode tok/s | overall tok/s | per-stream tok/s | TTFT median ms | TTFT max ms |",
      "|---|---|---|---|---|---|---|",
      (.summary[] | "| \(.label) | \(.streams) | \(.agg_decode_tps) | \(.overall_tps) | \(.stream_decode_tps) | \(.ttft_ms_median) | \(.ttft_ms_max) |"),
      "",
      "hive1 / llama at 8 streams:         \(.targets.hive1_vs_llama_at_8)  (target >= 1.2)",
      "hive1 at 8 streams / hive prefill:  \(.targets.hive1_at_8_vs_hive_prefill)  (target >= 0.8)",
      "ring2 at 8 streams / ring2 at 1:    \(.targets.ring2_8_vs_ring2_1)  (target >= 1.6)"' "$OUT"
    log "raw figures and summary: $OUT"
}
if [[ -n ${SUMMARY_ONLY:-} ]]; then
    summary
    exit 0
fi

# ---- hive ----
if [[ ! -x $HIVE || ! -x $CLIENT ]]; then
    log "building hive"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" --target hive bench_serve -j"$(nproc)" >/dev/null
fi

# ---- llama.cpp at the pinned tag, built outside the repository ----
if have_mode llama; then
    LLAMA_DIR=$SCRATCH/llama.cpp-$LLAMA_TAG
    LLAMA_BIN=${LLAMA_BIN:-$LLAMA_DIR/build/bin}
    if [[ ! -x $LLAMA_BIN/llama-server ]]; then
        src=${LLAMA_SRC:-}
        if [[ -z $src ]]; then
            [[ -n ${LLAMA_GIT:-} ]] || die "no llama.cpp: set LLAMA_SRC (source at $LLAMA_TAG), LLAMA_GIT or LLAMA_BIN"
            src=$LLAMA_DIR/src
            log "exporting llama.cpp $LLAMA_TAG from $LLAMA_GIT"
            rm -rf "$src" && mkdir -p "$src"
            # models/ holds test vocabularies (large files a mirror may lack); the build does not need them
            git --git-dir="$LLAMA_GIT" archive "$LLAMA_TAG" -- . ':(exclude)models' | tar -x -C "$src"
        elif git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
            at=$(git -C "$src" describe --tags --exact-match 2>/dev/null || echo "not a tag")
            [[ $at == "$LLAMA_TAG" ]] || log "warning: $src is at '$at', not $LLAMA_TAG"
        fi
        build=$(dirname "$LLAMA_BIN")
        log "building llama-server and llama-bench in $build (CPU only; takes a while on 2 cores)"
        cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
            -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
            -DGGML_NATIVE=ON >"$LOGS/llama-cmake.log" 2>&1
        cmake --build "$build" --target llama-server llama-bench -j"$(nproc)" >"$LOGS/llama-build.log" 2>&1 ||
            die "llama.cpp build failed, see $LOGS/llama-build.log"
    fi
    LLAMA_VERSION=$("$LLAMA_BIN/llama-server" --version 2>&1 | grep -m1 -i version || true)
fi

# ---- hive serve present? ----
HIVE_SERVE=0
if [[ $("$HIVE" serve --help 2>&1 || true) == *"usage: hive serve"* ]]; then HIVE_SERVE=1; fi
if [[ $HIVE_SERVE == 0 ]] && { have_mode hive1 || have_mode ring2; }; then
    log "build/hive has no 'serve' subcommand yet: measuring llama-server only"
    if have_mode llama; then MODES=llama; else MODES=; fi
fi

# ---- the model ----
if [[ ! -s $MODEL ]]; then
    log "making $MODEL"
    "$HIVE" mkmodel --preset tinyllama-1.1b --type q4_0 --seed 1 -q -o "$MODEL"
fi

# ---- servers ----
PIDS=()
CLIENT_PID=
cleanup() {
    [[ -z $CLIENT_PID ]] || kill "$CLIENT_PID" 2>/dev/null || true
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD... : runs CMD in the background, stdout+stderr to $LOGS/NAME.log
start() {
    local name=$1
    shift
    echo "$*" >"$LOGS/$name.cmd"
    "$@" >"$LOGS/$name.log" 2>&1 &
    PIDS+=($!)
}

# wait_http URL PID: until URL/health or URL/v1/models answers 200 (or PID dies)
wait_http() {
    local url=$1 pid=$2
    for _ in $(seq 1 600); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -sf -o /dev/null "$url/health" && return 0
        curl -sf -o /dev/null "$url/v1/models" && return 0
        sleep 0.5
    done
    return 1
}

declare -A URL
if have_mode llama; then
    start llama "$LLAMA_BIN/llama-server" -m "$MODEL" -np "$NP" -cb -c $((NP * CTX_PER_SLOT)) -t "$THREADS" \
        --host 127.0.0.1 --port "$LLAMA_PORT" ${LLAMA_SERVER_ARGS:-}
    wait_http "http://127.0.0.1:$LLAMA_PORT" "${PIDS[-1]}" || die "llama-server did not come up, see $LOGS/llama.log"
    URL[llama]=http://127.0.0.1:$LLAMA_PORT
fi
if have_mode hive1; then
    start hive1 "$HIVE" serve -m "$MODEL" --port "$HIVE_PORT" -t "$THREADS" --slots "$HIVE_SLOTS" \
        --ctx "$CTX_PER_SLOT" ${HIVE_SERVE_ARGS:-}
    wait_http "http://127.0.0.1:$HIVE_PORT" "${PIDS[-1]}" || die "hive serve did not come up, see $LOGS/hive1.log"
    URL[hive1]=http://127.0.0.1:$HIVE_PORT
fi
if have_mode ring2; then
    KEY=$SCRATCH/ring.key
    "$HIVE" keygen -o "$KEY" --force >/dev/null 2>&1
    peers=()
    for n in a b; do
        start "node-$n" env HIVE_KEY_FILE="$KEY" "$HIVE" node --listen 127.0.0.1:0 -t "$RING_NODE_THREADS" --key "$KEY"
        addr=
        for _ in $(seq 1 100); do
            addr=$(sed -n 's/^listening on //p' "$LOGS/node-$n.log" | head -1)
            [[ -n $addr ]] && break
            sleep 0.1
        done
        [[ -n $addr ]] || die "hive node $n did not start, see $LOGS/node-$n.log"
        peers+=("$addr")
    done
    start ring2 env HIVE_KEY_FILE="$KEY" "$HIVE" serve -m "$MODEL" --port "$RING_PORT" --slots "$HIVE_SLOTS" \
        --ctx "$CTX_PER_SLOT" -t "$RING_NODE_THREADS" --spread --peers "${peers[0]},${peers[1]}" --key "$KEY" \
        ${RING_SERVE_ARGS:-}
    wait_http "http://127.0.0.1:$RING_PORT" "${PIDS[-1]}" || die "hive serve (ring) did not come up, see $LOGS/ring2.log"
    # --spread: the planner would otherwise put the whole model on one node when it fits
    grep -q "stage 1 on" "$LOGS/ring2.log" || die "the ring has one stage, not two (see $LOGS/ring2.log)"
    URL[ring2]=http://127.0.0.1:$RING_PORT
fi

# ---- the sweep, interleaved ----
: >"$RAW"
: >"$SCRATCH/prefill.txt"
: >"$SCRATCH/loadavg.txt"
echo null >"$SCRATCH/llama-bench.json"
if have_mode llama && [[ ${LLAMA_BENCH:-1} == 1 && -x $LLAMA_BIN/llama-bench ]]; then
    log "llama-bench -t $THREADS -p 128 -n 64"
    "$LLAMA_BIN/llama-bench" -m "$MODEL" -t "$THREADS" -p 128 -n 64 -r 3 -o json 2>"$LOGS/llama-bench.log" |
        jq -c '[.[] | {n_prompt, n_gen, n_threads, avg_ts, stddev_ts}]' >"$SCRATCH/llama-bench.json" ||
        echo null >"$SCRATCH/llama-bench.json"
fi
for r in $(seq 1 "$RUNS"); do
    cut -d' ' -f1-3 /proc/loadavg >>"$SCRATCH/loadavg.txt"
    p=$("$HIVE" bench -m "$MODEL" -t "$THREADS" -r 3 --decode 16 --no-sched 2>/dev/null | grep "^{" | head -1 | jq -r .prefill_tps || echo null)
    [[ $p == null ]] || echo "$p" >>"$SCRATCH/prefill.txt"
    log "round $r: hive prefill $p tok/s at $THREADS threads"
    for c in $STREAMS; do
        for m in $MODES; do
            # in the background + wait, so that an interrupt stops the sweep at once (see cleanup)
            "$CLIENT" --url "${URL[$m]}" --streams "$c" --runs 1 --max-tokens "$MAX_TOKENS" --label "$m" \
                ${BAN_TOKENS:+--ban-tokens "$BAN_TOKENS"} >"$SCRATCH/line.json" 2>>"$LOGS/client.log" &
            CLIENT_PID=$!
            if wait "$CLIENT_PID"; then
                line=$(cat "$SCRATCH/line.json")
                echo "$line" >>"$RAW"
                jq -r '"  \(.label) streams=\(.streams): agg decode \(.agg_decode_tps) tok/s, ttft \(.ttft_ms_median) ms"' \
                    <<<"$line" >&2
            else
                log "round $r $m streams=$c failed (see $LOGS/client.log)"
            fi
        done
    done
done
summary
