/* test_kern_arm.c - the NEON kernels (kern_arm.c, kern_arm_body.h) against
 * the scalar reference, at both builds: dotprod (where the CPU, or qemu's
 * default cpu, has it) and plain NEON. Small on purpose: CI runs it under
 * qemu-aarch64 (scripts/cross/aarch64.sh).
 *   - every quantized dot (legacy and k-quants) gives _ref's bits, in its
 *     one-row, several-row and several-token forms, on random blocks and on
 *     extreme codes (all -128 / 127 activations);
 *   - the q8_0 / q8_1 activation quantizers give _ref's bytes, on ordinary,
 *     constant, tiny, huge and nan / inf inputs;
 *   - the f32 / f16 / bf16 dots agree with a float64 sum to float rounding.
 * Skips (77) off aarch64. */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "hive/tensor.h"
#include "tensor/kern.h"

#if defined(__aarch64__)

static uint64_t rng = 1;

static uint32_t rnd(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33);
}

static float rnd_float(void) { return (float)rnd() / 2147483648.0f - 1.0f; }

/* A random but finite f16 scale in [2^-14, 2) (random bits elsewhere). */
static uint16_t rnd_scale(void) { return (uint16_t)(0x0400 + rnd() % (0x4000 - 0x0400)) | (rnd() & 1 ? 0x8000 : 0); }

static const int quantized[] = {HIVE_TYPE_Q4_0, HIVE_TYPE_Q4_1, HIVE_TYPE_Q5_0, HIVE_TYPE_Q5_1, HIVE_TYPE_Q8_0,
                                HIVE_TYPE_Q2_K, HIVE_TYPE_Q3_K, HIVE_TYPE_Q4_K, HIVE_TYPE_Q5_K, HIVE_TYPE_Q6_K};

enum { NB = 5, ROWS = KERN_ROWS + 1 }; /* blocks per row; rows (one more than a multi-row call) */

/* Random bytes for n_blocks blocks of type, f16 scales made finite. */
static void random_weights(int type, uint8_t *w, int64_t n_blocks) {
    size_t bb = hive_type_block_bytes(type);
    for (size_t i = 0; i < bb * (size_t)n_blocks; i++) w[i] = (uint8_t)rnd();
    for (int64_t b = 0; b < n_blocks; b++) {
        uint8_t *p = w + (size_t)b * bb;
        uint16_t d = rnd_scale(), m = rnd_scale();
        switch (type) { /* offsets of the f16 fields: kern.h, quant_k.h */
        case HIVE_TYPE_Q4_1: case HIVE_TYPE_Q5_1: memcpy(p + 2, &m, 2); /* fall through */
        case HIVE_TYPE_Q4_0: case HIVE_TYPE_Q5_0: case HIVE_TYPE_Q8_0: memcpy(p, &d, 2); break;
        case HIVE_TYPE_Q2_K: memcpy(p + 80, &d, 2), memcpy(p + 82, &m, 2); break;
        case HIVE_TYPE_Q3_K: memcpy(p + 108, &d, 2); break;
        case HIVE_TYPE_Q4_K: case HIVE_TYPE_Q5_K: memcpy(p, &d, 2), memcpy(p + 2, &m, 2); break;
        default: memcpy(p + 208, &d, 2); break; /* q6_k */
        }
    }
}

/* Activations of the type's dot type for n_tok tokens: quantized random
 * floats (mode 0) or every code -128 / 127 with random scales (mode 1). */
static void random_acts(int dot_type, uint8_t *a, size_t row_bytes, int64_t n, int n_tok, int mode) {
    float *x = malloc((size_t)n * sizeof *x);
    CHECK(x);
    for (int t = 0; t < n_tok; t++) {
        uint8_t *row = a + (size_t)t * row_bytes;
        for (int64_t i = 0; i < n; i++) x[i] = rnd_float() * (float)(1 + i % 7);
        hive_quantize_row(dot_type, x, row, n);
        if (mode == 0) continue;
        if (dot_type == HIVE_TYPE_Q8_K) {
            block_q8_k *b = (block_q8_k *)row;
            for (int64_t k = 0; k < n / QK_K; k++) {
                for (int j = 0; j < QK_K; j++) b[k].qs[j] = rnd() & 1 ? 127 : -128;
                for (int g = 0; g < 16; g++) {
                    int s = 0;
                    for (int l = 0; l < 16; l++) s += b[k].qs[16 * g + l];
                    b[k].bsums[g] = (int16_t)s;
                }
            }
        } else { /* q8_0 / q8_1: qs at offset 2 / 4 */
            size_t bb = hive_type_block_bytes(dot_type), off = dot_type == HIVE_TYPE_Q8_1 ? 4 : 2;
            for (int64_t k = 0; k < n / 32; k++)
                for (int j = 0; j < 32; j++) row[(size_t)k * bb + off + (size_t)j] = rnd() & 1 ? 127 : 0x80;
        }
    }
    free(x);
}

static int same(float a, float b) { return !memcmp(&a, &b, sizeof a); }

/* Every form of type's NEON dot at the dotprod state dp against _ref. */
static void check_dots(int type, int dp) {
    const char *tn = hive_type_name(type);
    int dot_type = tensor_dot_type(type);
    int64_t n = NB * hive_type_block_size(type);
    size_t wrb = (size_t)hive_type_row_bytes(type, n), arb = (size_t)hive_type_row_bytes(dot_type, n);
    uint8_t *w = malloc(wrb * ROWS), *a = malloc(arb * QUANT_TOKS);
    CHECK(w && a);
    quant_vec_dot_fn ref = tensor_vec_dot(type, HIVE_ISA_REF), one = tensor_vec_dot(type, HIVE_ISA_NEON);
    kern_vec_dot_rows_fn rows = tensor_vec_dot_rows(type, HIVE_ISA_NEON);
    quant_vec_dot_toks_fn toks = tensor_vec_dot_toks(type, HIVE_ISA_NEON);
    CHECKF(one && one != ref && toks, "%s (dotprod %d): NEON kernels missing", tn, dp);
    CHECKF(!!rows == (hive_type_block_size(type) == 32), "%s: multi-row kernel for the legacy types only", tn);
    if (!one || one == ref || !toks) goto out;
    for (int mode = 0; mode < 2; mode++) {
        random_weights(type, w, (int64_t)ROWS * NB);
        random_acts(dot_type, a, arb, n, QUANT_TOKS, mode);
        float want[QUANT_TOKS][ROWS];
        for (int t = 0; t < QUANT_TOKS; t++)
            for (int r = 0; r < ROWS; r++) ref(n, &want[t][r], w + r * wrb, a + t * arb);
        int bad = 0;
        for (int t = 0; t < QUANT_TOKS; t++)
            for (int r = 0; r < ROWS; r++) {
                float got = NAN;
                one(n, &got, w + r * wrb, a + t * arb);
                bad += !same(got, want[t][r]);
            }
        CHECKF(!bad, "%s (dotprod %d) mode %d: %d one-row results differ from ref", tn, dp, mode, bad);
        for (int nr = 1; rows && nr <= KERN_ROWS; nr++) {
            float got[KERN_ROWS];
            rows(n, got, w + wrb, wrb, a, nr);
            for (int r = 0; r < nr; r++)
                CHECKF(same(got[r], want[0][r + 1]), "%s (dotprod %d) mode %d: rows kernel nr %d row %d", tn, dp,
                       mode, nr, r);
        }
        for (int nt = 1; nt <= QUANT_TOKS; nt++) {
            float got[QUANT_TOKS * 2];
            toks(n, got, 2, w + wrb, wrb, 1, a, arb, nt);
            for (int t = 0; t < nt; t++)
                CHECKF(same(got[2 * t], want[t][1]), "%s (dotprod %d) mode %d: toks kernel nt %d token %d", tn, dp,
                       mode, nt, t);
        }
    }
out:
    free(w), free(a);
}

static void check_quantizers(void) {
    enum { N = 32 * 8 };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = rnd_float() * 3.0f;
    for (int i = 0; i < 32; i++) x[32 + i] = 2.5f;                /* constant block */
    for (int i = 0; i < 32; i++) x[64 + i] = 0.0f;                /* zero block */
    for (int i = 0; i < 32; i++) x[96 + i] = (float)i * 1e-40f;   /* subnormal */
    x[128] = 1e30f;                                               /* huge next to small */
    x[160 + 3] = NAN, x[160 + 7] = -2.0f;                         /* nan is ignored by amax */
    x[192 + 1] = INFINITY;                                        /* inf: scale 0, codes 0 */
    for (int i = 0; i < 32; i += 2) x[224 + i] = 127.0f / 254.0f * (float)(i - 16); /* ties */
    for (int k = 0; k < 2; k++) {
        int type = k ? HIVE_TYPE_Q8_1 : HIVE_TYPE_Q8_0;
        quant_quant_fn neon = tensor_quant(type, HIVE_ISA_NEON), ref = tensor_quant(type, HIVE_ISA_REF);
        CHECK(neon && neon != ref);
        uint8_t got[8 * 36], want[8 * 36];
        memset(got, 0x5a, sizeof got), memset(want, 0xa5, sizeof want);
        size_t bytes = (size_t)hive_type_row_bytes(type, N);
        neon(x, got, N);
        ref(x, want, N);
        CHECKF(!memcmp(got, want, bytes), "%s NEON quantizer differs from ref", hive_type_name(type));
    }
}

static void check_float_dots(void) {
    enum { N = 16 * 9 + 7 }; /* a vector body and a tail */
    static const int types[] = {HIVE_TYPE_F32, HIVE_TYPE_F16, HIVE_TYPE_BF16};
    float xf[N], y[N];
    uint16_t xh[N];
    for (int k = 0; k < 3; k++) {
        int type = types[k];
        for (int i = 0; i < N; i++) xf[i] = rnd_float(), y[i] = rnd_float();
        if (type != HIVE_TYPE_F32) {
            hive_quantize_row(type, xf, xh, N);
            hive_dequantize_row(type, xh, xf, N);
        }
        double exact = 0, mag = 0;
        for (int i = 0; i < N; i++) exact += (double)xf[i] * y[i], mag += fabs((double)xf[i] * y[i]);
        quant_vec_dot_fn neon = tensor_vec_dot(type, HIVE_ISA_NEON);
        CHECK(neon && neon != tensor_vec_dot(type, HIVE_ISA_REF));
        float s = NAN;
        neon(N, &s, type == HIVE_TYPE_F32 ? (const void *)xf : (const void *)xh, y);
        CHECKF(fabs(s - exact) <= 1e-6 * mag, "%s NEON dot %.9g vs f64 %.9g", hive_type_name(type), s, exact);
    }
}

int main(void) {
    int hw = kern_arm_dotprod_hw();
    printf("cpu features: %s\n", hive_cpu_features());
    if (!hw) printf("note: no dotprod on this CPU: plain NEON only\n");
    for (int dp = hw; dp >= 0; dp--) {
        CHECK(kern_arm_use_dotprod(dp) == dp);
        rng = 100 + (uint64_t)dp;
        for (size_t i = 0; i < sizeof quantized / sizeof quantized[0]; i++) check_dots(quantized[i], dp);
    }
    kern_arm_use_dotprod(hw);
    check_quantizers();
    check_float_dots();
    return check_result("test_kern_arm");
}

#else

int main(void) {
    printf("test_kern_arm: not an aarch64 build; skipped\n");
    return 77;
}

#endif
