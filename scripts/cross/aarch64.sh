#!/usr/bin/env bash
# Cross-builds hive for aarch64 Linux into ./build-aarch64 with Debian's
# gcc-aarch64-linux-gnu and arm64 libraries from Debian multiarch, so that
# `ctest` there runs the tests under qemu-aarch64 (Debian's qemu-user).
# Safe to run again: packages are installed only when missing, and the build
# is incremental.
#   scripts/cross/aarch64.sh            install what is missing, build hive + tests
#   scripts/cross/aarch64.sh --test     also run the kernel tests under qemu
# HIVE_CROSS_TESTS (a ctest -R regex) picks those tests; the cluster and
# server tests are left to the native build (they only add emulation time).
set -euo pipefail
cd "$(dirname "$0")/../.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "cross/aarch64: adding the arm64 architecture" >&2
  $SUDO dpkg --add-architecture arm64
fi
need=()
for pkg in cmake pkg-config gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
  libsodium-dev:arm64 libmicrohttpd-dev:arm64 libcjson-dev:arm64 libcurl4-openssl-dev:arm64; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "cross/aarch64: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

jobs="${HIVE_JOBS:-$(nproc 2>/dev/null || echo 2)}"
[ "$jobs" -gt 2 ] 2>/dev/null || true
if [ ! -f build-aarch64/CMakeCache.txt ]; then
  cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
    -DCMAKE_BUILD_TYPE=Release -DHIVE_WERROR=ON >/dev/null
fi
cmake --build build-aarch64 -j"$jobs" >/dev/null
echo "cross/aarch64: built build-aarch64/hive" >&2

if [ "${1:-}" = "--test" ]; then
  regex="${HIVE_CROSS_TESTS:-^test_(matmul|kquant|tensor|reference)$}"
  (cd build-aarch64 && ctest -j"$jobs" --output-on-failure -R "$regex")
fi
