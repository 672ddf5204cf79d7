/* probe.c - a node's decode speed: weight bytes per second through
 * hive_matmul for one token, the quantity the planner divides by.
 *
 * Decode streams every weight from memory once per token, so the probe must
 * too: it cycles through copies of a Q4_0 matrix (4096 x 2048, the size of
 * a small model's FFN matrix) that together are twice the last-level cache
 * (32..128 MiB; less when memory is tight). A 2 MiB matrix, as before, sat
 * in L2/L3 and measured the cache and the thread hand-off, and "best of 7"
 * of 0.2 ms calls gave 4.6 to 47 GB/s on one idle machine. The copies sit
 * in transparent huge pages, as a model's weights do (hive_map_anon with
 * HIVE_MAP_HUGE): through 4 KiB pages the probe read 16 GB/s where decode
 * ran at 19-20, and every plan expected 10-40% too slow.
 *
 * One sample = one pass over all copies (several ms, many matmuls). Two
 * passes warm page tables, caches and the pool's threads; the result is the
 * median of the next samples, so a descheduled pass or a lucky one moves it
 * little. Probes of nodes on one machine take turns (flock on
 * /tmp/hive-probe.lock). About 0.1-0.3 s in all; bench/bench_probe measures
 * the spread. */
#include "hive/cluster.h"

#include <stdlib.h>
#include <string.h>

#include "hive/os.h"
#include "hive/tensor.h"

#define PROBE_ROWS 4096
#define PROBE_COLS 2048
#define PROBE_DISTINCT_ROWS 64
#define PROBE_LOCK "hive-probe.lock"
#define PROBE_LOCK_WAIT_MS 10000
#define PROBE_WARMUP 2
#define PROBE_SAMPLES 15
#define PROBE_MIN_SET (32ull << 20)
#define PROBE_MAX_SET (128ull << 20)

static uint64_t working_set_bytes(void) {
    uint64_t set = 2 * hive_llc_bytes();
    if (set < PROBE_MIN_SET) set = PROBE_MIN_SET;
    if (set > PROBE_MAX_SET) set = PROBE_MAX_SET;
    /* A node squeezed into a small container must not die probing. */
    uint64_t avail = hive_mem_available();
    if (avail && set > avail / 8) set = avail / 8;
    return set;
}

/* The machine-wide turn (hive_machine_lock: a flock on /tmp/PROBE_LOCK, a
 * named mutex on Windows), waited for at most PROBE_LOCK_WAIT_MS: a lock
 * someone holds forever delays a node's start, it does not stop it. */

double hive_probe_speed(int n_threads) {
    const int type = HIVE_TYPE_Q4_0;
    uint64_t row_bytes = hive_type_row_bytes(type, PROBE_COLS);
    double guess = 2e9; /* bytes/s, when the kernels cannot run */
    if (row_bytes == 0) return guess;
    uint64_t mat_bytes = row_bytes * PROBE_ROWS;
    uint64_t set = working_set_bytes();
    int n_copies = (int)(set / mat_bytes);
    if (n_copies < 1) n_copies = 1;
    size_t w_bytes = (size_t)(mat_bytes * (uint64_t)n_copies);
    uint8_t *w = hive_map_anon(w_bytes, HIVE_MAP_HUGE);
    float *x = hive_malloc_aligned((size_t)PROBE_COLS * sizeof(float));
    float *y = hive_malloc_aligned((size_t)PROBE_ROWS * sizeof(float));
    float *row = malloc((size_t)PROBE_COLS * sizeof(float));
    hive_pool *pool = hive_pool_create(n_threads > 0 ? n_threads : hive_cpu_count());
    double samples[PROBE_SAMPLES];
    int lock_fd = -1;
    int n_samples = 0;
    if (w && x && y && row && pool) {
        /* 64 distinct quantized rows repeated: the values do not change the
         * speed, and quantizing 64 MiB would cost more than the probe. */
        uint32_t s = 12345;
        for (int64_t r = 0; r < PROBE_DISTINCT_ROWS; r++) {
            for (int64_t c = 0; c < PROBE_COLS; c++) {
                s = s * 1664525u + 1013904223u;
                row[c] = (float)((int32_t)(s >> 8) - (1 << 23)) / (float)(1 << 23);
            }
            hive_quantize_row(type, row, w + (uint64_t)r * row_bytes, PROBE_COLS);
        }
        uint64_t unit = row_bytes * PROBE_DISTINCT_ROWS, total = mat_bytes * (uint64_t)n_copies;
        for (uint64_t off = unit; off < total; off += unit)
            memcpy(w + off, w, (size_t)(total - off < unit ? total - off : unit));
        /* Nodes started together on one machine would probe at once and
         * each see a fraction of it (3 nodes: 3.3 vs 11 GB/s, whoever ran
         * last alone got the most). One probe at a time per machine. */
        lock_fd = hive_machine_lock(PROBE_LOCK, PROBE_LOCK_WAIT_MS);
        for (int64_t c = 0; c < PROBE_COLS; c++) x[c] = (float)(c % 7) * 0.1f - 0.3f;
        for (int it = 0; it < PROBE_WARMUP + PROBE_SAMPLES; it++) {
            uint64_t t0 = hive_now_us();
            int rc = HIVE_OK;
            for (int k = 0; k < n_copies && rc == HIVE_OK; k++)
                rc = hive_matmul(pool, type, w + (uint64_t)k * mat_bytes, PROBE_ROWS, PROBE_COLS, x, 1, y);
            uint64_t dt = hive_now_us() - t0;
            if (rc != HIVE_OK) {
                n_samples = 0;
                break;
            }
            if (it >= PROBE_WARMUP) samples[n_samples++] = (double)(dt ? dt : 1);
        }
    }
    hive_machine_unlock(lock_fd);
    hive_pool_free(pool);
    free(row);
    hive_unmap_anon(w, w_bytes);
    hive_free_aligned(x);
    hive_free_aligned(y);
    if (n_samples == 0) return guess;
    double us = hive_median(samples, n_samples);
    return (double)(mat_bytes * (uint64_t)n_copies) / (us * 1e-6);
}
