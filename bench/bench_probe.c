/* bench_probe.c - how stable is hive_probe_speed? The planner divides by
 * it, so two probes of one machine that differ by 2x move layers between
 * identical nodes from one run to the next.
 *
 * Runs the probe `runs` times in each of `procs` processes at once (procs > 1
 * is several nodes started together on one machine, the case that flickered)
 * and prints each value, the median, and the spread max/min over all of
 * them, then one JSON line. Target: spread <= 1.3 (within +-15%).
 *
 * `old` as the fourth argument runs the probe as it was before (best of 7
 * calls on one 2.25 MiB matrix, no warm-up pass, no turn-taking) for a
 * before/after comparison on the same machine at the same time.
 *
 * usage: bench_probe [runs=5] [threads=0 (all cores)] [procs=1] [new|old] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hive/cluster.h"
#include "hive/core.h"
#include "hive/tensor.h"

#define MAX_VALUES 1024

/* The probe before this change, kept here only to compare against. */
static double old_probe(int n_threads) {
    const int64_t n_rows = 2048, n_cols = 2048;
    const int type = HIVE_TYPE_Q4_0;
    uint64_t row_bytes = hive_type_row_bytes(type, n_cols), w_bytes = row_bytes * (uint64_t)n_rows;
    uint8_t *w = hive_malloc_aligned(w_bytes);
    float *x = hive_malloc_aligned((size_t)n_cols * sizeof(float));
    float *y = hive_malloc_aligned((size_t)n_rows * sizeof(float));
    float *row = malloc((size_t)n_cols * sizeof(float));
    hive_pool *pool = hive_pool_create(n_threads);
    double best_us = 0;
    uint32_t s = 12345;
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t c = 0; c < n_cols; c++) {
            s = s * 1664525u + 1013904223u;
            row[c] = (float)((int32_t)(s >> 8) - (1 << 23)) / (float)(1 << 23);
        }
        hive_quantize_row(type, row, w + (uint64_t)r * row_bytes, n_cols);
    }
    for (int64_t c = 0; c < n_cols; c++) x[c] = (float)(c % 7) * 0.1f - 0.3f;
    for (int it = 0; it < 8; it++) {
        uint64_t t0 = hive_now_us();
        hive_matmul(pool, type, w, n_rows, n_cols, x, 1, y);
        uint64_t dt = hive_now_us() - t0;
        if (it > 0 && (best_us == 0 || (double)dt < best_us)) best_us = (double)(dt ? dt : 1);
    }
    hive_pool_free(pool);
    free(row);
    hive_free_aligned(w);
    hive_free_aligned(x);
    hive_free_aligned(y);
    return (double)w_bytes / (best_us * 1e-6);
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    int threads = argc > 2 ? atoi(argv[2]) : 0;
    int procs = argc > 3 ? atoi(argv[3]) : 1;
    int old = argc > 4 && !strcmp(argv[4], "old");
    if (runs < 1 || runs > 100 || threads < 0 || procs < 1 || procs > 8) {
        fprintf(stderr, "usage: bench_probe [runs=5] [threads=0] [procs=1] [new|old]\n");
        return 2;
    }
    if (threads == 0) threads = hive_cpu_count();
    int fds[8][2];
    pid_t pids[8];
    double t0 = hive_now_ms();
    for (int p = 0; p < procs; p++) {
        if (pipe(fds[p]) != 0) return 1;
        pids[p] = fork();
        if (pids[p] < 0) return 1;
        if (pids[p] == 0) {
            close(fds[p][0]);
            for (int r = 0; r < runs; r++) {
                double v = old ? old_probe(threads) : hive_probe_speed(threads);
                if (write(fds[p][1], &v, sizeof v) != sizeof v) _exit(1);
            }
            _exit(0);
        }
        close(fds[p][1]);
    }
    double v[MAX_VALUES], sorted[MAX_VALUES];
    int n = 0;
    for (int p = 0; p < procs; p++) {
        double x;
        while (read(fds[p][0], &x, sizeof x) == sizeof x && n < MAX_VALUES) v[n++] = x;
        close(fds[p][0]);
        waitpid(pids[p], NULL, 0);
    }
    double wall = hive_now_ms() - t0;
    if (n == 0) return 1;
    double lo = v[0], hi = v[0];
    for (int i = 0; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        sorted[i] = v[i];
        fprintf(stderr, "probe %2d (process %d): %8.0f MB/s\n", i, i / runs, v[i] / 1e6);
    }
    double med = hive_median(sorted, n);
    double ms_per_probe = wall / runs;
    fprintf(stderr, "median %.0f MB/s, min %.0f, max %.0f, spread max/min %.3f (%s), %.0f ms per probe\n",
            med / 1e6, lo / 1e6, hi / 1e6, hi / lo, hi / lo <= 1.3 ? "within 1.3" : "OVER 1.3", ms_per_probe);
    printf("{\"bench\":\"probe\",\"probe\":\"%s\",\"runs\":%d,\"procs\":%d,\"threads\":%d,\"median_mbps\":%.1f,"
           "\"min_mbps\":%.1f,\"max_mbps\":%.1f,\"spread\":%.4f,\"ms_per_probe\":%.1f,\"values_mbps\":[",
           old ? "old" : "new", runs, procs, threads, med / 1e6, lo / 1e6, hi / 1e6, hi / lo, ms_per_probe);
    for (int i = 0; i < n; i++) printf("%s%.1f", i ? "," : "", v[i] / 1e6);
    printf("]}\n");
    return 0;
}
