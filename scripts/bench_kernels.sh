#!/usr/bin/env bash
# bench_kernels.sh - the kernel benchmark of issue 8: hive's prefill and
# decode tok/s against llama.cpp's on the same GGUF files, on the AVX2 path
# (hive with HIVE_ISA=avx2, llama.cpp built with AVX2 and without AVX-512) and
# on the AVX-512 path (both native), for Q4_0, Q8_0 and Q4_K_M at 1 and 2
# threads. The models are TinyLlama-1.1B-shaped with random weights
# (`hive mkmodel --preset tinyllama-1.1b --seed 1`): speed does not depend on
# the values.
#
# Runs are interleaved: every round measures each (type, threads, isa) row
# once with llama-bench and then with `hive bench` (prefill of N_PROMPT, and
# decode of N_GEN after a one-token prompt, as llama-bench's tg runs from an
# empty cache), and every figure is the median over the rounds, so a neighbour's
# load lands on both sides alike. Prints a table of ratios and JSON.
#
# llama.cpp is never vendored: give the script its source at the pinned tag
# and it builds llama-bench twice beside that source (native and AVX2), e.g.
#   LLAMA_SRC=/work/scratch/llama.cpp bash scripts/bench_kernels.sh
# or reuse builds: LLAMA_BIN=<native build>/bin LLAMA_BIN_AVX2=<avx2 build>/bin.
#
# Environment (defaults in brackets):
#   LLAMA_TAG [b10573]  the pinned release (names the build folders)
#   LLAMA_SRC           llama.cpp source at LLAMA_TAG (needed only to build)
#   LLAMA_BIN [$LLAMA_SRC/build-$LLAMA_TAG/bin]            native llama-bench
#   LLAMA_BIN_AVX2 [$LLAMA_SRC/build-$LLAMA_TAG-avx2/bin]  AVX2-only llama-bench
#   TYPES ["q4_0 q8_0 q4_k_m"]  THREADS ["1 2"]  ISAS ["avx2 avx512"]
#   ROUNDS [3]  N_PROMPT [128]  N_GEN [32]
#   MODELS [/tmp/hive-bench-kernels]  where the GGUF files are made (reused)
#   OUT [$MODELS/bench_kernels.json]   every raw figure and the summary
#   BUILD [build]       hive build directory
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LLAMA_TAG=${LLAMA_TAG:-b10573}
LLAMA_SRC=${LLAMA_SRC:-}
TYPES=${TYPES:-"q4_0 q8_0 q4_k_m"}
THREADS=${THREADS:-"1 2"}
ISAS=${ISAS:-"avx2 avx512"}
ROUNDS=${ROUNDS:-3}
N_PROMPT=${N_PROMPT:-128}
N_GEN=${N_GEN:-32}
MODELS=${MODELS:-/tmp/hive-bench-kernels}
OUT=${OUT:-$MODELS/bench_kernels.json}
BUILD=${BUILD:-$ROOT/build}
HIVE=$BUILD/hive

log() { echo "bench_kernels: $*" >&2; }
die() { log "$*"; exit 1; }
command -v jq >/dev/null || die "needs jq (apt-get install jq)"
mkdir -p "$MODELS"
RAW=$MODELS/raw.jsonl
: >"$RAW"

# ---- llama-bench, native and AVX2-only, built outside the repository ----
llama_flags() { # the cmake flags of one flavour
    if [[ $1 == avx2 ]]; then
        echo "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF"
    else
        echo "-DGGML_NATIVE=ON"
    fi
}

llama_bin() { # flavour -> bin folder holding llama-bench (built when missing)
    local flavour=$1 bin
    if [[ $flavour == avx2 ]]; then
        bin=${LLAMA_BIN_AVX2:-${LLAMA_SRC:+$LLAMA_SRC/build-$LLAMA_TAG-avx2/bin}}
    else
        bin=${LLAMA_BIN:-${LLAMA_SRC:+$LLAMA_SRC/build-$LLAMA_TAG/bin}}
    fi
    [[ -n $bin ]] || die "no llama.cpp: set LLAMA_SRC (source at $LLAMA_TAG) or LLAMA_BIN and LLAMA_BIN_AVX2"
    if [[ ! -x $bin/llama-bench ]]; then
        [[ -n $LLAMA_SRC && -f $LLAMA_SRC/CMakeLists.txt ]] || die "$bin/llama-bench missing and no LLAMA_SRC to build it"
        local build
        build=$(dirname "$bin")
        log "building llama-bench ($flavour) in $build (takes a while on 2 cores)"
        # shellcheck disable=SC2046 # the flags are words
        cmake -S "$LLAMA_SRC" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
            -DLLAMA_BUILD_EXAMPLES=OFF $(llama_flags "$flavour") >"$MODELS/llama-cmake-$flavour.log" 2>&1
        cmake --build "$build" --target llama-bench -j"$(nproc)" >"$MODELS/llama-build-$flavour.log" 2>&1 ||
            die "llama.cpp build failed, see $MODELS/llama-build-$flavour.log"
    fi
    echo "$bin"
}

declare -A LBIN
for isa in $ISAS; do LBIN[$isa]=$(llama_bin "$isa"); done

# ---- hive and the models ----
if [[ ! -x $HIVE ]]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" --target hive -j"$(nproc)" >/dev/null
fi
for t in $TYPES; do
    f=$MODELS/tinyllama-$t.gguf
    [[ -s $f ]] || { log "making $f"; "$HIVE" mkmodel --preset tinyllama-1.1b --type "$t" --seed 1 -q -o "$f"; }
done

# ---- one run of each side ----
run_llama() { # isa type threads round
    local f=$MODELS/tinyllama-$2.gguf out
    out=$("${LBIN[$1]}/llama-bench" -m "$f" -t "$3" -p "$N_PROMPT" -n "$N_GEN" -r 1 -lm none -o json 2>/dev/null) ||
        die "llama-bench failed on $f"
    jq -c --arg isa "$1" --arg type "$2" --argjson threads "$3" --argjson round "$4" \
        '{side: "llama", isa: $isa, type: $type, threads: $threads, round: $round,
          pp: ([.[] | select(.n_prompt > 0) | .avg_ts][0]), tg: ([.[] | select(.n_gen > 0) | .avg_ts][0])}' \
        <<<"$out" >>"$RAW"
}

# llama-bench measures tg from an empty cache, so hive's decode runs after a
# one-token prompt, not after the N_PROMPT prefill (whose 128 cached positions
# would make every decode step attend over 4-5x more of them).
hive_run() { # isa file threads prompt decode -> the JSON line of `hive bench`
    local out
    out=$(HIVE_ISA=$1 "$HIVE" bench -m "$2" -t "$3" --prompt "$4" --decode "$5" -r 1 --no-sched 2>/dev/null) ||
        die "hive bench failed on $2 (HIVE_ISA=$1)"
    grep '^{' <<<"$out" | tail -1
}

run_hive() { # isa type threads round
    local f=$MODELS/tinyllama-$2.gguf pp tg
    pp=$(hive_run "$1" "$f" "$3" "$N_PROMPT" 1 | jq .prefill_tps)
    tg=$(hive_run "$1" "$f" "$3" 1 "$N_GEN" | jq .decode_tps)
    jq -nc --arg isa "$1" --arg type "$2" --argjson threads "$3" --argjson round "$4" --argjson pp "$pp" \
        --argjson tg "$tg" '{side: "hive", isa: $isa, type: $type, threads: $threads, round: $round, pp: $pp, tg: $tg}' \
        >>"$RAW"
}

for r in $(seq 1 "$ROUNDS"); do
    for t in $TYPES; do
        for th in $THREADS; do
            for isa in $ISAS; do
                log "round $r: $t, $th thread(s), $isa"
                run_llama "$isa" "$t" "$th" "$r"
                run_hive "$isa" "$t" "$th" "$r"
            done
        done
    done
done

# ---- medians, ratios, table ----
jq -s --arg tag "$LLAMA_TAG" --arg rev "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --arg date "$(date -u +%FT%TZ)" --argjson n_prompt "$N_PROMPT" --argjson n_gen "$N_GEN" '
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
                     else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def r2: if . == null then null else (. * 100 | round) / 100 end;
  {bench: "kernels", llama_tag: $tag, hive_rev: $rev, date: $date, n_prompt: $n_prompt, n_gen: $n_gen,
   rows: (group_by([.isa, .type, .threads]) | map(
     (map(select(.side == "llama"))) as $l | (map(select(.side == "hive"))) as $h |
     {isa: .[0].isa, type: .[0].type, threads: .[0].threads, rounds: ($l | length),
      llama_pp: ($l | map(.pp) | median | r2), llama_tg: ($l | map(.tg) | median | r2),
      hive_pp: ($h | map(.pp) | median | r2), hive_tg: ($h | map(.tg) | median | r2)} |
     .pp_ratio = (if .llama_pp then (.hive_pp / .llama_pp | r2) else null end) |
     .tg_ratio = (if .llama_tg then (.hive_tg / .llama_tg | r2) else null end))),
   raw: .}' "$RAW" >"$OUT"

jq -r '"| isa | type | threads | llama.cpp pp / tg | hive pp / tg | hive / llama.cpp pp / tg |", "|---|---|---|---|---|---|",
       (.rows | sort_by(.isa, .type, .threads)[] |
        "| \(.isa) | \(.type) | \(.threads) | \(.llama_pp) / \(.llama_tg) | \(.hive_pp) / \(.hive_tg) | \(.pp_ratio) / \(.tg_ratio) |")' \
    "$OUT"
jq -c 'del(.raw)' "$OUT"
log "raw figures: $OUT"
