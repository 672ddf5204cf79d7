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

# The tests run with the arm64 loader and libc of Debian's libc6:arm64 (in
# /lib, /lib/aarch64-linux-gnu: pulled in by the :arm64 -dev packages), the
# same glibc build as the libraries they load. Not -L /usr/aarch64-linux-gnu:
# that sysroot's ld.so and libc (libc6-arm64-cross, used for linking) are
# another build of glibc 2.36, and a process whose loader comes from one and
# libc.so.6 from the other hangs in its first pthread_create.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /)
