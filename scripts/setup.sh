#!/usr/bin/env bash
# Installs the Debian packages hive builds against (when missing) and builds
# it into ./build. Safe to run again: it only does what is not done yet.
# `setup.sh --test` also installs what the tests use (chromium).
# Progress goes to stderr: the packages it installs, then the build's
# percentage (a first build takes about half a minute on two cores).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in build-essential cmake pkg-config libsodium-dev libmicrohttpd-dev libcjson-dev libcurl4-openssl-dev libsqlite3-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# With --test: a headless browser for test_dashboard too (it skips without
# one). The demo does not need it.
if [ "${1:-}" = "--test" ] && ! dpkg -s chromium >/dev/null 2>&1 && ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing chromium (for test_dashboard)" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null 2>&1; }; } ||
    echo "setup: chromium could not be installed; test_dashboard will skip" >&2
fi

jobs="$(nproc 2>/dev/null || echo 2)"
log="build/setup-build.log"
mkdir -p build
if [ ! -f build/CMakeCache.txt ]; then
  echo "setup: configuring ./build" >&2
  if ! cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: cmake failed (log above, also in $log)" >&2
    exit 1
  fi
fi
echo "setup: building hive into ./build with $jobs jobs (a first build takes about 30 s on 2 cores)" >&2
start=$SECONDS
tty=0
[ -t 2 ] && tty=1
# cmake prints "[ NN%] ..." per step: show the percentage (one updating line
# on a terminal, a line every 10% otherwise); the full output goes to the log.
set +e
cmake --build build -j"$jobs" 2>&1 | tee "$log" | awk -v tty="$tty" '
  match($0, /^\[ *[0-9]+%\]/) {
    pct = substr($0, RSTART + 1, RLENGTH - 3) + 0
    if (tty) { printf "\r  %3d%%  %s", pct, substr($0, RSTART + RLENGTH + 1, 60) > "/dev/stderr"; fflush("/dev/stderr") }
    else if (pct >= last + 10) { printf "  %3d%%\n", pct > "/dev/stderr"; last = pct }
  }
  END { if (tty) printf "\r%80s\r", "" > "/dev/stderr" }'
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  grep -E "error|Error" "$log" | head -20 >&2 || true
  echo "setup: the build failed (full output in $log)" >&2
  exit 1
fi
echo "setup: built ./build/hive in $((SECONDS - start)) s" >&2
