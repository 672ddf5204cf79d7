/* quant_k.c - the k-quant formats (q2_k .. q6_k, activation type q8_k):
 * scalar reference kernels (dequantize, quantize, dot with q8_k) and the
 * per-type table the dispatcher reads through quant_k.h.
 *
 * Layouts: see quant_k.h. The reference kernels define correctness; the SIMD
 * kernels in kern_x86_k.c must agree with them (bit-exact for the q8_k
 * quantizer, to float rounding for the dot products), the NEON ones
 * (kern_arm.c, kern_arm_body.h) bit for bit in both.
 *
 * The weight quantizers are our own deterministic fit, not llama-quantize's
 * search: each group gets a least-squares (scale, min) or (scale) fit over a
 * few candidate step sizes, then the group scales are quantized against the
 * super-block scale and the values requantized with the scales as stored.
 * Non-goals: importance matrices, bit-exact agreement with llama-quantize. */
#include "quant_k.h"

#include <math.h>
#include <pthread.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "hive/tensor.h"

/* ---- scalar helpers ---- */

/* f32 -> f16 bits, round to nearest even (only used on scales, which are finite). */
static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00;   /* nan */
    if (ax >= 0x477ff000u) return sign | 0x7c00;  /* >= 65520 rounds to inf */
    if (ax >= 0x38800000u) {                      /* normal f16 */
        ax += 0xfffu + ((ax >> 13) & 1);          /* ties to even on the 13 dropped bits */
        return sign | (uint16_t)((ax - 0x38000000u) >> 13);
    }
    /* subnormal f16: scaling by 2^24 is exact; round the result to an integer */
    float m;
    memcpy(&m, &ax, sizeof m);
    return sign | (uint16_t)nearbyintf(m * 0x1p24f);
}

/* Rounds v to the nearest integer (ties to even) and clamps it to [lo, hi];
 * nan goes to lo. Clamping in float first keeps the int conversion defined. */
static inline int round_clamp(float v, int lo, int hi) {
    float r = nearbyintf(v);
    if (!(r >= (float)lo)) return lo;
    if (r > (float)hi) return hi;
    return (int)r;
}

/* x (n,) ~ a*q - m with q in 0..nmax, a >= 0, m >= 0: least-squares fit over
 * a few candidate step sizes, keeping the one with the smallest squared error. */
static void fit_affine(const float *x, int n, int nmax, float *a_out, float *m_out) {
    float lo = 0.0f, hi = x[0];
    for (int i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    float best_a = 0.0f, best_b = lo;
    if (!(hi > lo)) { /* constant group (<= 0): the offset alone represents it */
        *a_out = 0.0f;
        *m_out = -lo;
        return;
    }
    best_a = (hi - lo) / (float)nmax;
    double best_err = INFINITY;
    for (int t = -6; t <= 6; t++) {
        float iscale = ((float)nmax + 0.1f * (float)t) / (hi - lo);
        double sq = 0, sx = 0, sqq = 0, sqx = 0;
        int q[32];
        for (int i = 0; i < n; i++) {
            q[i] = round_clamp(iscale * (x[i] - lo), 0, nmax);
            sq += q[i];
            sx += x[i];
            sqq += (double)q[i] * q[i];
            sqx += (double)q[i] * x[i];
        }
        double det = n * sqq - sq * sq;
        if (det <= 0) continue;
        double a = (n * sqx - sq * sx) / det, b = (sx - a * sq) / n;
        if (b > 0) { /* the offset may only pull down: refit the slope alone */
            if (sqq <= 0) continue;
            b = 0;
            a = sqx / sqq;
        }
        if (a < 0) continue;
        double err = 0;
        for (int i = 0; i < n; i++) {
            double e = a * q[i] + b - x[i];
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            best_a = (float)a;
            best_b = (float)b;
        }
    }
    *a_out = best_a;
    *m_out = -best_b;
}

/* x (n,) ~ s*q with q in -nneg..npos (s may be negative): least-squares fit
 * over candidates mapping the largest-magnitude value near -nneg or +npos. */
static float fit_symmetric(const float *x, int n, int nneg, int npos) {
    float xm = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            xm = x[i];
        }
    }
    if (amax == 0.0f) return 0.0f;
    float best_s = xm / (float)-nneg;
    double best_err = INFINITY;
    for (int side = 0; side < 2; side++) {
        for (int t = -4; t <= 5; t++) {
            float target = side == 0 ? -((float)nneg + 0.1f * (float)t) : (float)npos + 0.1f * (float)t;
            float iscale = target / xm;
            double sqq = 0, sqx = 0;
            int q[32];
            for (int i = 0; i < n; i++) {
                q[i] = round_clamp(iscale * x[i], -nneg, npos);
                sqq += (double)q[i] * q[i];
                sqx += (double)q[i] * x[i];
            }
            if (sqq <= 0) continue;
            double s = sqx / sqq, err = 0;
            for (int i = 0; i < n; i++) {
                double e = s * q[i] - x[i];
                err += e * e;
            }
            if (err < best_err) {
                best_err = err;
                best_s = (float)s;
            }
        }
    }
    return best_s;
}

/* Quantizes group scales v (n,) (all >= 0) to 0..nsc against a super-block
 * scale stored as f16: returns the f16 bits; *dq gets its value, q the codes. */
static uint16_t quant_scales_unsigned(const float *v, int n, int nsc, float *dq, uint8_t *q) {
    float vmax = 0.0f;
    for (int i = 0; i < n; i++) vmax = fmaxf(vmax, v[i]);
    uint16_t h = f32_to_f16(vmax / (float)nsc);
    float d = quant_k_f16_to_f32(h);
    for (int i = 0; i < n; i++) q[i] = (uint8_t)(d > 0.0f ? round_clamp(v[i] / d, 0, nsc) : 0);
    *dq = d;
    return h;
}

/* Signed version: codes in -nneg..nneg-1; the largest-magnitude scale maps to -nneg. */
static float quant_scales_signed(const float *v, int n, int nneg, int *q) {
    float vm = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(v[i]) > amax) {
            amax = fabsf(v[i]);
            vm = v[i];
        }
    }
    float d = vm / (float)-nneg;
    for (int i = 0; i < n; i++) q[i] = d != 0.0f ? round_clamp(v[i] / d, -nneg, nneg - 1) : 0;
    return d;
}

/* ================= q2_k ================= */

/* q (256,) in 0..3 in element order (layout in quant_k.h). */
static inline void unpack_q2_k(const block_q2_k *b, int q[QK_K]) {
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) q[128 * h + 32 * j + l] = (b->qs[32 * h + l] >> (2 * j)) & 3;
}

void dequant_row_q2_k_ref(const void *src, float *dst, int64_t k) {
    const block_q2_k *b = src;
    for (int64_t i = 0; i < k / QK_K; i++, b++, dst += QK_K) {
        float d = quant_k_f16_to_f32(b->d), dmin = quant_k_f16_to_f32(b->dmin);
        int q[QK_K];
        unpack_q2_k(b, q);
        for (int g = 0; g < 16; g++) {
            float dl = d * (float)(b->scales[g] & 15), ml = dmin * (float)(b->scales[g] >> 4);
            for (int l = 0; l < 16; l++) dst[16 * g + l] = dl * (float)q[16 * g + l] - ml;
        }
    }
}

void quant_row_q2_k_ref(const float *src, void *dst, int64_t k) {
    block_q2_k *b = dst;
    for (int64_t i = 0; i < k / QK_K; i++, b++, src += QK_K) {
        float a[16], m[16], d, dmin;
        uint8_t sc[16], mq[16];
        for (int g = 0; g < 16; g++) fit_affine(src + 16 * g, 16, 3, &a[g], &m[g]);
        b->d = quant_scales_unsigned(a, 16, 15, &d, sc);
        b->dmin = quant_scales_unsigned(m, 16, 15, &dmin, mq);
        memset(b->qs, 0, sizeof b->qs);
        for (int g = 0; g < 16; g++) {
            b->scales[g] = (uint8_t)(sc[g] | mq[g] << 4);
            float al = d * (float)sc[g], ml = dmin * (float)mq[g];
            for (int l = 0; l < 16; l++) {
                int e = 16 * g + l;
                int q = al > 0.0f ? round_clamp((src[e] + ml) / al, 0, 3) : 0;
                b->qs[32 * (e / 128) + e % 32] |= (uint8_t)(q << (2 * ((e % 128) / 32)));
            }
        }
    }
}

void vec_dot_q2_k_q8_k_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q2_k *x = vx;
    const block_q8_k *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int q[QK_K], sumi = 0, summ = 0;
        unpack_q2_k(&x[i], q);
        for (int g = 0; g < 16; g++) {
            int gs = 0;
            for (int l = 0; l < 16; l++) gs += q[16 * g + l] * y[i].qs[16 * g + l];
            sumi += (x[i].scales[g] & 15) * gs;
            summ += (x[i].scales[g] >> 4) * y[i].bsums[g];
        }
        sum += quant_k_block_sum_affine(y[i].d, quant_k_f16_to_f32(x[i].d), quant_k_f16_to_f32(x[i].dmin), sumi, summ);
    }
    *s = sum;
}

/* ================= q3_k ================= */

/* q (256,) in -4..3 in element order. */
static inline void unpack_q3_k(const block_q3_k *b, int q[QK_K]) {
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                int low = (b->qs[32 * h + l] >> (2 * j)) & 3;
                int high = (b->hmask[l] >> (4 * h + j)) & 1;
                q[128 * h + 32 * j + l] = low + 4 * high - 4;
            }
}

void dequant_row_q3_k_ref(const void *src, float *dst, int64_t k) {
    const block_q3_k *b = src;
    for (int64_t i = 0; i < k / QK_K; i++, b++, dst += QK_K) {
        float d = quant_k_f16_to_f32(b->d);
        int q[QK_K];
        int8_t sc[16];
        unpack_q3_k(b, q);
        quant_k_unpack_scales_q3(b->scales, sc);
        for (int g = 0; g < 16; g++) {
            float dl = d * (float)sc[g];
            for (int l = 0; l < 16; l++) dst[16 * g + l] = dl * (float)q[16 * g + l];
        }
    }
}

void quant_row_q3_k_ref(const float *src, void *dst, int64_t k) {
    block_q3_k *b = dst;
    for (int64_t i = 0; i < k / QK_K; i++, b++, src += QK_K) {
        float s[16];
        int sc[16];
        for (int g = 0; g < 16; g++) s[g] = fit_symmetric(src + 16 * g, 16, 4, 3);
        float d = quant_scales_signed(s, 16, 32, sc);
        b->d = f32_to_f16(d);
        d = quant_k_f16_to_f32(b->d);
        memset(b->hmask, 0, sizeof b->hmask);
        memset(b->qs, 0, sizeof b->qs);
        memset(b->scales, 0, sizeof b->scales);
        for (int g = 0; g < 16; g++) {
            int v = sc[g] + 32; /* stored 0..63 */
            if (g < 8) b->scales[g] |= (uint8_t)(v & 15);
            else b->scales[g - 8] |= (uint8_t)((v & 15) << 4);
            b->scales[8 + g % 4] |= (uint8_t)((v >> 4) << (2 * (g / 4)));
            float dl = d * (float)sc[g];
            for (int l = 0; l < 16; l++) {
                int e = 16 * g + l, h = e / 128, j = (e % 128) / 32;
                int u = (dl != 0.0f ? round_clamp(src[e] / dl, -4, 3) : 0) + 4; /* 0..7 */
                b->qs[32 * h + e % 32] |= (uint8_t)((u & 3) << (2 * j));
                b->hmask[e % 32] |= (uint8_t)((u >> 2) << (4 * h + j));
            }
        }
    }
}

void vec_dot_q3_k_q8_k_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q3_k *x = vx;
    const block_q8_k *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int q[QK_K], sumi = 0;
        int8_t sc[16];
        unpack_q3_k(&x[i], q);
        quant_k_unpack_scales_q3(x[i].scales, sc);
        for (int g = 0; g < 16; g++) {
            int gs = 0;
            for (int l = 0; l < 16; l++) gs += q[16 * g + l] * y[i].qs[16 * g + l];
            sumi += sc[g] * gs;
        }
        sum += quant_k_block_sum_sym(y[i].d, quant_k_f16_to_f32(x[i].d), sumi);
    }
    *s = sum;
}

/* ================= q4_k / q5_k ================= */

/* Packs 8 6-bit scales and mins into the 12-byte layout of quant_k.h. */
static void pack_scales_q4(const uint8_t sc[8], const uint8_t m[8], uint8_t s[12]) {
    for (int g = 0; g < 4; g++) {
        s[g] = (uint8_t)((sc[g] & 63) | (sc[g + 4] >> 4) << 6);
        s[g + 4] = (uint8_t)((m[g] & 63) | (m[g + 4] >> 4) << 6);
        s[g + 8] = (uint8_t)((sc[g + 4] & 15) | (m[g + 4] & 15) << 4);
    }
}

/* q (256,) in 0..15 (q4_k) or 0..31 (q5_k, qh != NULL) in element order. */
static inline void unpack_q45_k(const uint8_t qs[128], const uint8_t *qh, int q[QK_K]) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = qs[32 * c + l] & 15;
            q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
        }
    if (qh)
        for (int e = 0; e < QK_K; e++) q[e] |= ((qh[e % 32] >> (e / 32)) & 1) << 4;
}

static void dequant_q45_k(const uint8_t qs[128], const uint8_t *qh, const uint8_t scales[12], uint16_t d16,
                          uint16_t dmin16, float *dst) {
    float d = quant_k_f16_to_f32(d16), dmin = quant_k_f16_to_f32(dmin16);
    int q[QK_K];
    uint8_t sc[8], m[8];
    unpack_q45_k(qs, qh, q);
    quant_k_unpack_scales_q4(scales, sc, m);
    for (int g = 0; g < 8; g++) {
        float dl = d * (float)sc[g], ml = dmin * (float)m[g];
        for (int l = 0; l < 32; l++) dst[32 * g + l] = dl * (float)q[32 * g + l] - ml;
    }
}

/* Fits one super-block; writes scales, d, dmin and the codes q (256,) in 0..nmax. */
static void quant_q45_k(const float *x, int nmax, uint8_t scales[12], uint16_t *d16, uint16_t *dmin16,
                        int q[QK_K]) {
    float a[8], m[8], d, dmin;
    uint8_t sc[8], mq[8];
    for (int g = 0; g < 8; g++) fit_affine(x + 32 * g, 32, nmax, &a[g], &m[g]);
    *d16 = quant_scales_unsigned(a, 8, 63, &d, sc);
    *dmin16 = quant_scales_unsigned(m, 8, 63, &dmin, mq);
    pack_scales_q4(sc, mq, scales);
    for (int g = 0; g < 8; g++) {
        float al = d * (float)sc[g], ml = dmin * (float)mq[g];
        for (int l = 0; l < 32; l++)
            q[32 * g + l] = al > 0.0f ? round_clamp((x[32 * g + l] + ml) / al, 0, nmax) : 0;
    }
}

/* sum over the 8 groups of sc * (q . y) and of m * (sum of y), exact in int. */
static inline void dot_q45_k_block(const int q[QK_K], const uint8_t scales[12], const block_q8_k *y, int *sumi,
                                   int *summ) {
    uint8_t sc[8], m[8];
    quant_k_unpack_scales_q4(scales, sc, m);
    *sumi = 0;
    *summ = 0;
    for (int g = 0; g < 8; g++) {
        int gs = 0;
        for (int l = 0; l < 32; l++) gs += q[32 * g + l] * y->qs[32 * g + l];
        *sumi += sc[g] * gs;
        *summ += m[g] * (y->bsums[2 * g] + y->bsums[2 * g + 1]);
    }
}

void dequant_row_q4_k_ref(const void *src, float *dst, int64_t k) {
    const block_q4_k *b = src;
    for (int64_t i = 0; i < k / QK_K; i++, b++, dst += QK_K)
        dequant_q45_k(b->qs, NULL, b->scales, b->d, b->dmin, dst);
}

void quant_row_q4_k_ref(const float *src, void *dst, int64_t k) {
    block_q4_k *b = dst;
    for (int64_t i = 0; i < k / QK_K; i++, b++, src += QK_K) {
        int q[QK_K];
        quant_q45_k(src, 15, b->scales, &b->d, &b->dmin, q);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) b->qs[32 * c + l] = (uint8_t)(q[64 * c + l] | q[64 * c + 32 + l] << 4);
    }
}

void vec_dot_q4_k_q8_k_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_k *x = vx;
    const block_q8_k *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int q[QK_K], sumi, summ;
        unpack_q45_k(x[i].qs, NULL, q);
        dot_q45_k_block(q, x[i].scales, &y[i], &sumi, &summ);
        sum += quant_k_block_sum_affine(y[i].d, quant_k_f16_to_f32(x[i].d), quant_k_f16_to_f32(x[i].dmin), sumi, summ);
    }
    *s = sum;
}

void dequant_row_q5_k_ref(const void *src, float *dst, int64_t k) {
    const block_q5_k *b = src;
    for (int64_t i = 0; i < k / QK_K; i++, b++, dst += QK_K)
        dequant_q45_k(b->qs, b->qh, b->scales, b->d, b->dmin, dst);
}

void quant_row_q5_k_ref(const float *src, void *dst, int64_t k) {
    block_q5_k *b = dst;
    for (int64_t i = 0; i < k / QK_K; i++, b++, src += QK_K) {
        int q[QK_K];
        quant_q45_k(src, 31, b->scales, &b->d, &b->dmin, q);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                b->qs[32 * c + l] = (uint8_t)((q[64 * c + l] & 15) | (q[64 * c + 32 + l] & 15) << 4);
        memset(b->qh, 0, sizeof b->qh);
        for (int e = 0; e < QK_K; e++) b->qh[e % 32] |= (uint8_t)((q[e] >> 4) << (e / 32));
    }
}

void vec_dot_q5_k_q8_k_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_k *x = vx;
    const block_q8_k *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int q[QK_K], sumi, summ;
        unpack_q45_k(x[i].qs, x[i].qh, q);
        dot_q45_k_block(q, x[i].scales, &y[i], &sumi, &summ);
        sum += quant_k_block_sum_affine(y[i].d, quant_k_f16_to_f32(x[i].d), quant_k_f16_to_f32(x[i].dmin), sumi, summ);
    }
    *s = sum;
}

/* ================= q6_k ================= */

/* q (256,) in -32..31 in element order. */
static inline void unpack_q6_k(const block_q6_k *b, int q[QK_K]) {
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        int *o = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            o[l] = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
            o[l + 32] = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
            o[l + 64] = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            o[l + 96] = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
        }
    }
}

void dequant_row_q6_k_ref(const void *src, float *dst, int64_t k) {
    const block_q6_k *b = src;
    for (int64_t i = 0; i < k / QK_K; i++, b++, dst += QK_K) {
        float d = quant_k_f16_to_f32(b->d);
        int q[QK_K];
        unpack_q6_k(b, q);
        for (int g = 0; g < 16; g++) {
            float dl = d * (float)b->scales[g];
            for (int l = 0; l < 16; l++) dst[16 * g + l] = dl * (float)q[16 * g + l];
        }
    }
}

void quant_row_q6_k_ref(const float *src, void *dst, int64_t k) {
    block_q6_k *b = dst;
    for (int64_t i = 0; i < k / QK_K; i++, b++, src += QK_K) {
        float s[16];
        int sc[16], u[QK_K];
        for (int g = 0; g < 16; g++) s[g] = fit_symmetric(src + 16 * g, 16, 32, 31);
        float d = quant_scales_signed(s, 16, 128, sc);
        b->d = f32_to_f16(d);
        d = quant_k_f16_to_f32(b->d);
        for (int g = 0; g < 16; g++) {
            b->scales[g] = (int8_t)sc[g];
            float dl = d * (float)sc[g];
            for (int l = 0; l < 16; l++)
                u[16 * g + l] = (dl != 0.0f ? round_clamp(src[16 * g + l] / dl, -32, 31) : 0) + 32;
        }
        for (int h = 0; h < 2; h++) {
            uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
            const int *v = u + 128 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((v[l] & 15) | (v[l + 64] & 15) << 4);
                ql[l + 32] = (uint8_t)((v[l + 32] & 15) | (v[l + 96] & 15) << 4);
                qh[l] = (uint8_t)((v[l] >> 4) | (v[l + 32] >> 4) << 2 | (v[l + 64] >> 4) << 4 | (v[l + 96] >> 4) << 6);
            }
        }
    }
}

void vec_dot_q6_k_q8_k_ref(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q6_k *x = vx;
    const block_q8_k *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int q[QK_K], sumi = 0;
        unpack_q6_k(&x[i], q);
        for (int g = 0; g < 16; g++) {
            int gs = 0;
            for (int l = 0; l < 16; l++) gs += q[16 * g + l] * y[i].qs[16 * g + l];
            sumi += x[i].scales[g] * gs;
        }
        sum += quant_k_block_sum_sym(y[i].d, quant_k_f16_to_f32(x[i].d), sumi);
    }
    *s = sum;
}

/* ================= q8_k ================= */

void dequant_row_q8_k_ref(const void *src, float *dst, int64_t k) {
    const block_q8_k *b = src;
    for (int64_t i = 0; i < k / QK_K; i++, b++, dst += QK_K)
        for (int j = 0; j < QK_K; j++) dst[j] = b->d * (float)b->qs[j];
}

void quant_row_q8_k_ref(const float *src, void *dst, int64_t k) {
    block_q8_k *b = dst;
    for (int64_t i = 0; i < k / QK_K; i++, b++, src += QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; j++) {
            if (fabsf(src[j]) > amax) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        if (amax == 0.0f) {
            memset(b, 0, sizeof *b);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) {
            /* min(127, round) as llama.cpp; nan and +inf (degenerate iscale)
             * go to 127 and -inf to -128, which the SIMD quantizers mirror */
            float r = nearbyintf(iscale * src[j]);
            b->qs[j] = (int8_t)(r < 127.0f ? (r >= -128.0f ? (int)r : -128) : 127);
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += b->qs[16 * g + l];
            b->bsums[g] = (int16_t)sum;
        }
        b->d = 1.0f / iscale;
    }
}

/* ================= dispatch ================= */

struct kquant_type {
    size_t block_bytes;
    quant_dequant_fn dequant;
    quant_quant_fn quant;
    quant_vec_dot_fn vec_dot; /* NULL for q8_k (activation only) */
};

static const struct kquant_type kquant_types[] = {
    {sizeof(block_q2_k), dequant_row_q2_k_ref, quant_row_q2_k_ref, vec_dot_q2_k_q8_k_ref},
    {sizeof(block_q3_k), dequant_row_q3_k_ref, quant_row_q3_k_ref, vec_dot_q3_k_q8_k_ref},
    {sizeof(block_q4_k), dequant_row_q4_k_ref, quant_row_q4_k_ref, vec_dot_q4_k_q8_k_ref},
    {sizeof(block_q5_k), dequant_row_q5_k_ref, quant_row_q5_k_ref, vec_dot_q5_k_q8_k_ref},
    {sizeof(block_q6_k), dequant_row_q6_k_ref, quant_row_q6_k_ref, vec_dot_q6_k_q8_k_ref},
    {sizeof(block_q8_k), dequant_row_q8_k_ref, quant_row_q8_k_ref, NULL},
};
_Static_assert(HIVE_TYPE_Q8_K - HIVE_TYPE_Q2_K + 1 == sizeof kquant_types / sizeof kquant_types[0],
               "one table row per k-quant type id");

static const struct kquant_type *kquant_lookup(int type) {
    if (type < HIVE_TYPE_Q2_K || type > HIVE_TYPE_Q8_K) return NULL;
    return &kquant_types[type - HIVE_TYPE_Q2_K];
}

/* Which levels this CPU (and OS) can run, probed once: CPUID traps to the
 * hypervisor in a VM, and the dispatch below runs on every matmul (a
 * quarter of the time of a k-quant decode step when it probed each call). */
static int levels_ok[3]; /* AVX2, AVX-512, NEON */
static pthread_once_t levels_once = PTHREAD_ONCE_INIT;

static void probe_levels(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* F16C from CPUID itself: clang before 15 rejects "f16c" here. */
    unsigned a, b, c, d;
    int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    levels_ok[0] = avx2;
    levels_ok[1] = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512vl");
#elif defined(__aarch64__)
    levels_ok[2] = 1; /* Advanced SIMD is mandatory on aarch64 */
#endif
}

/* 1 if this CPU (and OS) can run kernels of that level. */
static int cpu_has_level(int isa) {
    pthread_once(&levels_once, probe_levels);
    if (isa == HIVE_ISA_AVX2) return levels_ok[0];
    if (isa == HIVE_ISA_AVX512) return levels_ok[1];
    if (isa == HIVE_ISA_NEON) return levels_ok[2];
    return isa == HIVE_ISA_REF;
}

/* SIMD levels to try, best first, for a requested level: AVX-512 then AVX2
 * on x86; NEON stands alone. */
static int first_simd_level(int isa) {
    if (isa == HIVE_ISA_AVX512 || isa == HIVE_ISA_AVX2 || isa == HIVE_ISA_NEON) return isa;
    return HIVE_ISA_REF;
}

/* The level below lv to try next (REF: stop). */
static int next_simd_level(int lv) { return lv == HIVE_ISA_NEON ? HIVE_ISA_REF : lv - 1; }

static quant_vec_dot_fn simd_vec_dot(int type, int lv) {
    return lv == HIVE_ISA_NEON ? kern_arm_k_vec_dot(type) : kern_x86_k_vec_dot(type, lv);
}

size_t quant_k_block_bytes(int type) {
    const struct kquant_type *t = kquant_lookup(type);
    return t ? t->block_bytes : 0;
}

quant_dequant_fn quant_k_dequant(int type) {
    const struct kquant_type *t = kquant_lookup(type);
    return t ? t->dequant : NULL;
}

quant_quant_fn quant_k_quant_isa(int type, int isa) {
    const struct kquant_type *t = kquant_lookup(type);
    if (!t) return NULL;
    for (int lv = first_simd_level(isa); lv > HIVE_ISA_REF; lv = next_simd_level(lv)) {
        quant_quant_fn fn = !cpu_has_level(lv)       ? NULL
                            : lv == HIVE_ISA_NEON ? kern_arm_k_quant(type)
                                                  : kern_x86_k_quant(type, lv);
        if (fn) return fn;
    }
    return t->quant;
}

quant_quant_fn quant_k_quant(int type) {
    /* only q8_k has SIMD quantizers, and they are bit-identical to the reference */
#if defined(__aarch64__)
    return quant_k_quant_isa(type, HIVE_ISA_NEON);
#else
    return quant_k_quant_isa(type, HIVE_ISA_AVX512);
#endif
}

quant_vec_dot_fn quant_k_vec_dot(int type, int isa) {
    const struct kquant_type *t = kquant_lookup(type);
    if (!t || !t->vec_dot) return NULL;
    for (int lv = first_simd_level(isa); lv > HIVE_ISA_REF; lv = next_simd_level(lv)) {
        quant_vec_dot_fn fn = cpu_has_level(lv) ? simd_vec_dot(type, lv) : NULL;
        if (fn) return fn;
    }
    return t->vec_dot;
}

quant_vec_dot_toks_fn quant_k_vec_dot_toks(int type, int isa) {
    const struct kquant_type *t = kquant_lookup(type);
    if (!t || !t->vec_dot) return NULL;
    /* the level quant_k_vec_dot settles on, then its twin there */
    for (int lv = first_simd_level(isa); lv > HIVE_ISA_REF; lv = next_simd_level(lv)) {
        if (!cpu_has_level(lv) || !simd_vec_dot(type, lv)) continue;
        return lv == HIVE_ISA_NEON ? kern_arm_k_vec_dot_toks(type) : kern_x86_k_vec_dot_toks(type, lv);
    }
    return NULL;
}
