#!/usr/bin/env bash
# The whole test suite: installs missing Debian packages, then builds a
# release build and an ASan+UBSan build (warnings are errors) and runs every
# test in both. Tests that need ../shared skip with a message when it is absent.
# HIVE_CROSS_TESTS=1 also makes the cross builds (scripts/cross.sh: the
# aarch64 build with its NEON kernels, tested under qemu-aarch64, and the
# Windows node with mingw-w64, tested under wine) and turns on the mixed-OS
# cluster test (test_cross_win: x86-64 head, aarch64 and Windows nodes) in
# the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test

jobs=$(nproc)
cross=OFF
if [ "${HIVE_CROSS_TESTS:-0}" = 1 ]; then
  echo "test: cross builds (aarch64 under qemu, Windows under wine) and their tests"
  bash scripts/cross.sh --test
  cross=ON
fi
echo "test: release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DHIVE_WERROR=ON -DHIVE_CROSS_TESTS=$cross >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "test: ASan+UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHIVE_WERROR=ON -DHIVE_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 HIVE_TEST_SCALE=small \
   ctest --output-on-failure -j"$jobs")
echo "test: all green"
