#!/usr/bin/env bash
# Cross-builds hive for aarch64 Linux into ./build-aarch64 with Debian's
# gcc-aarch64-linux-gnu and arm64 libraries from Debian multiarch
# (cmake/aarch64-linux-gnu.cmake), so that `ctest` there runs the test
# binaries under qemu-aarch64 (Debian's qemu-user). Safe to run again:
# packages are installed only when missing (a few seconds when all are
# there), and the build is incremental.
#   scripts/cross/aarch64.sh          install what is missing, build hive, the tests and tools
#   scripts/cross/aarch64.sh --test   then run the kernel and reference tests under qemu
# HIVE_CROSS_TEST_REGEX (a ctest -R regex) overrides which tests --test runs. The
# default set is the kernels' (every NEON kernel against its _ref, both the
# dotprod and the plain build) and test_reference (logits of the shared
# models against llama.cpp's); the cluster, server and fuzz tests stay with
# the native build, where emulation does not multiply their time.
# On a 2-core machine (measured 2026-11, shared): install ~50 s the first time,
# build ~75 s from scratch, --test 2-2.5 min.
set -euo pipefail
cd "$(dirname "$0")/../.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
added=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "cross/aarch64: adding the arm64 architecture" >&2
  $SUDO dpkg --add-architecture arm64
  added=1
fi
need=()
for pkg in cmake pkg-config gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libc6:arm64 \
  libsodium-dev:arm64 libmicrohttpd-dev:arm64 libcjson-dev:arm64 libcurl4-openssl-dev:arm64 libsqlite3-dev:arm64; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ] || [ "$added" = 1 ]; then
  echo "cross/aarch64: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  # the :arm64 libraries must match the versions of their amd64 twins, so
  # apt may upgrade a few host packages along (multiarch rule)
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

jobs="$(nproc 2>/dev/null || echo 2)"
if [ ! -f build-aarch64/CMakeCache.txt ]; then
  echo "cross/aarch64: configuring ./build-aarch64" >&2
  cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
    -DCMAKE_BUILD_TYPE=Release -DHIVE_WERROR=ON >/dev/null
fi
echo "cross/aarch64: building ./build-aarch64 with $jobs jobs" >&2
log=build-aarch64/cross-build.log
if ! cmake --build build-aarch64 -j"$jobs" >"$log" 2>&1; then
  grep -E "error|Error" -A3 "$log" | head -40 >&2
  echo "cross/aarch64: build failed (full log in $log)" >&2
  exit 1
fi
echo "cross/aarch64: built build-aarch64/hive" >&2

if [ "${1:-}" = "--test" ]; then
  regex="${HIVE_CROSS_TEST_REGEX:-^test_(kern_arm|tensor|kquant|matmul|reference)$}"
  (cd build-aarch64 && ctest -j"$jobs" --output-on-failure -R "$regex")
fi
