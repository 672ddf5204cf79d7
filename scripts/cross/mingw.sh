#!/usr/bin/env bash
# Cross-builds hive for Windows (x86_64-w64-mingw32) into ./build-mingw and
# runs its tests under wine:
#   1. installs Debian's mingw-w64 and wine (apt-get) when missing;
#   2. builds libsodium and cJSON for the mingw host from Debian's own source
#      packages (a deb-src entry for bookworm is added when missing; nothing
#      is downloaded from anywhere else) into build-mingw/deps, once;
#   3. configures build-mingw with cmake/mingw-w64.cmake (node-only build:
#      no server, store or mDNS) and builds hive.exe and the unit tests.
# `mingw.sh --test` then runs the unit tests that make sense on Windows under
# wine (ctest's emulator). Safe to run again: each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
deps=$root/build-mingw/deps
host=x86_64-w64-mingw32
jobs=$(( $(nproc 2>/dev/null || echo 2) < 2 ? 1 : 2 ))
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  # other builds on the machine may hold the dpkg lock: wait for it
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
}
t0=$SECONDS

# Unpacks Debian's source package $1 into build-mingw/src (apt-get source:
# the .dsc's signature and checksums are verified, Debian's patches applied)
# and prints the source tree's path.
debian_source() {
  local src=$root/build-mingw/src
  rm -rf "$src" && mkdir -p "$src"
  echo "mingw: building $1 for $host (apt-get source $1)" >&2
  (cd "$src" && apt-get source -qq "$1" >/dev/null 2>&1)
  local dir
  dir=$(find "$src" -maxdepth 1 -type d -name "$1-*" | head -n1)
  [ -n "$dir" ] || { echo "mingw: apt-get source $1 gave no source tree" >&2; exit 1; }
  echo "$dir"
}

# ---- 1. toolchain and emulator ----
need=()
for pkg in mingw-w64 wine wine64 dpkg-dev autoconf automake libtool cmake make pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "mingw: installing ${need[*]}" >&2
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt_install "${need[@]}"
fi

# ---- 2. libsodium for the mingw host, from Debian's source package ----
if [ ! -f "$deps/lib/libsodium.a" ]; then
  if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src ' /etc/apt/sources.list; then
    echo "mingw: adding a deb-src entry for bookworm" >&2
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
      $SUDO tee /etc/apt/sources.list.d/hive-deb-src.sources >/dev/null
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  fi
  dir=$(debian_source libsodium)
  src=$(dirname "$dir")
  # Debian's source has no generated configure (debian/rules runs autoreconf)
  (cd "$dir" && autoreconf -fi >"$src/autoreconf.log" 2>&1 && ./configure -q --host=$host --prefix="$deps" --disable-shared --enable-static \
      --disable-dependency-tracking >"$src/configure.log" 2>&1 &&
   make -j"$jobs" >"$src/make.log" 2>&1 && make install >"$src/install.log" 2>&1) ||
    { tail -n 30 "$src"/*.log >&2; echo "mingw: libsodium build failed (logs in $src)" >&2; exit 1; }
  rm -rf "$src"
fi
# cJSON the same way (one C file; its own build would want cmake's tests)
if [ ! -f "$deps/lib/libcjson.a" ]; then
  dir=$(debian_source cjson)
  src=$(dirname "$dir")
  mkdir -p "$deps/include/cjson" "$deps/lib"
  $host-gcc-posix -O2 -c "$dir/cJSON.c" -o "$src/cJSON.o"
  $host-ar rcs "$deps/lib/libcjson.a" "$src/cJSON.o"
  cp "$dir/cJSON.h" "$deps/include/cjson/cJSON.h"
  rm -rf "$src"
fi
echo "mingw: toolchain, wine, libsodium and cJSON ready after $((SECONDS - t0)) s" >&2

# ---- 3. hive.exe and the tests ----
if [ ! -f build-mingw/CMakeCache.txt ]; then
  cmake -S . -B build-mingw -DCMAKE_TOOLCHAIN_FILE="$root/cmake/mingw-w64.cmake" \
        -DHIVE_MINGW_DEPS="$deps" -DCMAKE_BUILD_TYPE=Release -DHIVE_WERROR=ON >/dev/null
fi
cmake --build build-mingw -j"$jobs" >/dev/null
echo "mingw: built build-mingw/hive.exe after $((SECONDS - t0)) s" >&2

if [ "${1:-}" = "--test" ]; then
  # wine's first start creates its prefix (~20 s): do it once, quietly
  export WINEDEBUG=-all WINEPREFIX=${WINEPREFIX:-$root/build-mingw/wineprefix}
  [ -d "$WINEPREFIX" ] || wineboot -i >/dev/null 2>&1 || true
  # every test a node-only build has (CMakeLists.txt: HIVE_NODE_ONLY)
  (cd build-mingw && HIVE_TEST_SCALE=small ctest --output-on-failure -j"$jobs")
  echo "mingw: tests done after $((SECONDS - t0)) s" >&2
fi
