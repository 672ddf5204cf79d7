/* bench_common.h - small helpers shared by the benchmarks: medians, the
 * hive binary's path, synthetic model caching, read bandwidth. */
#ifndef HIVE_BENCH_COMMON_H
#define HIVE_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hive/core.h"

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of n values (sorts v). */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

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
