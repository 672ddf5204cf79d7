/* bench_common.h - small helpers shared by the benchmarks: the
 * hive binary's path and synthetic model caching. */
#ifndef HIVE_BENCH_COMMON_H
#define HIVE_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hive/core.h"

/* Directory of this executable (the build dir, where `hive` lives). */
static inline void bench_bin_dir(char *buf, size_t cap) {
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n <= 0) {
        snprintf(buf, cap, ".");
        return;
    }
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (slash) *slash = 0;
}

/* Makes (once) a synthetic model with `hive mkmodel ARGS` at dir/name and
 * writes its path into out. Returns 0 on success. */
static inline int bench_synth_model(const char *dir, const char *name, const char *args, char *out, size_t cap) {
    char bin[1024], cmd[4096];
    struct stat st;
    snprintf(out, cap, "%s/%s", dir, name);
    if (stat(out, &st) == 0 && st.st_size > 0) return 0;
    bench_bin_dir(bin, sizeof bin);
    mkdir(dir, 0755);
    snprintf(cmd, sizeof cmd, "'%s/hive' mkmodel %s -o '%s' >&2", bin, args, out);
    fprintf(stderr, "bench: making %s\n", out);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
