/* test_tensor.c - type table, f16/bf16 conversion, block layouts built byte
 * by byte from the GGUF spec, quantize/dequantize error budgets, rows. */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "hive/tensor.h"
#include "tensor/kern.h" /* the dispatcher's choices (NEON section) */

/* ---- f16 / bf16 ---- */

/* Value of an f16 from its fields (independent of the library). */
static double f16_value(uint16_t h) {
    int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v = exp == 0 ? ldexp(mant, -24) : exp == 31 ? (mant ? NAN : INFINITY)
                                                       : ldexp(1024 + mant, exp - 25);
    return sign ? -v : v;
}

/* 1 if h is the round-to-nearest-even f16 of the finite float f. */
static int is_nearest_f16(float f, uint16_t h) {
    if (isnan(f16_value(h))) return 0;
    if (fabs((double)f) >= 65520.0) return (h & 0x7fff) == 0x7c00 && (h >> 15) == (f < 0);
    double v = f16_value(h), err = fabs(v - f);
    if ((h & 0x7fff) == 0x7c00) return 0;
    /* neighbours in magnitude: h-1 and h+1 (same sign); 0 has -0 as neighbour */
    for (int delta = -1; delta <= 1; delta += 2) {
        int m = (h & 0x7fff) + delta;
        if (m < 0 || m > 0x7bff) continue;
        double nv = f16_value((uint16_t)((h & 0x8000) | m));
        double nerr = fabs(nv - f);
        if (nerr < err) return 0;
        if (nerr == err && (h & 1)) return 0; /* tie must go to the even mantissa */
    }
    return 1;
}

static void test_f16(void) {
    CHECK(hive_f32_to_f16(0.0f) == 0x0000);
    CHECK(hive_f32_to_f16(-0.0f) == 0x8000);
    CHECK(hive_f32_to_f16(1.0f) == 0x3c00);
    CHECK(hive_f32_to_f16(-2.0f) == 0xc000);
    CHECK(hive_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(hive_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(hive_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(hive_f32_to_f16(1e10f) == 0x7c00);
    CHECK(hive_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK(hive_f32_to_f16(INFINITY) == 0x7c00);
    CHECK(isnan(hive_f16_to_f32(hive_f32_to_f16(NAN))));
    CHECK(hive_f32_to_f16(ldexpf(1, -24)) == 0x0001);        /* smallest subnormal */
    CHECK(hive_f32_to_f16(ldexpf(1, -25)) == 0x0000);        /* tie -> even (0) */
    CHECK(hive_f32_to_f16(ldexpf(3, -25)) == 0x0002);        /* tie 1.5 -> 2 */
    CHECK(hive_f32_to_f16(ldexpf(1023, -24)) == 0x03ff);     /* largest subnormal */
    CHECK(hive_f32_to_f16(ldexpf(1, -14)) == 0x0400);        /* smallest normal */
    CHECK(hive_f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00); /* tie -> even */
    CHECK(hive_f32_to_f16(1.0f + ldexpf(3, -11)) == 0x3c02); /* tie -> even (up) */
    CHECK(hive_f32_to_f16(ldexpf(1, -30)) == 0x0000);
    CHECK(hive_f32_to_f16(1e-45f) == 0x0000);                /* f32 subnormal */

    /* every f16 decodes to its field value and re-encodes to itself */
    int bad_decode = 0, bad_round_trip = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        double want = f16_value((uint16_t)h);
        float got = hive_f16_to_f32((uint16_t)h);
        if (isnan(want)) {
            bad_decode += !isnan(got);
            bad_round_trip += !isnan(hive_f16_to_f32(hive_f32_to_f16(got)));
            continue;
        }
        bad_decode += (double)got != want || (signbit(got) != 0) != (int)(h >> 15);
        bad_round_trip += hive_f32_to_f16(got) != h;
    }
    CHECKF(bad_decode == 0, "%d f16 values decode wrong", bad_decode);
    CHECKF(bad_round_trip == 0, "%d f16 values do not round-trip", bad_round_trip);

    /* random floats over the whole f16 range round to the nearest f16 */
    uint32_t seed = 12345;
    int bad_nearest = 0;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1664525u + 1013904223u;
        float f = ldexpf((float)(seed >> 8) / (float)(1 << 24), (int)(seed % 48) - 30);
        if (seed & 0x10) f = -f;
        bad_nearest += !is_nearest_f16(f, hive_f32_to_f16(f));
    }
    CHECKF(bad_nearest == 0, "%d floats not rounded to the nearest f16", bad_nearest);

    /* bf16 */
    CHECK(hive_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(hive_f32_to_bf16(1.0f + ldexpf(1, -8)) == 0x3f80); /* tie -> even */
    CHECK(hive_f32_to_bf16(1.0f + ldexpf(3, -8)) == 0x3f82); /* tie -> even (up) */
    CHECK(hive_f32_to_bf16(1.0f + ldexpf(5, -9)) == 0x3f81); /* above half -> up */
    CHECK(hive_f32_to_bf16(-INFINITY) == 0xff80);
    CHECK(hive_f32_to_bf16(3.4028235e38f) == 0x7f80);       /* FLT_MAX rounds to inf */
    CHECK(isnan(hive_bf16_to_f32(hive_f32_to_bf16(NAN))));
    CHECK(hive_bf16_to_f32(0x4049) == 3.140625f);
    CHECK(hive_bf16_to_f32(0x0001) == ldexpf(1, -133));      /* subnormals kept */
    CHECK(hive_f32_to_bf16(ldexpf(1, -133)) == 0x0001);
}

/* ---- type table ---- */

static void test_types(void) {
    CHECK(hive_type_from_name("Q4_0") == HIVE_TYPE_Q4_0);
    CHECK(hive_type_from_name("bf16") == HIVE_TYPE_BF16);
    CHECK(hive_type_from_name("f32") == HIVE_TYPE_F32);
    CHECK(hive_type_from_name("nope") == -1);
    CHECK(hive_type_from_name(NULL) == -1);
    CHECK(!strcmp(hive_type_name(HIVE_TYPE_Q5_1), "q5_1"));
    CHECK(!strcmp(hive_type_name(4), "unknown"));
    CHECK(!strcmp(hive_type_name(-3), "unknown"));
    for (int t = 0; t < HIVE_TYPE_COUNT; t++)
        if (hive_type_block_size(t)) CHECK(hive_type_from_name(hive_type_name(t)) == t);

    static const struct { int type; int64_t bs; size_t bytes; } geo[] = {
        {HIVE_TYPE_F32, 1, 4},   {HIVE_TYPE_F16, 1, 2},   {HIVE_TYPE_BF16, 1, 2},
        {HIVE_TYPE_Q4_0, 32, 18}, {HIVE_TYPE_Q4_1, 32, 20}, {HIVE_TYPE_Q5_0, 32, 22},
        {HIVE_TYPE_Q5_1, 32, 24}, {HIVE_TYPE_Q8_0, 32, 34}, {HIVE_TYPE_Q8_1, 32, 36},
    };
    for (size_t i = 0; i < sizeof geo / sizeof geo[0]; i++) {
        CHECK(hive_type_block_size(geo[i].type) == geo[i].bs);
        CHECK(hive_type_block_bytes(geo[i].type) == geo[i].bytes);
    }
    /* k-quants: sizes from the spec, when this build has them */
    static const struct { int type; size_t bytes; } kgeo[] = {
        {HIVE_TYPE_Q2_K, 84},  {HIVE_TYPE_Q3_K, 110}, {HIVE_TYPE_Q4_K, 144},
        {HIVE_TYPE_Q5_K, 176}, {HIVE_TYPE_Q6_K, 210}, {HIVE_TYPE_Q8_K, 292},
    };
    for (size_t i = 0; i < sizeof kgeo / sizeof kgeo[0]; i++) {
        if (!hive_type_block_size(kgeo[i].type)) {
            printf("note: %d (k-quant) not in this build\n", kgeo[i].type);
            continue;
        }
        CHECK(hive_type_block_size(kgeo[i].type) == 256);
        CHECK(hive_type_block_bytes(kgeo[i].type) == kgeo[i].bytes);
    }

    CHECK(hive_type_row_bytes(HIVE_TYPE_Q4_0, 64) == 36);
    CHECK(hive_type_row_bytes(HIVE_TYPE_Q4_0, 33) == 0);
    CHECK(hive_type_row_bytes(HIVE_TYPE_Q4_0, 0) == 0);
    CHECK(hive_type_row_bytes(HIVE_TYPE_Q8_0, -32) == 0);
    CHECK(hive_type_row_bytes(HIVE_TYPE_F32, 3) == 12);
    CHECK(hive_type_row_bytes(HIVE_TYPE_BF16, 5) == 10);
    CHECK(hive_type_row_bytes(4, 32) == 0);
    CHECK(hive_type_row_bytes(HIVE_TYPE_F32, INT64_MAX) == 0);           /* overflows u64 */
    CHECK(hive_type_row_bytes(HIVE_TYPE_F16, INT64_MAX / 2) == (uint64_t)(INT64_MAX / 2) * 2);
    CHECK(hive_type_row_bytes(HIVE_TYPE_Q8_0, INT64_MAX - INT64_MAX % 32) ==
          (uint64_t)(INT64_MAX / 32) * 34);

    CHECK(hive_type_is_weight(HIVE_TYPE_Q4_0));
    CHECK(hive_type_is_weight(HIVE_TYPE_BF16));
    CHECK(!hive_type_is_weight(HIVE_TYPE_Q8_1));
    CHECK(!hive_type_is_weight(HIVE_TYPE_Q8_K));
    CHECK(!hive_type_is_weight(4));
    CHECK(!hive_type_is_weight(HIVE_TYPE_COUNT));
}

/* ---- blocks built byte by byte from the spec ---- */

static void put_f16(uint8_t *p, float v) {
    uint16_t h = hive_f32_to_f16(v);
    p[0] = (uint8_t)(h & 0xff); /* little-endian */
    p[1] = (uint8_t)(h >> 8);
}

static void test_layouts(void) {
    float out[32];
    /* q4_0: d | qs[16]; element j = low nibble of byte j, j+16 = high nibble */
    uint8_t q4_0[18];
    put_f16(q4_0, 0.5f);
    for (int j = 0; j < 16; j++) q4_0[2 + j] = (uint8_t)(j | (15 - j) << 4);
    hive_dequantize_row(HIVE_TYPE_Q4_0, q4_0, out, 32);
    int bad = 0;
    for (int j = 0; j < 16; j++) {
        bad += out[j] != (j - 8) * 0.5f;
        bad += out[j + 16] != (15 - j - 8) * 0.5f;
    }
    CHECKF(bad == 0, "q4_0 layout: %d wrong values", bad);

    /* q4_1: d | m | qs[16]; x = d*q + m */
    uint8_t q4_1[20];
    put_f16(q4_1, 0.25f);
    put_f16(q4_1 + 2, -1.5f);
    for (int j = 0; j < 16; j++) q4_1[4 + j] = (uint8_t)((j * 7) % 16 | ((j * 3) % 16) << 4);
    hive_dequantize_row(HIVE_TYPE_Q4_1, q4_1, out, 32);
    bad = 0;
    for (int j = 0; j < 16; j++) {
        bad += out[j] != (float)((j * 7) % 16) * 0.25f - 1.5f;
        bad += out[j + 16] != (float)((j * 3) % 16) * 0.25f - 1.5f;
    }
    CHECKF(bad == 0, "q4_1 layout: %d wrong values", bad);

    /* q5_0: d | qh (u32 LE, bit j = bit 4 of element j) | qs[16]; x = d*(q-16) */
    uint32_t qh = 0xA5C3F00Fu;
    uint8_t q5_0[22];
    put_f16(q5_0, 2.0f);
    for (int b = 0; b < 4; b++) q5_0[2 + b] = (uint8_t)(qh >> (8 * b));
    for (int j = 0; j < 16; j++) q5_0[6 + j] = (uint8_t)((15 - j) | j << 4);
    hive_dequantize_row(HIVE_TYPE_Q5_0, q5_0, out, 32);
    bad = 0;
    for (int j = 0; j < 32; j++) {
        int nib = j < 16 ? 15 - j : j - 16;
        int q = nib | (int)((qh >> j) & 1) << 4;
        bad += out[j] != (float)(q - 16) * 2.0f;
    }
    CHECKF(bad == 0, "q5_0 layout: %d wrong values", bad);

    /* q5_1: d | m | qh | qs[16]; x = d*q + m */
    uint8_t q5_1[24];
    put_f16(q5_1, 0.125f);
    put_f16(q5_1 + 2, 3.0f);
    for (int b = 0; b < 4; b++) q5_1[4 + b] = (uint8_t)(~qh >> (8 * b));
    for (int j = 0; j < 16; j++) q5_1[8 + j] = (uint8_t)(j | j << 4);
    hive_dequantize_row(HIVE_TYPE_Q5_1, q5_1, out, 32);
    bad = 0;
    for (int j = 0; j < 32; j++) {
        int q = (j % 16) | (int)((~qh >> j) & 1) << 4;
        bad += out[j] != (float)q * 0.125f + 3.0f;
    }
    CHECKF(bad == 0, "q5_1 layout: %d wrong values", bad);

    /* q8_0: d | i8[32] */
    uint8_t q8_0[34];
    put_f16(q8_0, -0.75f);
    for (int j = 0; j < 32; j++) q8_0[2 + j] = (uint8_t)(int8_t)(j * 9 - 128);
    hive_dequantize_row(HIVE_TYPE_Q8_0, q8_0, out, 32);
    bad = 0;
    for (int j = 0; j < 32; j++) bad += out[j] != (float)(int8_t)(j * 9 - 128) * -0.75f;
    CHECKF(bad == 0, "q8_0 layout: %d wrong values", bad);

    /* q8_1 written by the quantizer: d | s | i8[32], s = d * sum(q) */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = sinf((float)j) * 3.0f;
    uint8_t q8_1[36];
    hive_quantize_row(HIVE_TYPE_Q8_1, x, q8_1, 32);
    float d = hive_f16_to_f32((uint16_t)(q8_1[0] | q8_1[1] << 8));
    float s = hive_f16_to_f32((uint16_t)(q8_1[2] | q8_1[3] << 8));
    int sum = 0, amax_q = 0;
    for (int j = 0; j < 32; j++) {
        int q = (int8_t)q8_1[4 + j];
        sum += q;
        amax_q = abs(q) > amax_q ? abs(q) : amax_q;
    }
    CHECK(amax_q == 127);
    CHECK(s == hive_f16_to_f32(hive_f32_to_f16(d * (float)sum)));
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    CHECK(d == hive_f16_to_f32(hive_f32_to_f16(amax / 127.0f)));

    /* f16 / bf16 rows are little-endian halves */
    uint8_t h[4];
    put_f16(h, 1.5f);
    put_f16(h + 2, -0.25f);
    hive_dequantize_row(HIVE_TYPE_F16, h, out, 2);
    CHECK(out[0] == 1.5f && out[1] == -0.25f);
    uint8_t bf[4] = {0x80, 0x3f, 0x49, 0x40};
    hive_dequantize_row(HIVE_TYPE_BF16, bf, out, 2);
    CHECK(out[0] == 1.0f && out[1] == 3.140625f);

    /* q4_0 quantizer: the signed extreme maps to q = 0 exactly */
    for (int j = 0; j < 32; j++) x[j] = (float)j / 8.0f - 1.0f; /* max |x| = 2.875 at j=31 */
    hive_quantize_row(HIVE_TYPE_Q4_0, x, q4_0, 32);
    CHECK(hive_f16_to_f32((uint16_t)(q4_0[0] | q4_0[1] << 8)) ==
          hive_f16_to_f32(hive_f32_to_f16(2.875f / -8.0f)));
    CHECK((q4_0[2 + 15] >> 4) == 0); /* element 31 */
}

/* ---- quantize / dequantize error budgets ---- */

struct budget {
    int type;
    double rel_rmse; /* rmse / rms(x) */
};

static void test_round_trip(void) {
    static const struct budget budgets[] = {
        {HIVE_TYPE_F32, 0.0},     {HIVE_TYPE_F16, 3e-4},    {HIVE_TYPE_BF16, 3e-3},
        {HIVE_TYPE_Q4_0, 0.07},   {HIVE_TYPE_Q4_1, 0.06},   {HIVE_TYPE_Q5_0, 0.035},
        {HIVE_TYPE_Q5_1, 0.03},  {HIVE_TYPE_Q8_0, 0.004},  {HIVE_TYPE_Q8_1, 0.004},
        {HIVE_TYPE_Q2_K, 0.30},   {HIVE_TYPE_Q3_K, 0.15},   {HIVE_TYPE_Q4_K, 0.07},
        {HIVE_TYPE_Q5_K, 0.035},  {HIVE_TYPE_Q6_K, 0.02},   {HIVE_TYPE_Q8_K, 0.004},
    };
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t q[N * 4 + 1];
    double rms = 0;
    for (int i = 0; i < N; i++) {
        x[i] = 0.1f + 2.0f * cosf((float)i);
        rms += (double)x[i] * x[i];
    }
    rms = sqrt(rms / N);
    for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
        int t = budgets[b].type;
        if (!hive_type_block_size(t)) {
            printf("note: skipping %d (not in this build)\n", t);
            continue;
        }
        uint64_t bytes = hive_type_row_bytes(t, N);
        CHECK(bytes > 0 && bytes <= sizeof q);
        memset(q, 0xAB, sizeof q);
        hive_quantize_row(t, x, q, N);
        CHECKF(q[bytes] == 0xAB, "%s quantizer wrote past the row", hive_type_name(t));
        hive_dequantize_row(t, q, y, N);
        double se = 0;
        for (int i = 0; i < N; i++) se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        double rel = sqrt(se / N) / rms;
        printf("%-5s rel rmse %.2e (budget %.1e)\n", hive_type_name(t), rel, budgets[b].rel_rmse);
        CHECKF(rel <= budgets[b].rel_rmse, "%s rel rmse %g > %g", hive_type_name(t), rel,
               budgets[b].rel_rmse);
        /* a zero row stays zero and finite */
        static float zeros[N];
        hive_quantize_row(t, zeros, q, N);
        hive_dequantize_row(t, q, y, N);
        int nonzero = 0;
        for (int i = 0; i < N; i++) nonzero += y[i] != 0.0f;
        CHECKF(nonzero == 0, "%s: zero row dequantizes to %d non-zeros", hive_type_name(t), nonzero);
    }
}

/* ---- rows and misc ---- */

static void test_rows(void) {
    enum { ROWS = 5, COLS = 64 };
    float w[ROWS * COLS], row[COLS], want[COLS];
    for (int i = 0; i < ROWS * COLS; i++) w[i] = cosf((float)i * 0.37f);
    uint8_t q[ROWS * COLS / 32 * 34];
    for (int r = 0; r < ROWS; r++) hive_quantize_row(HIVE_TYPE_Q8_0, w + r * COLS, q + r * 68, COLS);
    hive_get_row(HIVE_TYPE_Q8_0, q, COLS, 3, row);
    hive_dequantize_row(HIVE_TYPE_Q8_0, q + 3 * 68, want, COLS);
    CHECK(!memcmp(row, want, sizeof row));
    hive_get_row(HIVE_TYPE_F32, w, COLS, 4, row);
    CHECK(!memcmp(row, w + 4 * COLS, sizeof row));
    /* a bad type yields zeros rather than garbage */
    row[0] = 1.0f;
    hive_get_row(4, q, COLS, 0, row);
    CHECK(row[0] == 0.0f);

    /* isa selection */
    int best = hive_isa_best();
    CHECK(hive_isa_set(HIVE_ISA_REF) == HIVE_ISA_REF);
    CHECK(hive_isa_current() == HIVE_ISA_REF);
    CHECK(hive_isa_set(best) == best);
    CHECK(!strcmp(hive_isa_name(HIVE_ISA_AVX512), "avx512"));
    printf("cpu features: %s; best isa %s\n", hive_cpu_features(), hive_isa_name(best));
#if defined(__x86_64__)
    CHECK(strstr(hive_cpu_features(), "sse2") != NULL);
    CHECK(hive_isa_set(HIVE_ISA_NEON) == HIVE_ISA_REF); /* not on x86 */
    hive_isa_set(best);
#endif
#if defined(__aarch64__)
    /* NEON is always there; it hands out kernels for every type */
    CHECK(best == HIVE_ISA_NEON && strstr(hive_cpu_features(), "neon") != NULL);
    CHECK(hive_isa_set(HIVE_ISA_AVX2) == HIVE_ISA_REF); /* not on ARM */
    CHECK(!strcmp(hive_isa_name(HIVE_ISA_NEON), "neon"));
    int dp_hw = kern_arm_dotprod_hw();
    CHECK(dp_hw == (strstr(hive_cpu_features(), "dotprod") != NULL));
    static const int types[] = {HIVE_TYPE_F32,  HIVE_TYPE_F16,  HIVE_TYPE_BF16, HIVE_TYPE_Q4_0, HIVE_TYPE_Q4_1,
                                HIVE_TYPE_Q5_0, HIVE_TYPE_Q5_1, HIVE_TYPE_Q8_0, HIVE_TYPE_Q2_K, HIVE_TYPE_Q3_K,
                                HIVE_TYPE_Q4_K, HIVE_TYPE_Q5_K, HIVE_TYPE_Q6_K};
    for (int dp = 0; dp <= dp_hw; dp++) {
        CHECK(kern_arm_use_dotprod(dp) == dp);
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            int t = types[i];
            CHECKF(tensor_vec_dot(t, HIVE_ISA_NEON) != tensor_vec_dot(t, HIVE_ISA_REF), "%s: no NEON dot (dotprod %d)",
                   hive_type_name(t), dp);
            int quantized = t != HIVE_TYPE_F32 && t != HIVE_TYPE_F16 && t != HIVE_TYPE_BF16;
            if (quantized) CHECKF(tensor_vec_dot_toks(t, HIVE_ISA_NEON) != NULL, "%s: no NEON toks", hive_type_name(t));
        }
        CHECK(tensor_quant(HIVE_TYPE_Q8_0, HIVE_ISA_NEON) != tensor_quant(HIVE_TYPE_Q8_0, HIVE_ISA_REF));
        CHECK(tensor_quant(HIVE_TYPE_Q8_1, HIVE_ISA_NEON) != tensor_quant(HIVE_TYPE_Q8_1, HIVE_ISA_REF));
    }
    /* the two builds are distinct kernels (when the CPU has both) */
    if (dp_hw) {
        quant_vec_dot_fn plain = (kern_arm_use_dotprod(0), tensor_vec_dot(HIVE_TYPE_Q4_0, HIVE_ISA_NEON));
        CHECK(kern_arm_use_dotprod(1) == 1 && tensor_vec_dot(HIVE_TYPE_Q4_0, HIVE_ISA_NEON) != plain);
    }
    kern_arm_use_dotprod(dp_hw);
#endif
}

int main(void) {
    test_f16();
    test_types();
    test_layouts();
    test_round_trip();
    test_rows();
    return check_result("test_tensor");
}
