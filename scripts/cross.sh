#!/usr/bin/env bash
# The cross builds, in one go, so that anyone can repeat them:
#   build-aarch64/hive   aarch64 Linux, NEON kernels (scripts/cross/aarch64.sh:
#                        gcc-aarch64-linux-gnu, arm64 multiarch libraries, qemu-user)
#   build-mingw/hive.exe Windows, node-only (scripts/cross/mingw.sh: mingw-w64,
#                        wine, libsodium and cJSON built from Debian's sources)
# Each step installs what is missing and is quick when done before.
#   scripts/cross.sh          build both
#   scripts/cross.sh --test   also run their unit tests (qemu-aarch64, wine)
# With both built, `cmake -DHIVE_CROSS_TESTS=ON` turns on the mixed cluster
# test (tests/test_cross_win.c: an x86-64 head, an aarch64 node and a Windows
# node give the single-node tokens); HIVE_CROSS_TESTS=1 bash scripts/test.sh
# does all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/cross/aarch64.sh "$@"
bash scripts/cross/mingw.sh "$@"
