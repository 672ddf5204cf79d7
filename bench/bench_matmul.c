/* bench_matmul.c - weight bandwidth of hive_matmul at n_tok = 1 (decode)
 * and the cost per token of small batches (n_tok = 2..16: continuous
 * batching runs one matmul with a column per sequence).
 *
 * y (1, 5632) = x (1, 2048) @ W^T for W of type q4_0, q8_0, f16 (TinyLlama's
 * ffn_gate/ffn_up shape), 1 and 2 threads. "cold" rotates over enough copies
 * of W to overflow the last-level cache (what decode sees); "hot" reuses one
 * copy. Also reports a plain memory-read baseline. Prints one JSON object;
 * *_gbps come from the mean time per matmul, *_best_gbps from the fastest
 * single call (robust when other processes share the cores).
 *
 * With a third argument (token counts, e.g. 1,2,4,8,16) each case runs at
 * every listed n_tok and also reports us per token (us_per_tok = cold_us / n_tok).
 *
 * usage: bench_matmul [seconds_per_case=0.5] [types=q4_0,q8_0,f16] [n_toks=1] [threads=1,2] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/core.h"
#include "hive/tensor.h"

#define N_ROWS 5632
#define N_COLS 2048
#define COLD_BYTES (192u << 20) /* well past any L3 this runs on */
#define MAX_TOK 64

/* Mean and best time of one matmul (the best is what an unshared core does:
 * this machine is often busy with other work). Returns the mean in us. */
static double measure(hive_pool *pool, int type, uint8_t *w, size_t mat_bytes, int n_copies,
                      const float *x, int n_tok, float *y, double seconds, double *best_us) {
    int64_t iters = 0;
    double t0 = hive_now_ms(), t1 = t0;
    *best_us = 1e30;
    do {
        for (int c = 0; c < n_copies; c++, iters++) {
            double c0 = hive_now_ms();
            hive_matmul(pool, type, w + (size_t)c * mat_bytes, N_ROWS, N_COLS, x, n_tok, y);
            t1 = hive_now_ms();
            if ((t1 - c0) * 1000.0 < *best_us) *best_us = (t1 - c0) * 1000.0;
        }
    } while (t1 - t0 < seconds * 1000.0);
    return (t1 - t0) * 1000.0 / (double)iters;
}

/* Reads n bytes as 64-bit words: the bandwidth one core gets without compute. */
static double read_bandwidth(const uint8_t *p, size_t n, double seconds) {
    const uint64_t *q = (const uint64_t *)p;
    size_t words = n / 8;
    volatile uint64_t sink = 0;
    int64_t passes = 0;
    double t0 = hive_now_ms(), t1;
    do {
        uint64_t a = 0, b = 0, c = 0, d = 0;
        for (size_t i = 0; i + 4 <= words; i += 4) {
            a ^= q[i];
            b ^= q[i + 1];
            c ^= q[i + 2];
            d ^= q[i + 3];
        }
        sink ^= a ^ b ^ c ^ d;
        passes++;
        t1 = hive_now_ms();
    } while (t1 - t0 < seconds * 1000.0);
    (void)sink;
    return (double)n * (double)passes / ((t1 - t0) * 1e6);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0.5;
    const char *types = argc > 2 ? argv[2] : "q4_0,q8_0,f16";
    int toks[16], n_toks = 0, thr[4], n_thr = 0;
    char tl[128];
    snprintf(tl, sizeof tl, "%s", argc > 3 ? argv[3] : "1");
    for (char *save = NULL, *t = strtok_r(tl, ",", &save); t && n_toks < 16; t = strtok_r(NULL, ",", &save))
        if (atoi(t) >= 1 && atoi(t) <= MAX_TOK) toks[n_toks++] = atoi(t);
    snprintf(tl, sizeof tl, "%s", argc > 4 ? argv[4] : "1,2");
    for (char *save = NULL, *t = strtok_r(tl, ",", &save); t && n_thr < 4; t = strtok_r(NULL, ",", &save))
        if (atoi(t) >= 1 && atoi(t) <= 2) thr[n_thr++] = atoi(t);
    float *x = malloc(sizeof(float) * N_COLS * MAX_TOK), *y = malloc(sizeof(float) * N_ROWS * MAX_TOK);
    float *row = malloc(sizeof(float) * N_COLS);
    for (int i = 0; i < N_COLS * MAX_TOK; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    hive_pool *pools[2] = {hive_pool_create(1), hive_pool_create(2)};

    printf("{\"bench\": \"matmul\", \"isa\": \"%s\", \"features\": \"%s\", \"n_rows\": %d, \"n_cols\": %d",
           hive_isa_name(hive_isa_current()), hive_cpu_features(), N_ROWS, N_COLS);
    uint8_t *buf = malloc(COLD_BYTES);
    if (buf) {
        memset(buf, 1, COLD_BYTES);
        printf(", \"read_gbps_1t\": %.2f", read_bandwidth(buf, COLD_BYTES, seconds));
    }
    printf(", \"cases\": [");
    int first = 1;
    char list[256];
    snprintf(list, sizeof list, "%s", types);
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        int type = hive_type_from_name(name);
        if (type < 0 || !hive_type_is_weight(type)) continue;
        size_t mat_bytes = (size_t)hive_type_row_bytes(type, N_COLS) * N_ROWS;
        int n_copies = (int)(COLD_BYTES / mat_bytes) + 1;
        if (n_copies * mat_bytes > COLD_BYTES) n_copies = (int)(COLD_BYTES / mat_bytes);
        if (!buf || n_copies < 1) continue;
        for (int r = 0; r < N_ROWS; r++) { /* fill copy 0, replicate */
            for (int c = 0; c < N_COLS; c++) row[c] = (float)(((r + 1) * (c + 3)) % 97) / 48.0f - 1.0f;
            hive_quantize_row(type, row, buf + (size_t)r * (mat_bytes / N_ROWS), N_COLS);
        }
        for (int c = 1; c < n_copies; c++) memcpy(buf + (size_t)c * mat_bytes, buf, mat_bytes);
        for (int pi = 0; pi < n_thr; pi++)
            for (int ti = 0; ti < n_toks; ti++) {
                int p = thr[pi] - 1, nt = toks[ti];
                double cold_best, hot_best;
                double cold_us = measure(pools[p], type, buf, mat_bytes, n_copies, x, nt, y, seconds, &cold_best);
                double hot_us = measure(pools[p], type, buf, mat_bytes, 1, x, nt, y, seconds, &hot_best);
                double mb = (double)mat_bytes / 1e6;
                printf("%s\n  {\"type\": \"%s\", \"threads\": %d, \"n_tok\": %d, \"weight_mb\": %.2f, "
                       "\"cold_us\": %.1f, \"us_per_tok\": %.1f, \"best_us_per_tok\": %.1f, \"cold_gbps\": %.2f, "
                       "\"cold_best_gbps\": %.2f, \"hot_us\": %.1f, \"hot_gbps\": %.2f, \"hot_best_gbps\": %.2f}",
                       first ? "" : ",", name, p + 1, nt, mb, cold_us, cold_us / nt, cold_best / nt,
                       mb / cold_us * 1e3, mb / cold_best * 1e3, hot_us, mb / hot_us * 1e3, mb / hot_best * 1e3);
                first = 0;
            }
    }
    printf("\n]}\n");
    free(buf), free(x), free(y), free(row);
    for (int p = 0; p < 2; p++) hive_pool_free(pools[p]);
    return 0;
}
