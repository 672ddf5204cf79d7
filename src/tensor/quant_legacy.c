/* quant_legacy.c - scalar reference kernels for f32, f16, bf16 and the legacy
 * 32-element block formats (q4_0, q4_1, q5_0, q5_1, q8_0, q8_1).
 *
 * These define correctness: the SIMD kernels are checked against them. The
 * quantizers are deterministic (no search for the best scale), so a model
 * written twice is byte-identical:
 *   q4_0 / q5_0: d = (signed value of largest magnitude) / -8 (resp. -16)
 *   q4_1 / q5_1: d = (max - min) / 15 (resp. 31), m = min
 *   q8_0 / q8_1: d = amax / 127, q = round_half_even(x * 127 / amax)
 * Layouts and the per-block steps are in kern.h. */
#include "kern.h"

/* ---- 16-bit and f32 rows ---- */

void dequant_row_f32_ref(const void *src, float *dst, int64_t k) {
    memcpy(dst, src, (size_t)k * sizeof(float));
}

void dequant_row_f16_ref(const void *src, float *dst, int64_t k) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < k; i++) dst[i] = kern_f16_to_f32(h[i]);
}

void dequant_row_bf16_ref(const void *src, float *dst, int64_t k) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < k; i++) dst[i] = kern_bf16_to_f32(h[i]);
}

void quant_row_f32_ref(const float *src, void *dst, int64_t k) {
    memcpy(dst, src, (size_t)k * sizeof(float));
}

void quant_row_f16_ref(const float *src, void *dst, int64_t k) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < k; i++) h[i] = kern_f32_to_f16(src[i]);
}

void quant_row_bf16_ref(const float *src, void *dst, int64_t k) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < k; i++) h[i] = kern_f32_to_bf16(src[i]);
}

/* ---- dequantize ---- */

static void dequant_values(const int q[32], int offset, float d, float m, float *dst) {
    for (int j = 0; j < 32; j++) dst[j] = (float)(q[j] - offset) * d + m;
}

void dequant_row_q4_0_ref(const void *src, float *dst, int64_t k) {
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        int q[32];
        kern_unpack_nibbles(b[i].qs, q);
        dequant_values(q, 8, kern_f16_to_f32(b[i].d), 0.0f, dst + i * QK_LEGACY);
    }
}

void dequant_row_q4_1_ref(const void *src, float *dst, int64_t k) {
    const block_q4_1 *b = src;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        int q[32];
        kern_unpack_nibbles(b[i].qs, q);
        dequant_values(q, 0, kern_f16_to_f32(b[i].d), kern_f16_to_f32(b[i].m), dst + i * QK_LEGACY);
    }
}

void dequant_row_q5_0_ref(const void *src, float *dst, int64_t k) {
    const block_q5_0 *b = src;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        int q[32];
        kern_unpack_q5(b[i].qs, b[i].qh, q);
        dequant_values(q, 16, kern_f16_to_f32(b[i].d), 0.0f, dst + i * QK_LEGACY);
    }
}

void dequant_row_q5_1_ref(const void *src, float *dst, int64_t k) {
    const block_q5_1 *b = src;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        int q[32];
        kern_unpack_q5(b[i].qs, b[i].qh, q);
        dequant_values(q, 0, kern_f16_to_f32(b[i].d), kern_f16_to_f32(b[i].m), dst + i * QK_LEGACY);
    }
}

void dequant_row_q8_0_ref(const void *src, float *dst, int64_t k) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        float d = kern_f16_to_f32(b[i].d);
        for (int j = 0; j < 32; j++) dst[i * QK_LEGACY + j] = (float)b[i].qs[j] * d;
    }
}

void dequant_row_q8_1_ref(const void *src, float *dst, int64_t k) {
    const block_q8_1 *b = src;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        float d = kern_f16_to_f32(b[i].d);
        for (int j = 0; j < 32; j++) dst[i * QK_LEGACY + j] = (float)b[i].qs[j] * d;
    }
}

/* ---- quantize ---- */

/* Packs 32 values (0..15 low bits used) into nibbles; bit 4 of each into *qh
 * (when qh is not NULL). */
static void pack_values(const int q[32], uint8_t qs[16], uint8_t qh_bytes[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
    for (int j = 0; j < 32; j++) qh |= (uint32_t)((q[j] >> 4) & 1) << j;
    if (qh_bytes) memcpy(qh_bytes, &qh, sizeof qh);
}

/* Symmetric scale: d = (signed value of largest magnitude) / -half, so that
 * value maps to q = 0 exactly; q = clamp(trunc(x/d + half + 0.5), 0, 2*half-1). */
static float quant_values_symmetric(const float *x, int half, int q[32]) {
    float amax = 0.0f, vmax = 0.0f;
    for (int j = 0; j < 32; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            vmax = x[j];
        }
    }
    float d = vmax / (float)-half;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++) {
        q[j] = kern_trunc_clamp(x[j] * id + (float)half + 0.5f, 0, 2 * half - 1);
    }
    return d;
}

/* Affine scale: x ~ d*q + m with m = min, d = (max - min) / qmax. */
static float quant_values_affine(const float *x, int qmax, float *m_out, int q[32]) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < 32; j++) {
        lo = fminf(lo, x[j]);
        hi = fmaxf(hi, x[j]);
    }
    float d = (hi - lo) / (float)qmax;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++) {
        q[j] = kern_trunc_clamp((x[j] - lo) * id + 0.5f, 0, qmax);
    }
    *m_out = lo;
    return d;
}

void quant_row_q4_0_ref(const float *src, void *dst, int64_t k) {
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        int q[32];
        b[i].d = kern_f32_to_f16(quant_values_symmetric(src + i * QK_LEGACY, 8, q));
        pack_values(q, b[i].qs, NULL);
    }
}

void quant_row_q4_1_ref(const float *src, void *dst, int64_t k) {
    block_q4_1 *b = dst;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        int q[32];
        float m;
        b[i].d = kern_f32_to_f16(quant_values_affine(src + i * QK_LEGACY, 15, &m, q));
        b[i].m = kern_f32_to_f16(m);
        pack_values(q, b[i].qs, NULL);
    }
}

void quant_row_q5_0_ref(const float *src, void *dst, int64_t k) {
    block_q5_0 *b = dst;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        int q[32];
        b[i].d = kern_f32_to_f16(quant_values_symmetric(src + i * QK_LEGACY, 16, q));
        pack_values(q, b[i].qs, b[i].qh);
    }
}

void quant_row_q5_1_ref(const float *src, void *dst, int64_t k) {
    block_q5_1 *b = dst;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        int q[32];
        float m;
        b[i].d = kern_f32_to_f16(quant_values_affine(src + i * QK_LEGACY, 31, &m, q));
        b[i].m = kern_f32_to_f16(m);
        pack_values(q, b[i].qs, b[i].qh);
    }
}

void quant_row_q8_0_ref(const float *src, void *dst, int64_t k) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) kern_quant_block_q8(src + i * QK_LEGACY, &b[i].d, b[i].qs);
}

void quant_row_q8_1_ref(const float *src, void *dst, int64_t k) {
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        int sum = kern_quant_block_q8(src + i * QK_LEGACY, &b[i].d, b[i].qs);
        b[i].s = kern_f32_to_f16(kern_f16_to_f32(b[i].d) * (float)sum);
    }
}

/* ---- dot products: *s = x (n,) . y (n,) ---- */

void vec_dot_f32_f32_ref(int64_t n, float *s, const void *x, const void *y) {
    const float *a = x, *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += a[i] * b[i];
    *s = sum;
}

void vec_dot_f16_f32_ref(int64_t n, float *s, const void *x, const void *y) {
    const uint16_t *a = x;
    const float *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += kern_f16_to_f32(a[i]) * b[i];
    *s = sum;
}

void vec_dot_bf16_f32_ref(int64_t n, float *s, const void *x, const void *y) {
    const uint16_t *a = x;
    const float *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += kern_bf16_to_f32(a[i]) * b[i];
    *s = sum;
}

void vec_dot_q4_0_q8_0_ref(int64_t n, float *s, const void *x, const void *y) {
    const block_q4_0 *a = x;
    const block_q8_0 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_LEGACY; i++) sum += kern_dot_block_q4_0_q8_0(&a[i], &b[i]);
    *s = sum;
}

void vec_dot_q4_1_q8_1_ref(int64_t n, float *s, const void *x, const void *y) {
    const block_q4_1 *a = x;
    const block_q8_1 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_LEGACY; i++) sum += kern_dot_block_q4_1_q8_1(&a[i], &b[i]);
    *s = sum;
}

void vec_dot_q5_0_q8_0_ref(int64_t n, float *s, const void *x, const void *y) {
    const block_q5_0 *a = x;
    const block_q8_0 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_LEGACY; i++) sum += kern_dot_block_q5_0_q8_0(&a[i], &b[i]);
    *s = sum;
}

void vec_dot_q5_1_q8_1_ref(int64_t n, float *s, const void *x, const void *y) {
    const block_q5_1 *a = x;
    const block_q8_1 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_LEGACY; i++) sum += kern_dot_block_q5_1_q8_1(&a[i], &b[i]);
    *s = sum;
}

void vec_dot_q8_0_q8_0_ref(int64_t n, float *s, const void *x, const void *y) {
    const block_q8_0 *a = x;
    const block_q8_0 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_LEGACY; i++) sum += kern_dot_block_q8_0_q8_0(&a[i], &b[i]);
    *s = sum;
}
