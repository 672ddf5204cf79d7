/* test_kquant.c - the k-quant formats (src/tensor/quant_k.c, kern_x86_k.c).
 *
 * 1. Round trip: quantize -> dequantize of deterministic data stays within a
 *    per-type error budget; degenerate blocks (zeros, constants) stay finite.
 * 2. q8_k: every value within half a step, the largest magnitude maps to -127,
 *    bsums are the group sums; SIMD quantizers are bit-identical to the ref.
 * 3. vec_dot ref vs a float64 dot of the dequantized operands (tight), and
 *    every SIMD level the CPU has vs ref, also on random bit patterns.
 * 4. Real files: every matrix of synth-llama-<type>.gguf (written by
 *    llama-quantize) dequantizes close to the same matrix in
 *    synth-llama-f32.gguf. A wrong bit order gives errors near 100%. Skips
 *    (77) when the shared data is absent. */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "hive/tensor.h"
#include "tensor/kern.h" /* kern_arm_use_dotprod; includes quant_k.h */
#include "tensor/quant_k.h"

/* ---- deterministic data ---- */

static uint64_t rng_state;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(void) { return (double)(rng_next() >> 11) * 0x1p-53; } /* [0,1) */

static float rng_gauss(void) {
    double u = rng_unit(), v = rng_unit();
    return (float)(sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v));
}

static const int weight_types[] = {HIVE_TYPE_Q2_K, HIVE_TYPE_Q3_K, HIVE_TYPE_Q4_K, HIVE_TYPE_Q5_K,
                                   HIVE_TYPE_Q6_K};
#define N_WEIGHT_TYPES 5

static const char *type_name(int type) {
    static const char *names[] = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_k"};
    return type >= HIVE_TYPE_Q2_K && type <= HIVE_TYPE_Q8_K ? names[type - HIVE_TYPE_Q2_K] : "?";
}

/* Relative RMS error budget of our own quantizer on gaussian data (about
 * 1.3x what it measures), and of llama-quantize's files (checked in part 4). */
static double roundtrip_budget(int type) {
    switch (type) {
    case HIVE_TYPE_Q2_K: return 0.40;
    case HIVE_TYPE_Q3_K: return 0.22;
    case HIVE_TYPE_Q4_K: return 0.12;
    case HIVE_TYPE_Q5_K: return 0.06;
    case HIVE_TYPE_Q6_K: return 0.03;
    default: return 0;
    }
}

static double rel_rms(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* ---- 1. round trip ---- */

static void test_roundtrip(void) {
    const int64_t n = 16 * QK_K;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    void *q = malloc((size_t)(n / QK_K) * 292);
    for (int t = 0; t < N_WEIGHT_TYPES; t++) {
        int type = weight_types[t];
        rng_state = 1000 + (uint64_t)type;
        for (int64_t i = 0; i < n; i++) x[i] = 0.02f * rng_gauss();
        /* a few blocks with structure: an outlier, all positive, all negative */
        x[3 * QK_K + 17] = 0.5f;
        for (int i = 0; i < QK_K; i++) x[4 * QK_K + i] = fabsf(x[4 * QK_K + i]) + 0.01f;
        for (int i = 0; i < QK_K; i++) x[5 * QK_K + i] = -fabsf(x[5 * QK_K + i]) - 0.01f;
        CHECK(quant_k_block_bytes(type) > 0);
        quant_k_quant(type)(x, q, n);
        quant_k_dequant(type)(q, y, n);
        double e = rel_rms(y, x, n);
        printf("round trip %s: rel rms %.4f (budget %.2f)\n", type_name(type), e, roundtrip_budget(type));
        CHECKF(e < roundtrip_budget(type), "%s rel rms %.4f", type_name(type), e);

        /* degenerate blocks: zeros give zeros, a constant stays close and finite */
        for (int i = 0; i < QK_K; i++) x[i] = 0.0f;
        for (int i = QK_K; i < 2 * QK_K; i++) x[i] = -0.25f;
        quant_k_quant(type)(x, q, 2 * QK_K);
        quant_k_dequant(type)(q, y, 2 * QK_K);
        int zeros_ok = 1, const_ok = 1;
        for (int i = 0; i < QK_K; i++) zeros_ok &= y[i] == 0.0f;
        for (int i = QK_K; i < 2 * QK_K; i++) const_ok &= isfinite(y[i]) && fabsf(y[i] + 0.25f) < 0.02f;
        CHECKF(zeros_ok, "%s zero block", type_name(type));
        CHECKF(const_ok, "%s constant block", type_name(type));
    }
    free(x);
    free(y);
    free(q);
}

/* ---- 2. q8_k ---- */

static void check_q8k_block(const float *x, const block_q8_k *b, const char *what) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK_K; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    if (amax == 0) {
        int zero = b->d == 0;
        for (int j = 0; j < QK_K; j++) zero &= b->qs[j] == 0;
        CHECKF(zero, "%s: zero block", what);
        return;
    }
    /* d = -max/127 up to rounding; every value within half a step */
    CHECKF(fabs(b->d - (-max / 127.0)) <= 1e-6 * fabs(max / 127.0), "%s: d %g max %g", what, b->d, max);
    int ok = 1, sums_ok = 1, max_ok = 0;
    for (int j = 0; j < QK_K; j++) {
        ok &= fabs((double)b->d * b->qs[j] - x[j]) <= 0.5001 * fabs(b->d);
        ok &= b->qs[j] >= -127;
        if (x[j] == max && b->qs[j] == -127) max_ok = 1;
    }
    for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int l = 0; l < 16; l++) s += b->qs[16 * g + l];
        sums_ok &= s == b->bsums[g];
    }
    CHECKF(ok, "%s: values within half a step", what);
    CHECKF(max_ok, "%s: largest magnitude maps to -127", what);
    CHECKF(sums_ok, "%s: bsums", what);
}

static void test_q8k(void) {
    enum { NB = 12 };
    float *x = malloc(NB * QK_K * sizeof *x);
    block_q8_k ref[NB], simd[NB];
    rng_state = 77;
    for (int i = 0; i < NB * QK_K; i++) x[i] = rng_gauss() * (1.0f + (float)(i / QK_K));
    for (int i = 0; i < QK_K; i++) x[2 * QK_K + i] = 0.0f;                      /* all zero */
    x[3 * QK_K + 5] = 100.0f, x[3 * QK_K + 9] = -100.0f; /* tie: first wins */
    x[4 * QK_K + 5] = -100.0f, x[4 * QK_K + 9] = 100.0f;
    for (int i = 0; i < QK_K; i++) x[5 * QK_K + i] = (float)(i % 254 - 127) + 0.5f; /* iscale 1: exact halves */
    x[5 * QK_K] = -127.0f;
    for (int i = 0; i < QK_K; i++) x[6 * QK_K + i] = 3.0f;                     /* constant */
    x[7 * QK_K + 255] = 1e-30f;                                                  /* tiny */
    for (int i = 0; i < QK_K; i++) x[8 * QK_K + i] = i == 100 ? 1e20f : (float)i * 1e-3f;
    quant_row_q8_k_ref(x, ref, NB * QK_K);
    for (int b = 0; b < NB; b++) {
        char what[32];
        snprintf(what, sizeof what, "q8_k block %d", b);
        check_q8k_block(x + b * QK_K, &ref[b], what);
    }
    CHECK(ref[3].qs[5] == -127 && ref[3].qs[9] == 127 && ref[3].d < 0);
    CHECK(ref[4].qs[5] == -127 && ref[4].qs[9] == 127 && ref[4].d > 0);
    /* SIMD quantizers: bit-identical */
    for (int isa = HIVE_ISA_AVX2; isa <= HIVE_ISA_NEON; isa++) {
        quant_quant_fn fn = quant_k_quant_isa(HIVE_TYPE_Q8_K, isa);
        memset(simd, 0x5a, sizeof simd);
        fn(x, simd, NB * QK_K);
        CHECKF(!memcmp(ref, simd, sizeof ref), "q8_k quantizer at isa %d differs from ref", isa);
        int64_t n = 64 * QK_K;
        float *big = malloc(n * sizeof *big);
        block_q8_k *r1 = malloc(64 * sizeof *r1), *r2 = malloc(64 * sizeof *r2);
        rng_state = 78;
        for (int64_t i = 0; i < n; i++) big[i] = rng_gauss() * (float)(1 + i % 7);
        quant_row_q8_k_ref(big, r1, n);
        fn(big, r2, n);
        CHECKF(!memcmp(r1, r2, 64 * sizeof *r1), "q8_k quantizer at isa %d differs from ref (gauss)", isa);
        free(big);
        free(r1);
        free(r2);
    }
    CHECK(quant_k_quant(HIVE_TYPE_Q8_K) != NULL);
#if defined(__aarch64__)
    CHECK(quant_k_quant_isa(HIVE_TYPE_Q8_K, HIVE_ISA_NEON) != quant_k_quant_isa(HIVE_TYPE_Q8_K, HIVE_ISA_REF));
    CHECK(quant_k_quant(HIVE_TYPE_Q8_K) == quant_k_quant_isa(HIVE_TYPE_Q8_K, HIVE_ISA_NEON));
#endif
#if defined(__x86_64__)
    /* the SIMD levels this CPU has really hand out their own kernels */
    if (__builtin_cpu_supports("avx2")) {
        CHECK(quant_k_quant_isa(HIVE_TYPE_Q8_K, HIVE_ISA_AVX2) != quant_k_quant_isa(HIVE_TYPE_Q8_K, HIVE_ISA_REF));
        for (int t = 0; t < N_WEIGHT_TYPES; t++)
            CHECK(quant_k_vec_dot(weight_types[t], HIVE_ISA_AVX2) != quant_k_vec_dot(weight_types[t], HIVE_ISA_REF));
    }
    if (__builtin_cpu_supports("avx512bw"))
        CHECK(quant_k_vec_dot(HIVE_TYPE_Q4_K, HIVE_ISA_AVX512) != quant_k_vec_dot(HIVE_TYPE_Q4_K, HIVE_ISA_AVX2));
#endif
    CHECK(quant_k_vec_dot(HIVE_TYPE_Q8_K, HIVE_ISA_REF) == NULL);
    CHECK(quant_k_vec_dot(HIVE_TYPE_Q4_0, HIVE_ISA_REF) == NULL);
    CHECK(quant_k_block_bytes(HIVE_TYPE_F32) == 0);
    free(x);
}

/* ---- 3. dot products ---- */

/* float64 dot of the dequantized operands; *mag = sum |x_i y_i| */
static double dot_f64(int type, const void *x, const void *y, int64_t n, double *mag) {
    float *xf = malloc(n * sizeof *xf), *yf = malloc(n * sizeof *yf);
    quant_k_dequant(type)(x, xf, n);
    dequant_row_q8_k_ref(y, yf, n);
    double s = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)xf[i] * yf[i];
        m += fabs((double)xf[i] * yf[i]);
    }
    free(xf);
    free(yf);
    *mag = m;
    return s;
}

/* Fills nb weight blocks of type with random bytes, keeping the f16 scales
 * finite and small; every bit pattern of the rest is a valid block. */
static void random_blocks(int type, void *dst, int64_t nb) {
    size_t bs = quant_k_block_bytes(type);
    uint8_t *p = dst;
    for (size_t i = 0; i < (size_t)nb * bs; i++) p[i] = (uint8_t)rng_next();
    for (int64_t b = 0; b < nb; b++, p += bs) {
        uint16_t d = (uint16_t)(0x1c00 + rng_next() % 0x0800), dmin = (uint16_t)(0x1c00 + rng_next() % 0x0800);
        switch (type) {
        case HIVE_TYPE_Q2_K: memcpy(p + 80, &d, 2), memcpy(p + 82, &dmin, 2); break;
        case HIVE_TYPE_Q3_K: memcpy(p + 108, &d, 2); break;
        case HIVE_TYPE_Q4_K:
        case HIVE_TYPE_Q5_K: memcpy(p, &d, 2), memcpy(p + 2, &dmin, 2); break;
        case HIVE_TYPE_Q6_K: memcpy(p + 208, &d, 2); break;
        }
    }
}

/* Random q8_k blocks with extreme and arbitrary values (valid bsums). */
static void random_q8k(block_q8_k *y, int64_t nb, int extreme) {
    for (int64_t b = 0; b < nb; b++) {
        y[b].d = (float)(rng_unit() * 0.02 + 0.001);
        for (int j = 0; j < QK_K; j++)
            y[b].qs[j] = (int8_t)(extreme ? (rng_next() & 1 ? 127 : -128) : (int)(rng_next() % 255) - 127);
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += y[b].qs[16 * g + l];
            y[b].bsums[g] = (int16_t)s;
        }
    }
}

static void test_vec_dot(void) {
    const int64_t nmax = 40 * QK_K;
    float *xf = malloc(nmax * sizeof *xf), *yf = malloc(nmax * sizeof *yf);
    void *xq = malloc((size_t)(nmax / QK_K) * 210);
    block_q8_k *yq = malloc((size_t)(nmax / QK_K) * sizeof *yq);
    const int64_t sizes[] = {QK_K, 3 * QK_K, 40 * QK_K};
    for (int t = 0; t < N_WEIGHT_TYPES; t++) {
        int type = weight_types[t];
        quant_vec_dot_fn ref = quant_k_vec_dot(type, HIVE_ISA_REF);
        CHECK(ref != NULL);
        for (int mode = 0; mode < 3; mode++) { /* 0: quantized gauss, 1: random bits, 2: extreme y */
            for (int si = 0; si < 3; si++) {
                int64_t n = sizes[si];
                rng_state = 5000 + 100 * (uint64_t)type + 10 * (uint64_t)mode + (uint64_t)si;
                if (mode == 0) {
                    for (int64_t i = 0; i < n; i++) xf[i] = 0.05f * rng_gauss(), yf[i] = rng_gauss();
                    quant_k_quant(type)(xf, xq, n);
                    quant_row_q8_k_ref(yf, yq, n);
                } else {
                    random_blocks(type, xq, n / QK_K);
                    random_q8k(yq, n / QK_K, mode == 2);
                }
                double mag, exact = dot_f64(type, xq, yq, n, &mag);
                float s_ref = NAN;
                ref(n, &s_ref, xq, yq);
                double tol = 2e-6 * mag + 1e-30;
                CHECKF(fabs(s_ref - exact) <= tol, "%s ref mode %d n %lld: %.9g vs f64 %.9g (tol %.3g)",
                       type_name(type), mode, (long long)n, s_ref, exact, tol);
                for (int isa = HIVE_ISA_AVX2; isa <= HIVE_ISA_NEON; isa++) {
                    quant_vec_dot_fn fn = quant_k_vec_dot(type, isa);
                    float s = NAN;
                    fn(n, &s, xq, yq);
                    if (getenv("KQ_VERBOSE"))
                        printf("%s isa %d mode %d n %lld: err/mag %.3g ref %.3g\n", type_name(type), isa, mode,
                               (long long)n, fabs(s - exact) / mag, fabs(s_ref - exact) / mag);
                    CHECKF(fabs(s - exact) <= 2 * tol, "%s isa %d mode %d n %lld: %.9g vs f64 %.9g (ref %.9g)",
                           type_name(type), isa, mode, (long long)n, s, exact, s_ref);
                }
#if defined(__aarch64__)
                /* NEON, dotprod and plain: the reference's bits */
                for (int dp = kern_arm_dotprod_hw(); dp >= 0; dp--) {
                    CHECK(kern_arm_use_dotprod(dp) == dp);
                    quant_vec_dot_fn fn = quant_k_vec_dot(type, HIVE_ISA_NEON);
                    float s = NAN;
                    CHECK(fn != ref);
                    fn(n, &s, xq, yq);
                    CHECKF(!memcmp(&s, &s_ref, sizeof s), "%s neon (dotprod %d) mode %d n %lld: %.9g, ref %.9g",
                           type_name(type), dp, mode, (long long)n, s, s_ref);
                }
                kern_arm_use_dotprod(1);
#endif
            }
        }
    }
    free(xf);
    free(yf);
    free(xq);
    free(yq);
}

/* The several-token twins (continuous batching, prefill): every (row, token)
 * bit-identical to the one-token kernel of the same level, for every token
 * count, on random bits and on extreme activations (-128 / 127 everywhere). */
static void test_vec_dot_toks(void) {
    enum { NB = 3, ROWS = 3 };
    const int64_t n = NB * QK_K;
    uint8_t *xq = malloc((size_t)ROWS * NB * 210);
    block_q8_k *yq = malloc((size_t)QUANT_TOKS * NB * sizeof *yq);
    int n_twins = 0;
    for (int t = 0; t < N_WEIGHT_TYPES; t++) {
        int type = weight_types[t];
        size_t row_bytes = NB * quant_k_block_bytes(type);
        /* NEON twice where the CPU has dotprod: dotprod, then plain */
        for (int level = HIVE_ISA_AVX2; level <= HIVE_ISA_NEON + 1; level++) {
            int isa = level > HIVE_ISA_NEON ? HIVE_ISA_NEON : level;
            if (isa == HIVE_ISA_NEON && kern_arm_use_dotprod(level == isa) != (level == isa)) continue;
            quant_vec_dot_toks_fn toks = quant_k_vec_dot_toks(type, isa);
            quant_vec_dot_fn one = quant_k_vec_dot(type, isa);
            if (!toks) continue;
            n_twins++;
            for (int mode = 1; mode < 3; mode++) {
                rng_state = 9000 + 100 * (uint64_t)type + 10 * (uint64_t)isa + (uint64_t)mode;
                random_blocks(type, xq, (int64_t)ROWS * NB);
                random_q8k(yq, (int64_t)QUANT_TOKS * NB, mode == 2);
                for (int nr = 1; nr <= QUANT_TOK_ROWS && nr <= ROWS; nr++)
                    for (int nt = 1; nt <= QUANT_TOKS; nt++) {
                        float got[QUANT_TOKS * ROWS], want;
                        toks(n, got, ROWS, xq, row_bytes, nr, yq, NB * sizeof *yq, nt);
                        int bad = 0;
                        for (int k = 0; k < nt; k++)
                            for (int r = 0; r < nr; r++) {
                                one(n, &want, xq + r * row_bytes, yq + k * NB);
                                bad += memcmp(&got[k * ROWS + r], &want, sizeof want) != 0;
                            }
                        CHECKF(!bad, "%s isa %d mode %d: twin with %d rows x %d tokens: %d results differ",
                               type_name(type), isa, mode, nr, nt, bad);
                    }
            }
        }
    }
#if defined(__x86_64__)
    /* q4_k and q6_k at AVX-512 VNNI; the AVX2 level runs batches on packed
     * kernels instead (kern_x86_gemm_k_avx2.c, checked by test_matmul) */
    if (hive_isa_best() >= HIVE_ISA_AVX512 && __builtin_cpu_supports("avx512vnni")) CHECK(n_twins >= 2);
#endif
#if defined(__aarch64__)
    CHECK(n_twins >= N_WEIGHT_TYPES * (1 + kern_arm_dotprod_hw())); /* every type at each NEON build */
    kern_arm_use_dotprod(1);
#endif
    free(xq);
    free(yq);
}

/* ---- 4. real files (minimal GGUF reader: enough for these files) ---- */

struct gg_tensor {
    char name[64];
    int type, n_dims;
    int64_t ne[4];
    uint64_t offset;
};

struct gg_file {
    uint8_t *buf;
    size_t len, pos, data_off;
    int n_tensors;
    struct gg_tensor t[64];
};

static int gg_need(struct gg_file *f, uint64_t n) { return n <= f->len - f->pos; }

static int gg_u32(struct gg_file *f, uint32_t *v) {
    if (!gg_need(f, 4)) return 0;
    memcpy(v, f->buf + f->pos, 4);
    f->pos += 4;
    return 1;
}

static int gg_u64(struct gg_file *f, uint64_t *v) {
    if (!gg_need(f, 8)) return 0;
    memcpy(v, f->buf + f->pos, 8);
    f->pos += 8;
    return 1;
}

/* string: u64 length | bytes; copies up to cap-1 bytes into out (if any) */
static int gg_str(struct gg_file *f, char *out, size_t cap) {
    uint64_t n;
    if (!gg_u64(f, &n) || !gg_need(f, n)) return 0;
    if (out) {
        size_t c = n < cap - 1 ? (size_t)n : cap - 1;
        memcpy(out, f->buf + f->pos, c);
        out[c] = 0;
    }
    f->pos += n;
    return 1;
}

static int gg_skip_value(struct gg_file *f, uint32_t type, int depth) {
    static const uint8_t sizes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) return gg_str(f, NULL, 0);
    if (type == 9) {
        uint32_t et;
        uint64_t n;
        if (depth > 2 || !gg_u32(f, &et) || !gg_u64(f, &n)) return 0;
        if (et != 8 && et != 9 && et < 13) {
            if (n > (f->len - f->pos) / sizes[et]) return 0;
            f->pos += n * sizes[et];
            return 1;
        }
        for (uint64_t i = 0; i < n; i++)
            if (!gg_skip_value(f, et, depth + 1)) return 0;
        return 1;
    }
    if (type >= 13 || !gg_need(f, sizes[type])) return 0;
    f->pos += sizes[type];
    return 1;
}

/* 1 on success; the caller frees f->buf */
static int gg_open(struct gg_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->buf = check_read_file(path, &f->len);
    if (!f->buf) return 0;
    uint32_t magic, version, alignment = 32;
    uint64_t n_tensors, n_kv;
    if (!gg_u32(f, &magic) || memcmp(&magic, "GGUF", 4) || !gg_u32(f, &version) || !gg_u64(f, &n_tensors) ||
        !gg_u64(f, &n_kv) || n_tensors > 64)
        return 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        char key[64];
        uint32_t type;
        if (!gg_str(f, key, sizeof key) || !gg_u32(f, &type)) return 0;
        if (!strcmp(key, "general.alignment") && type == 4) {
            if (!gg_u32(f, &alignment) || alignment == 0) return 0;
        } else if (!gg_skip_value(f, type, 0)) {
            return 0;
        }
    }
    f->n_tensors = (int)n_tensors;
    for (int i = 0; i < f->n_tensors; i++) {
        struct gg_tensor *t = &f->t[i];
        uint32_t nd, type;
        if (!gg_str(f, t->name, sizeof t->name) || !gg_u32(f, &nd) || nd > 4) return 0;
        t->n_dims = (int)nd;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v;
            if (!gg_u64(f, &v) || v > (1u << 24)) return 0;
            t->ne[d] = (int64_t)v;
        }
        if (!gg_u32(f, &type) || !gg_u64(f, &t->offset)) return 0;
        t->type = (int)type;
    }
    f->data_off = (f->pos + alignment - 1) / alignment * alignment;
    return f->data_off <= f->len;
}

static const struct gg_tensor *gg_find(const struct gg_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

/* Bytes of a tensor, 0 if its type is not f32 / a k-quant or it overruns the file. */
static uint64_t gg_tensor_bytes(const struct gg_file *f, const struct gg_tensor *t) {
    int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    uint64_t bytes = t->type == HIVE_TYPE_F32 ? (uint64_t)n * 4
                     : t->ne[0] % QK_K == 0   ? (uint64_t)(n / QK_K) * quant_k_block_bytes(t->type)
                                              : 0;
    if (!bytes || t->offset > f->len - f->data_off || bytes > f->len - f->data_off - t->offset) return 0;
    return bytes;
}

/* Relative RMS error of llama-quantize's files against the f32 originals
 * (gaussian weights) is very stable: measured 0.293-0.299 (q2_k), 0.149-0.152
 * (q3_k), 0.070-0.072 (q4_k), 0.036 (q5_k), 0.018 (q6_k) over all matrices.
 * A wrong bit order or scale mapping gives far more (about 1.0 when random). */
static double file_budget(int type) {
    switch (type) {
    case HIVE_TYPE_Q2_K: return 0.33;
    case HIVE_TYPE_Q3_K: return 0.17;
    case HIVE_TYPE_Q4_K: return 0.08;
    case HIVE_TYPE_Q5_K: return 0.041;
    case HIVE_TYPE_Q6_K: return 0.02;
    default: return 0;
    }
}

static void test_file(const struct gg_file *f32, const char *name, int *n_checked) {
    char path[512], rel[128];
    snprintf(rel, sizeof rel, "reference/models/%s", name);
    shared_path(path, sizeof path, rel);
    struct gg_file q;
    int ok = gg_open(&q, path);
    CHECKF(ok, "cannot parse %s", path);
    const char *small = getenv("HIVE_TEST_SCALE");
    int stride = small && !strcmp(small, "small") ? 7 : 1;
    for (int i = 0; ok && i < q.n_tensors; i += stride) {
        const struct gg_tensor *t = &q.t[i];
        if (t->n_dims != 2 || !quant_k_dequant(t->type)) continue;
        const struct gg_tensor *r = gg_find(f32, t->name);
        CHECKF(r && r->type == HIVE_TYPE_F32 && r->ne[0] == t->ne[0] && r->ne[1] == t->ne[1], "%s: %s in f32 file",
               name, t->name);
        if (!r || !gg_tensor_bytes(&q, t) || !gg_tensor_bytes(f32, r)) {
            CHECKF(0, "%s: %s out of file bounds", name, t->name);
            continue;
        }
        int64_t n = t->ne[0] * t->ne[1];
        float *deq = malloc(n * sizeof *deq), *orig = malloc(n * sizeof *orig);
        memcpy(orig, f32->buf + f32->data_off + r->offset, n * sizeof *orig);
        quant_k_dequant(t->type)(q.buf + q.data_off + t->offset, deq, n);
        double e = rel_rms(deq, orig, n);
        if (getenv("KQ_VERBOSE") || !strcmp(t->name, "token_embd.weight") || !strcmp(t->name, "output.weight"))
            printf("%s %s (%s): rel rms %.4f\n", name, t->name, type_name(t->type), e);
        CHECKF(e < file_budget(t->type), "%s %s (%s): rel rms %.4f", name, t->name, type_name(t->type), e);

        /* dot products on real blocks against the f64 oracle, every level */
        int64_t row_bytes = (int64_t)(t->ne[0] / QK_K * quant_k_block_bytes(t->type));
        block_q8_k *yq = malloc(t->ne[0] / QK_K * sizeof *yq);
        rng_state = 9000 + (uint64_t)i;
        for (int64_t c = 0; c < t->ne[0]; c++) deq[c] = rng_gauss();
        quant_row_q8_k_ref(deq, yq, t->ne[0]);
        for (int64_t row = 0; row < t->ne[1]; row += 37) {
            const uint8_t *xrow = q.buf + q.data_off + t->offset + row * row_bytes;
            double mag, exact = dot_f64(t->type, xrow, yq, t->ne[0], &mag);
            for (int isa = HIVE_ISA_REF; isa <= HIVE_ISA_NEON; isa++) {
                float s = NAN;
                quant_k_vec_dot(t->type, isa)(t->ne[0], &s, xrow, yq);
                CHECKF(fabs(s - exact) <= 4e-6 * mag, "%s %s row %lld isa %d: %.9g vs %.9g", name, t->name,
                       (long long)row, isa, s, exact);
            }
        }
        free(yq);
        free(deq);
        free(orig);
        (*n_checked)++;
    }
    free(q.buf);
}

static void test_real_files(void) {
    char path[512];
    shared_path(path, sizeof path, "reference/models/synth-llama-f32.gguf");
    struct gg_file f32;
    int ok = gg_open(&f32, path);
    CHECKF(ok, "cannot parse %s", path);
    if (ok) {
        const char *files[] = {"synth-llama-q2_k.gguf", "synth-llama-q3_k.gguf", "synth-llama-q4_k.gguf",
                               "synth-llama-q5_k.gguf", "synth-llama-q6_k.gguf", "synth-llama-q4_k_m.gguf",
                               "synth-llama-q3_k_m.gguf"};
        int n_checked = 0;
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) test_file(&f32, files[i], &n_checked);
        printf("real files: %d quantized matrices checked\n", n_checked);
        CHECK(n_checked >= 30);
    }
    free(f32.buf);
}

int main(void) {
    test_roundtrip();
    test_q8k();
    test_vec_dot();
    test_vec_dot_toks();
    if (check_failures) return check_result("test_kquant"); /* a skip must not hide failures */
    test_real_files();
    return check_result("test_kquant");
}
