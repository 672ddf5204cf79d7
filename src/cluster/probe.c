/* probe.c - a node's decode speed: weight bytes per second through
 * hive_matmul for one token, the quantity the planner divides by.
 * The matrix is Q4_0 (the common case for decode) and a few MB, larger than
 * most L2 caches so memory bandwidth shows. */
#include "hive/cluster.h"

#include <stdlib.h>

#include "hive/tensor.h"

double hive_probe_speed(int n_threads) {
    const int64_t n_rows = 2048, n_cols = 2048; /* 2048 x 2048 Q4_0 = 2.25 MiB */
    const int type = HIVE_TYPE_Q4_0;
    uint64_t row_bytes = hive_type_row_bytes(type, n_cols);
    double guess = 2e9; /* bytes/s, when the kernels cannot run */
    if (row_bytes == 0) return guess;
    uint64_t w_bytes = row_bytes * (uint64_t)n_rows;
    uint8_t *w = hive_malloc_aligned(w_bytes);
    float *x = hive_malloc_aligned((size_t)n_cols * sizeof(float));
    float *y = hive_malloc_aligned((size_t)n_rows * sizeof(float));
    float *row = malloc((size_t)n_cols * sizeof(float));
    hive_pool *pool = hive_pool_create(n_threads > 0 ? n_threads : hive_cpu_count());
    double best_us = 0;
    if (w && x && y && row && pool) {
        uint32_t s = 12345;
        for (int64_t r = 0; r < n_rows; r++) {
            for (int64_t c = 0; c < n_cols; c++) {
                s = s * 1664525u + 1013904223u;
                row[c] = (float)((int32_t)(s >> 8) - (1 << 23)) / (float)(1 << 23);
            }
            hive_quantize_row(type, row, w + (uint64_t)r * row_bytes, n_cols);
        }
        for (int64_t c = 0; c < n_cols; c++) x[c] = (float)(c % 7) * 0.1f - 0.3f;
        /* The first call warms caches and page tables; keep the best of the rest. */
        for (int it = 0; it < 8; it++) {
            uint64_t t0 = hive_now_us();
            if (hive_matmul(pool, type, w, n_rows, n_cols, x, 1, y) != HIVE_OK) {
                best_us = 0;
                break;
            }
            uint64_t dt = hive_now_us() - t0;
            if (it > 0 && (best_us == 0 || (double)dt < best_us)) best_us = (double)(dt ? dt : 1);
        }
    }
    hive_pool_free(pool);
    free(row);
    hive_free_aligned(w);
    hive_free_aligned(x);
    hive_free_aligned(y);
    return best_us > 0 ? (double)w_bytes / (best_us * 1e-6) : guess;
}
