#!/usr/bin/env bash
# The whole test suite: installs missing Debian packages, then builds a
# release build and an ASan+UBSan build (warnings are errors) and runs every
# test in both. Tests that need ../shared skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test

jobs=$(nproc)
echo "test: release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DHIVE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "test: ASan+UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHIVE_WERROR=ON -DHIVE_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 HIVE_TEST_SCALE=small \
   ctest --output-on-failure -j"$jobs")
echo "test: all green"
