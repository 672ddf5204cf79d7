# Cross-compiling hive for aarch64 Linux on Debian (scripts/cross/aarch64.sh):
#   gcc-aarch64-linux-gnu for the compiler, arm64 libraries from Debian
#   multiarch (dpkg --add-architecture arm64; libsodium-dev:arm64 ...), and
#   qemu-user so that ctest runs the test binaries under qemu-aarch64.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)

# Headers and libraries of the target: the cross toolchain's sysroot plus the
# multiarch directories the :arm64 packages install into.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config must read the arm64 .pc files only (never the host's).
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# -L: the dynamic loader and libc of the target live in the cross sysroot;
# the multiarch libraries under /usr/lib/aarch64-linux-gnu are found by the
# loader's default path inside it (qemu maps /lib and /usr/lib through -L
# only when the file exists there, otherwise it reads the host's).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
