#!/usr/bin/env bash
# Runs one fuzz target (tests/fuzz/fuzz_TARGET.c) for MINUTES (default 5)
# with libFuzzer (clang, the default) or AFL++ (ENGINE=afl; Debian's afl++,
# installed with apt-get when missing), under ASan+UBSan, starting from
# tests/fuzz/corpus/TARGET plus tests/fuzz/regress/TARGET with
# tests/fuzz/dict/TARGET.dict. Every crash is minimised and saved as a
# regression input under tests/fuzz/regress/TARGET/ (replayed by CTest).
#   bash scripts/fuzz.sh TARGET [MINUTES]
#   ENGINE=afl bash scripts/fuzz.sh gguf 10
# Targets: gguf model tokenizer chat proto weights link http dns decompose.
# The grown corpus stays in build-fuzz-*/corpus/TARGET (not committed);
# the last lines of the run's log are the figures FUZZING.md records.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET [MINUTES]}
minutes=${2:-5}
engine=${ENGINE:-libfuzzer}
[ -f "tests/fuzz/fuzz_$target.c" ] || { echo "fuzz: no target tests/fuzz/fuzz_$target.c" >&2; exit 2; }
secs=$((minutes * 60))
regress=tests/fuzz/regress/$target
dict=tests/fuzz/dict/$target.dict
mkdir -p "$regress"
export HIVE_FUZZ_VOCABS=${HIVE_FUZZ_VOCABS:-$(ls ../shared/tokenizers/llama.cpp-vocab/ggml-vocab-{llama-spm,phi-3,gpt-2,deepseek-llm,deepseek-coder,falcon,starcoder,refact,mpt}.gguf 2>/dev/null | paste -sd: || true)}

case $engine in
libfuzzer) cc=clang; dir=build-fuzz-libfuzzer ;;
afl)
  if ! command -v afl-clang-fast >/dev/null; then
    apt-get install -y afl++ >/dev/null || { echo "fuzz: cannot install afl++" >&2; exit 1; }
  fi
  cc=afl-clang-fast; dir=build-fuzz-afl ;;
*) echo "fuzz: ENGINE is libfuzzer or afl" >&2; exit 2 ;;
esac
if [ ! -f "$dir/CMakeCache.txt" ]; then
  CC=$cc cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DHIVE_SANITIZE=ON -DHIVE_FUZZ=ON >/dev/null
fi
cmake --build "$dir" --target "hive-fuzz-$target" -j"${JOBS:-2}" >/dev/null
bin=$dir/hive-fuzz-$target
work=$dir/corpus/$target
mkdir -p "$work" "$dir/crashes/$target"
cp -n tests/fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
cp -n "$regress"/* "$work"/ 2>/dev/null || true
log=$dir/$target.log
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

save_crash() { # $1 = crashing input: minimise it into regress/
  local c=$1 name
  name=$regress/crash-$(sha1sum "$c" | cut -c1-12)
  if [ "$engine" = libfuzzer ]; then
    "$bin" -minimize_crash=1 -max_total_time=60 -exact_artifact_path="$name" "$c" >/dev/null 2>&1 || true
    [ -s "$name" ] || cp "$c" "$name"
  else
    afl-tmin -i "$c" -o "$name" -t 5000 -m none -- "$bin" >/dev/null 2>&1 || cp "$c" "$name"
  fi
  echo "fuzz: crash saved as $name"
}

if [ "$engine" = libfuzzer ]; then
  set +e
  "$bin" "$work" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -dict="$dict" -artifact_prefix="$dir/crashes/$target/" >"$log" 2>&1
  set -e
  grep -E "^#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added" "$log" | tail -4
  for c in "$dir/crashes/$target"/*; do [ -f "$c" ] && save_crash "$c"; done
  echo "fuzz: corpus $(ls "$work" | wc -l) files; log $log"
else
  export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
  out=$dir/afl-$target
  set +e
  timeout $((secs + 30)) afl-fuzz -i "$work" -o "$out" -x "$dict" -V "$secs" -t 5000 -m none -- "$bin" >"$log" 2>&1
  set -e
  grep -E "execs_done|corpus_count|edges_found|saved_crashes|unique_crashes" "$out/default/fuzzer_stats" || true
  for c in "$out"/default/crashes/id:*; do [ -f "$c" ] && save_crash "$c"; done
  echo "fuzz: log $log, state $out"
fi
n=$(ls "$regress" | wc -l)
echo "fuzz: $n regression inputs in $regress"
