# CMake toolchain file: Windows x86-64 with Debian's mingw-w64 (the -posix
# compilers, whose winpthreads keeps pthreads working). Executables are
# linked statically, so wine needs no DLL beside them, and ctest runs the
# tests under wine (CMAKE_CROSSCOMPILING_EMULATOR).
# libsodium comes from scripts/cross/mingw.sh (HIVE_MINGW_DEPS = its prefix).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(HIVE_MINGW_HOST x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${HIVE_MINGW_HOST}-gcc-posix)
set(CMAKE_RC_COMPILER ${HIVE_MINGW_HOST}-windres)
set(CMAKE_FIND_ROOT_PATH /usr/${HIVE_MINGW_HOST})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
# C99 printf/scanf (%zu, %lld) instead of the old Microsoft runtime's
# and the Windows 7 API (WSAPoll, inet_ntop)
set(CMAKE_C_FLAGS_INIT "-D__USE_MINGW_ANSI_STDIO=1 -D_WIN32_WINNT=0x0601")
find_program(HIVE_WINE NAMES wine64 wine)
if(HIVE_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${HIVE_WINE})
endif()
