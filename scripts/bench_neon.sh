#!/usr/bin/env bash
# bench_neon.sh - the aarch64 NEON kernels under qemu-aarch64 (issue 11):
# prefill and decode tokens/s per weight type of build-aarch64/hive, at
#   ref      HIVE_ISA=ref: the scalar reference kernels;
#   dotprod  HIVE_ISA=neon: the NEON kernels with vdotq_s32 (qemu's default
#            cpu, "max", has dotprod);
#   plain    HIVE_ISA=neon HIVE_NEON_DOTPROD=0: the plain-NEON build;
# each as a ratio to ref, all on the same small synthetic llama GGUF per type
# (`build/hive mkmodel`, random weights; default dim 256, 2 layers, ff 768,
# vocab 512, so that emulation finishes in minutes).
#
# What it measures is qemu's emulation, not an ARM CPU: TCG turns scalar
# integer code into a few host instructions, but most NEON and every float
# operation go through helper calls, so a ratio here says whether the NEON
# code runs and how it compares under emulation, not what a Pi or an M1
# would gain.
#
# The runs are interleaved (round r, type t, mode m: one `hive bench -r REPS`,
# whose median leaves out the first run, slowed by qemu translating the code),
# and every figure is the median over the rounds, so the shared machine's
# load drifts onto all modes alike.
#
# Environment (defaults in brackets):
#   ROUNDS [3]   rounds; TYPES ["f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k"]
#   PROMPT [64]  prompt tokens; DECODE [32] decoded tokens; THREADS [1]; REPS [3] runs per figure
#   DIM [256] LAYERS [2] FF [768]   model shape
#   SCRATCH [/tmp/hive-bench-neon]  models and raw results
# Needs build/hive (scripts/setup.sh) and build-aarch64/hive (scripts/cross/aarch64.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-3}"
TYPES="${TYPES:-f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k}"
PROMPT="${PROMPT:-64}" DECODE="${DECODE:-32}" THREADS="${THREADS:-1}" REPS="${REPS:-3}"
DIM="${DIM:-256}" LAYERS="${LAYERS:-2}" FF="${FF:-768}"
SCRATCH="${SCRATCH:-/tmp/hive-bench-neon}"
MODES="ref dotprod plain"

[ -x build/hive ] || bash scripts/setup.sh
[ -x build-aarch64/hive ] || bash scripts/cross/aarch64.sh
mkdir -p "$SCRATCH"
raw="$SCRATCH/raw.tsv"
: >"$raw"

for t in $TYPES; do
  m="$SCRATCH/$t.gguf"
  [ -f "$m" ] || build/hive mkmodel -o "$m" --type "$t" --dim "$DIM" --layers "$LAYERS" --ff "$FF" -q
done

run_one() { # type mode -> "prefill_tps decode_tps"
  local env=(HIVE_ISA=neon)
  case "$2" in
    ref) env=(HIVE_ISA=ref) ;;
    plain) env=(HIVE_ISA=neon HIVE_NEON_DOTPROD=0) ;;
  esac
  env "${env[@]}" qemu-aarch64 -L / build-aarch64/hive bench -m "$SCRATCH/$1.gguf" -t "$THREADS" \
    --prompt "$PROMPT" --decode "$DECODE" -r "$REPS" --no-sched 2>/dev/null |
    sed -n 's/.*"prefill_tps":\([0-9.]*\),"decode_tps":\([0-9.]*\).*/\1 \2/p'
}

for r in $(seq 1 "$ROUNDS"); do
  echo "bench_neon: round $r of $ROUNDS" >&2
  for t in $TYPES; do
    for mode in $MODES; do
      read -r pp tg < <(run_one "$t" "$mode")
      printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$mode" "$pp" "$tg" >>"$raw"
    done
  done
done

# median per (type, mode), then the table
python3 - "$raw" "$TYPES" <<'PY'
import statistics, sys
raw, types = sys.argv[1], sys.argv[2].split()
runs = {}
for line in open(raw):
    r, t, mode, pp, tg = line.split()
    runs.setdefault((t, mode), []).append((float(pp), float(tg)))
med = {k: (statistics.median(p for p, _ in v), statistics.median(g for _, g in v)) for k, v in runs.items()}
print("| type | prefill ref | prefill dotprod | x ref | prefill plain | x ref | decode ref | decode dotprod | x ref | decode plain | x ref |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for t in types:
    ref, dp, pl = med[(t, "ref")], med[(t, "dotprod")], med[(t, "plain")]
    print(f"| {t} | {ref[0]:.1f} | {dp[0]:.1f} | {dp[0]/ref[0]:.2f} | {pl[0]:.1f} | {pl[0]/ref[0]:.2f} "
          f"| {ref[1]:.1f} | {dp[1]:.1f} | {dp[1]/ref[1]:.2f} | {pl[1]:.1f} | {pl[1]/ref[1]:.2f} |")
PY
