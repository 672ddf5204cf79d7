/* test_matmul.c - hive_matmul for every weight type and every ISA level this
 * CPU supports, against a float64 product of the dequantized weights and the
 * dequantized (quantized) activations. The distributed invariant: thread
 * counts 1..3, a batch of N_TOK tokens, every smaller batch (n_tok = 1..20,
 * each starting at another token so that its neighbours change; then the
 * kernel thresholds' neighbours 31..33) and one token at a time must all
 * give identical bytes: a token's result never depends on what else is in
 * the call (continuous batching decodes many sequences in one matmul).
 * On aarch64 the NEON level runs with dotprod (where the CPU, or qemu's
 * default cpu, has it) and again with plain NEON; its quantized dots must
 * also give the reference's bits. */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "hive/tensor.h"
#include "tensor/kern.h" /* tensor_quant / tensor_dot_type: what the matmul feeds its kernels */

static const int weight_types[] = {
    HIVE_TYPE_F32,  HIVE_TYPE_F16,  HIVE_TYPE_BF16, HIVE_TYPE_Q4_0, HIVE_TYPE_Q4_1,
    HIVE_TYPE_Q5_0, HIVE_TYPE_Q5_1, HIVE_TYPE_Q8_0, HIVE_TYPE_Q2_K, HIVE_TYPE_Q3_K,
    HIVE_TYPE_Q4_K, HIVE_TYPE_Q5_K, HIVE_TYPE_Q6_K,
};

/* past every kernel threshold (matmul.c: 2, 32), not a multiple of any token block (3, 8, 16) */
enum { N_TOK = 37, N_SMALL = 20 };

static float test_value(uint32_t i, uint32_t salt) {
    uint32_t h = (i + 1) * 2654435761u ^ salt * 40503u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return ((float)(h & 0xffff) / 32768.0f - 1.0f) + 0.3f * cosf((float)i * 0.1f);
}

struct shape {
    int64_t n_rows, n_cols;
};

/* Runs one (type, isa, shape) case. */
static void check_case(int wtype, int isa, struct shape sh, hive_pool **pools) {
    int64_t R = sh.n_rows, C = sh.n_cols;
    const char *tn = hive_type_name(wtype);
    uint64_t wrb = hive_type_row_bytes(wtype, C);
    int dot_type = tensor_dot_type(wtype);
    CHECK(wrb > 0 && dot_type >= 0);
    uint8_t *w = malloc((size_t)(wrb * (uint64_t)R));
    float *wf = malloc(sizeof(float) * (size_t)(R * C));
    float *x = malloc(sizeof(float) * (size_t)(N_TOK * C));
    float *xq = malloc(sizeof(float) * (size_t)(N_TOK * C));
    float *y[3];
    for (int i = 0; i < 3; i++) y[i] = malloc(sizeof(float) * (size_t)(N_TOK * R));
    uint64_t arb = dot_type == HIVE_TYPE_F32 ? (uint64_t)C * 4 : hive_type_row_bytes(dot_type, C);
    uint8_t *aq = malloc((size_t)arb), *aq_ref = malloc((size_t)arb);
    double *s_err = calloc((size_t)N_TOK, sizeof(double)); /* q8_1 s rounding budget per token */

    for (int64_t r = 0; r < R; r++) {
        float row[4096];
        for (int64_t c = 0; c < C; c++) row[c] = test_value((uint32_t)(r * C + c), 7u + (uint32_t)wtype);
        hive_quantize_row(wtype, row, w + r * wrb, C);
        hive_dequantize_row(wtype, w + r * wrb, wf + r * C, C);
    }
    for (int64_t i = 0; i < N_TOK * C; i++) x[i] = 2.0f * test_value((uint32_t)i, 99u);

    /* the activations exactly as the kernels see them */
    quant_quant_fn q = dot_type == HIVE_TYPE_F32 ? NULL : tensor_quant(dot_type, isa);
    for (int t = 0; t < N_TOK; t++) {
        if (!q) {
            memcpy(xq + t * C, x + t * C, sizeof(float) * (size_t)C);
            continue;
        }
        q(x + t * C, aq, C);
        hive_quantize_row(dot_type, x + t * C, aq_ref, C);
        CHECKF(!memcmp(aq, aq_ref, (size_t)arb), "%s/%s: activation quantizer differs from ref", tn,
               hive_isa_name(isa));
        hive_dequantize_row(dot_type, aq, xq + t * C, C);
        if (dot_type == HIVE_TYPE_Q8_1) { /* s = f16(d*sum q): one f16 rounding per block */
            for (int64_t b = 0; b < C / 32; b++) {
                double bs = 0;
                for (int j = 0; j < 32; j++) bs += xq[t * C + b * 32 + j];
                s_err[t] += fabs(bs) * ldexp(1, -10) * 4.0; /* times max |m| (< 4 here) */
            }
        }
    }

    int rc = hive_matmul(pools[0], wtype, w, R, C, x, N_TOK, y[0]);
    CHECKF(rc == HIVE_OK, "%s: matmul rc %d", tn, rc);
    int bad = 0;
    double worst = 0;
    for (int t = 0; t < N_TOK; t++) {
        for (int64_t r = 0; r < R; r++) {
            double ref = 0, mag = 0;
            for (int64_t c = 0; c < C; c++) {
                ref += (double)wf[r * C + c] * xq[t * C + c];
                mag += fabs((double)wf[r * C + c] * xq[t * C + c]);
            }
            double err = fabs(y[0][t * R + r] - ref), tol = 2e-5 * mag + s_err[t] + 1e-6;
            if (err > tol) bad++;
            if (err / tol > worst) worst = err / tol;
        }
    }
    CHECKF(bad == 0, "%s/%s %lldx%lld: %d outputs off the float64 reference (worst %.2f x tol)", tn,
           hive_isa_name(isa), (long long)R, (long long)C, bad, worst);

    /* thread counts 2 and 3: same bytes */
    for (int p = 1; p < 3; p++) {
        CHECK(hive_matmul(pools[p], wtype, w, R, C, x, N_TOK, y[p]) == HIVE_OK);
        CHECKF(!memcmp(y[0], y[p], sizeof(float) * (size_t)(N_TOK * R)),
               "%s/%s: %d threads differ from 1", tn, hive_isa_name(isa), p + 1);
    }
    /* one token at a time: same bytes as the batch */
    float *alone = malloc(sizeof(float) * (size_t)(N_TOK * R));
    CHECK(alone);
    for (int t = 0; t < N_TOK; t++) {
        CHECK(hive_matmul(pools[t % 3], wtype, w, R, C, x + t * C, 1, alone + t * R) == HIVE_OK);
        CHECKF(!memcmp(alone + t * R, y[0] + t * R, sizeof(float) * (size_t)R), "%s/%s: token %d alone differs",
               tn, hive_isa_name(isa), t);
    }
    /* every batch of 1..N_SMALL tokens (and around the kernel thresholds),
     * each starting at a different token: every (row, token) has the bytes
     * of that token alone */
    int sizes[N_SMALL + 3];
    for (int i = 0; i < N_SMALL; i++) sizes[i] = i + 1;
    sizes[N_SMALL] = 31, sizes[N_SMALL + 1] = 32, sizes[N_SMALL + 2] = 33;
    for (int i = 0; i < N_SMALL + 3; i++) {
        int nt = sizes[i], off = (nt * 5) % (N_TOK - nt + 1);
        CHECK(hive_matmul(pools[nt % 3], wtype, w, R, C, x + off * C, nt, y[1]) == HIVE_OK);
        int64_t bad_r = -1, bad_t = -1;
        for (int64_t e = 0; e < nt * R && bad_r < 0; e++)
            if (memcmp(&y[1][e], &alone[off * R + e], sizeof(float))) bad_r = e % R, bad_t = e / R;
        CHECKF(bad_r < 0, "%s/%s %lldx%lld: batch of %d (from token %d): row %lld token %lld differs from alone", tn,
               hive_isa_name(isa), (long long)R, (long long)C, nt, off, (long long)bad_r, (long long)bad_t);
    }
    free(alone);
    /* the multi-row kernel gives each row the one-row kernel's bits */
    kern_vec_dot_rows_fn rows = tensor_vec_dot_rows(wtype, isa);
    quant_vec_dot_fn one = tensor_vec_dot(wtype, isa);
    const void *a0 = q ? (const void *)aq : (const void *)x; /* aq holds token N_TOK-1 */
    if (q) q(x + (N_TOK - 1) * C, aq, C);
    else a0 = x + (N_TOK - 1) * C;
    /* NEON's quantized dots give the reference's bits (kern_arm_body.h) */
    quant_vec_dot_fn ref_dot = tensor_vec_dot(wtype, HIVE_ISA_REF);
    if (isa == HIVE_ISA_NEON && q) {
        CHECKF(one != ref_dot, "%s/neon: no NEON kernel", tn);
        for (int64_t r = 0; r < R; r++) {
            float got, want;
            one(C, &got, w + (uint64_t)r * wrb, a0);
            ref_dot(C, &want, w + (uint64_t)r * wrb, a0);
            CHECKF(!memcmp(&got, &want, sizeof got), "%s/neon %lldx%lld: row %lld: %.9g, ref %.9g", tn, (long long)R,
                   (long long)C, (long long)r, got, want);
        }
    }
    for (int nr = 1; rows && nr <= KERN_ROWS && nr <= R; nr++) {
        float got[KERN_ROWS], want;
        rows(C, got, w + wrb, wrb, a0, nr);
        for (int r = 0; r < nr; r++) {
            one(C, &want, w + (uint64_t)(r + 1) * wrb, a0);
            CHECKF(!memcmp(&got[r], &want, sizeof want), "%s/%s: rows kernel (nr %d) row %d differs", tn,
                   hive_isa_name(isa), nr, r);
        }
    }
    /* the several-token kernel (k-quant prefill) gives every (row, token) the one-token kernel's bits */
    quant_vec_dot_toks_fn toks = tensor_vec_dot_toks(wtype, isa);
    if (toks && q) {
        uint8_t *acts = malloc((size_t)(arb * QUANT_TOKS));
        CHECK(acts);
        float got[QUANT_TOK_ROWS * QUANT_TOKS], want;
        for (int t = 0; t < QUANT_TOKS; t++) q(x + t * C, acts + (uint64_t)t * arb, C);
        for (int nt = 1; nt <= QUANT_TOKS; nt++)
            for (int nr = 1; nr <= QUANT_TOK_ROWS && nr <= R; nr++) {
                toks(C, got, QUANT_TOK_ROWS, w, wrb, nr, acts, arb, nt);
                for (int t = 0; t < nt; t++)
                    for (int r = 0; r < nr; r++) {
                        one(C, &want, w + (uint64_t)r * wrb, acts + (uint64_t)t * arb);
                        CHECKF(!memcmp(&got[t * QUANT_TOK_ROWS + r], &want, sizeof want),
                               "%s/%s: tokens kernel (nr %d nt %d) row %d token %d differs", tn, hive_isa_name(isa),
                               nr, nt, r, t);
                    }
            }
        free(acts);
    }
    free(w), free(wf), free(x), free(xq), free(aq), free(aq_ref), free(s_err);
    for (int i = 0; i < 3; i++) free(y[i]);
}

/* A batch longer than the packed kernels' token pass (64 at AVX2) and the
 * same tokens one at a time give the same bytes, on every thread count, for
 * rows of n_blocks blocks (33 super-blocks cross the AVX2 k-quant decode's
 * 32-block chunks). */
static void check_long_batch(int wtype, int isa, hive_pool **pools, int n_blocks) {
    enum { BIG = 70, ROWS = 13 };
    int64_t C = n_blocks * (hive_type_block_size(wtype) < 32 ? 32 : hive_type_block_size(wtype));
    uint64_t wrb = hive_type_row_bytes(wtype, C);
    uint8_t *w = malloc((size_t)(wrb * ROWS));
    float *x = malloc(sizeof(float) * (size_t)(BIG * C)), *row = malloc(sizeof(float) * (size_t)C);
    float *y = malloc(sizeof(float) * BIG * ROWS), *alone = malloc(sizeof(float) * BIG * ROWS);
    CHECK(w && x && row && y && alone);
    for (int r = 0; r < ROWS; r++) {
        for (int64_t c = 0; c < C; c++) row[c] = test_value((uint32_t)(r * C + c), 11u + (uint32_t)wtype);
        hive_quantize_row(wtype, row, w + r * wrb, C);
    }
    for (int64_t i = 0; i < BIG * C; i++) x[i] = test_value((uint32_t)i, 5u);
    for (int t = 0; t < BIG; t++) CHECK(hive_matmul(pools[0], wtype, w, ROWS, C, x + t * C, 1, alone + t * ROWS) == HIVE_OK);
    for (int p = 0; p < 3; p++) {
        CHECK(hive_matmul(pools[p], wtype, w, ROWS, C, x, BIG, y) == HIVE_OK);
        CHECKF(!memcmp(y, alone, sizeof(float) * BIG * ROWS),
               "%s/%s: batch of %d on %d threads differs from alone (%d blocks)", hive_type_name(wtype),
               hive_isa_name(isa), BIG, p + 1, n_blocks);
    }
    free(w), free(x), free(row), free(y), free(alone);
}

/* hive_matmul_many gives each part the bytes of its own hive_matmul call:
 * parts sharing a prepared x (q4_k with q6_k, q4_0 with q8_0), parts that do
 * not, parts without a packed kernel (f16, q5_k at AVX2; every type at the
 * reference level; k-quants at AVX-512 VNNI), only such parts, and a mix of
 * both kinds, for 1, 3 and 70 tokens on 1-3 threads. A bad part fails the
 * call before any y is written. */
static void check_many(int isa, hive_pool **pools) {
    enum { C = 512, MAX_T = 70 };
    static const int sets[][3] = {
        {HIVE_TYPE_Q4_K, HIVE_TYPE_Q4_K, HIVE_TYPE_Q6_K}, {HIVE_TYPE_Q4_0, HIVE_TYPE_Q8_0, HIVE_TYPE_Q4_0},
        {HIVE_TYPE_Q4_0, HIVE_TYPE_Q6_K, HIVE_TYPE_Q8_0}, {HIVE_TYPE_Q4_0, HIVE_TYPE_F16, HIVE_TYPE_Q5_K},
        {HIVE_TYPE_Q5_K, HIVE_TYPE_F16, HIVE_TYPE_Q5_K},
    };
    static const int64_t rows[3] = {29, 8, 45};
    static const int toks[] = {1, 3, MAX_T};
    float *x = malloc(sizeof(float) * C * MAX_T), *wf = malloc(sizeof(float) * C);
    uint8_t *w[3];
    float *y[3], *alone[3];
    CHECK(x && wf);
    for (int64_t i = 0; i < (int64_t)C * MAX_T; i++) x[i] = test_value((uint32_t)i, 17u);
    for (int p = 0; p < 3; p++) {
        w[p] = malloc(hive_type_row_bytes(HIVE_TYPE_F16, C) * (size_t)rows[p]); /* the widest type here */
        y[p] = malloc(sizeof(float) * (size_t)(rows[p] * MAX_T));
        alone[p] = malloc(sizeof(float) * (size_t)(rows[p] * MAX_T));
        CHECK(w[p] && y[p] && alone[p]);
    }
    for (size_t si = 0; si < sizeof sets / sizeof sets[0]; si++) {
        hive_matmul_part parts[3];
        for (int p = 0; p < 3; p++) {
            int wt = sets[si][p];
            uint64_t rb = hive_type_row_bytes(wt, C);
            for (int64_t r = 0; r < rows[p]; r++) {
                for (int c = 0; c < C; c++) wf[c] = test_value((uint32_t)(r * C + c), 23u + (uint32_t)(p + 3 * si));
                hive_quantize_row(wt, wf, w[p] + r * rb, C);
            }
            parts[p] = (hive_matmul_part){.wtype = wt, .w = w[p], .n_rows = rows[p], .y = y[p]};
        }
        for (size_t ti = 0; ti < sizeof toks / sizeof toks[0]; ti++) {
            int nt = toks[ti];
            for (int p = 0; p < 3; p++)
                CHECK(hive_matmul(pools[0], sets[si][p], w[p], rows[p], C, x, nt, alone[p]) == HIVE_OK);
            for (int th = 0; th < 3; th++) {
                for (int p = 0; p < 3; p++) memset(y[p], 0xff, sizeof(float) * (size_t)(rows[p] * nt));
                CHECK(hive_matmul_many(pools[th], parts, 3, C, x, nt) == HIVE_OK);
                for (int p = 0; p < 3; p++)
                    CHECKF(!memcmp(y[p], alone[p], sizeof(float) * (size_t)(rows[p] * nt)),
                           "%s/%s: part %d of a many-matmul (%d tokens, %d threads) differs from alone",
                           hive_type_name(sets[si][p]), hive_isa_name(isa), p, nt, th + 1);
            }
        }
        /* a part with a bad row count: nothing computed */
        memset(y[0], 0xff, sizeof(float) * (size_t)rows[0]);
        parts[2].n_rows = -1;
        CHECK(hive_matmul_many(pools[1], parts, 3, C, x, 1) == HIVE_ERR_INVAL);
        CHECK(((const uint32_t *)y[0])[0] == 0xffffffffu);
    }
    hive_matmul_part one = {.wtype = HIVE_TYPE_Q4_0, .w = w[0], .n_rows = 1, .y = y[0]};
    CHECK(hive_matmul_many(pools[1], &one, 1, 48, x, 1) == HIVE_ERR_INVAL); /* 48: not a block multiple */
    CHECK(hive_matmul_many(pools[1], &one, HIVE_MATMUL_MAX_PARTS + 1, C, x, 1) == HIVE_ERR_INVAL);
    CHECK(hive_matmul_many(pools[1], &one, 0, C, x, 1) == HIVE_OK);
    for (int p = 0; p < 3; p++) free(w[p]), free(y[p]), free(alone[p]);
    free(x), free(wf);
}

static void check_errors(hive_pool *pool) {
    float x[64] = {0}, y[4];
    uint8_t w[4 * 36] = {0};
    CHECK(hive_matmul(pool, HIVE_TYPE_Q4_0, w, 2, 48, x, 1, y) == HIVE_ERR_INVAL);
    CHECK(hive_matmul(pool, 4, w, 2, 32, x, 1, y) == HIVE_ERR_UNSUPPORTED);
    CHECK(hive_matmul(pool, HIVE_TYPE_Q8_1, w, 2, 32, x, 1, y) == HIVE_ERR_UNSUPPORTED);
    CHECK(hive_matmul(pool, HIVE_TYPE_Q8_0, w, -1, 32, x, 1, y) == HIVE_ERR_INVAL);
    CHECK(hive_matmul(pool, HIVE_TYPE_Q8_0, w, 2, 32, x, 0, y) == HIVE_OK);
}

int main(void) {
    const char *scale = getenv("HIVE_TEST_SCALE");
    int small = scale && !strcmp(scale, "small");
    /* HIVE_TEST_ISA=neon: that level only (a quicker run under qemu) */
    const char *only_isa = getenv("HIVE_TEST_ISA");
    hive_pool *pools[3] = {hive_pool_create(1), hive_pool_create(2), hive_pool_create(3)};
    CHECK(pools[0] && pools[1] && pools[2]);
    check_errors(pools[1]);

    int best = hive_isa_best();
    /* NEON runs twice where the CPU has dotprod: dotprod, then plain NEON */
    for (int level = HIVE_ISA_REF; level <= HIVE_ISA_NEON + 1; level++) {
        int isa = level > HIVE_ISA_NEON ? HIVE_ISA_NEON : level;
        if (hive_isa_set(isa) != isa) continue;
        if (only_isa && *only_isa && strcmp(only_isa, hive_isa_name(isa))) continue;
        if (isa == HIVE_ISA_NEON && kern_arm_use_dotprod(level == HIVE_ISA_NEON) != (level == HIVE_ISA_NEON)) continue;
        printf("isa %s%s\n", hive_isa_name(isa), isa != HIVE_ISA_NEON ? "" : level == isa ? " (dotprod)" : " (plain)");
        for (size_t i = 0; i < sizeof weight_types / sizeof weight_types[0]; i++) {
            int t = weight_types[i];
            if (!hive_type_is_weight(t)) {
                printf("note: %d not supported as a weight in this build; skipped\n", t);
                continue;
            }
            int64_t bs = hive_type_block_size(t) < 32 ? 32 : hive_type_block_size(t);
            /* odd row counts; columns a block multiple but not of 64/128/256 */
            /* the last shape has enough rows for threads to take several chunks */
            /* {23, bs * 32}: whole 16-block groups only (the packed kernels' unit) */
            struct shape shapes[] = {{37, bs * 11}, {5, bs * 1}, {19, bs * (small ? 3 : 33)}, {301, bs * 17},
                                     {23, bs * 32}};
            if (bs == 256)
                shapes[0].n_cols = bs * 3, shapes[2].n_cols = bs * (small ? 2 : 5), shapes[3].n_cols = bs * 2,
                shapes[4].n_cols = bs * 4;
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) check_case(t, isa, shapes[s], pools);
            check_long_batch(t, isa, pools, 2);
            if (bs == 256) check_long_batch(t, isa, pools, 33);
        }
        check_many(isa, pools);
    }
    hive_isa_set(best);
    kern_arm_use_dotprod(1);
    for (int i = 0; i < 3; i++) hive_pool_free(pools[i]);
    return check_result("test_matmul");
}
