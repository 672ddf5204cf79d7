/* kern_arm.c - NEON kernels (aarch64, where Advanced SIMD is mandatory):
 * f32 / f16 / bf16 dots, the f32 -> q8_0 / q8_1 / q8_k activation quantizers, the
 * plain-NEON build of the integer dots (kern_arm_body.h), and the choice
 * between that build and the dotprod one (kern_arm_dotprod.c).
 *
 * The integer dots of every quantized type (legacy and k-quants) give the
 * bits of their _ref kernel, at both levels; the quantizers give the bytes of
 * theirs. Only the f32 / f16 / bf16 dots round differently from _ref (four
 * vector accumulators instead of one serial sum).
 *
 * dotprod (vdotq_s32, optional from armv8.2-a) is asked of the kernel with
 * getauxval(AT_HWCAP) & HWCAP_ASIMDDP; the library itself is built for plain
 * armv8-a, so it runs on a Raspberry Pi 3 / 4 (Cortex-A53 / A72, no dotprod)
 * as well as on an Apple M1 or a Pi 5. */
#include "kern.h"

#if defined(__aarch64__)

#include <arm_neon.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/auxv.h>

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20) /* Linux arch/arm64 uapi hwcap.h */
#endif

/* ==== the plain build of the integer dots ==== */

/* 16 int8 products as int16 (exact: |a * b| <= 2^14), added pairwise into int32. */
#define KA_DOT16(acc, a, b)                                                                                        \
    do {                                                                                                           \
        (acc) = vpadalq_s16((acc), vmull_s8(vget_low_s8(a), vget_low_s8(b)));                                      \
        (acc) = vpadalq_s16((acc), vmull_high_s8((a), (b)));                                                       \
    } while (0)
#define KA_NAME(x) x##_neon
#include "kern_arm_body.h"

/* ==== dotprod: detection and switch ==== */

static atomic_int dotprod_state = -1; /* -1: not decided yet; 0: plain; 1: dotprod */

int kern_arm_dotprod_hw(void) {
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) && kern_arm_vec_dot_dotprod(HIVE_TYPE_Q4_0) != NULL;
}

static int dotprod_on(void) {
    int s = atomic_load(&dotprod_state);
    if (s < 0) { /* racing first callers all store the same value */
        const char *env = getenv("HIVE_NEON_DOTPROD");
        s = kern_arm_dotprod_hw() && !(env && !strcmp(env, "0"));
        atomic_store(&dotprod_state, s);
    }
    return s;
}

int kern_arm_use_dotprod(int on) {
    int s = on && kern_arm_dotprod_hw();
    atomic_store(&dotprod_state, s);
    return s;
}

/* ==== f32 / f16 / bf16 ==== */

enum { KA_F32, KA_F16, KA_BF16 };

/* 4 weights from p + i as floats. */
static inline __attribute__((always_inline)) float32x4_t load4_w(int kind, const void *p, int64_t i) {
    if (kind == KA_F32) return vld1q_f32((const float *)p + i);
    uint16x4_t h = vld1_u16((const uint16_t *)p + i);
    if (kind == KA_F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); /* bf16: the top half of an f32 */
}

static inline __attribute__((always_inline)) float load1_w(int kind, const void *p, int64_t i) {
    if (kind == KA_F32) return ((const float *)p)[i];
    uint16_t h = ((const uint16_t *)p)[i];
    return kind == KA_F16 ? kern_f16_to_f32(h) : kern_bf16_to_f32(h);
}

/* *s = sum_i w[i] * y[i]: four accumulators of four lanes, then the tail in
 * order; a fixed order for every n, so a row always gives the same bits. */
static inline __attribute__((always_inline)) void dot_float(int kind, int64_t n, float *s, const void *w,
                                                            const float *y) {
    float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++) acc[k] = vfmaq_f32(acc[k], load4_w(kind, w, i + 4 * k), vld1q_f32(y + i + 4 * k));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    for (; i < n; i++) sum += load1_w(kind, w, i) * y[i];
    *s = sum;
}

static void vec_dot_f32_f32_neon(int64_t n, float *s, const void *x, const void *y) { dot_float(KA_F32, n, s, x, y); }
static void vec_dot_f16_f32_neon(int64_t n, float *s, const void *x, const void *y) { dot_float(KA_F16, n, s, x, y); }
static void vec_dot_bf16_f32_neon(int64_t n, float *s, const void *x, const void *y) { dot_float(KA_BF16, n, s, x, y); }

/* ==== activation quantizers: the bytes of kern_quant_block_q8 ==== */

/* One block of 32: amax with maxnm (ignores nan, as fmaxf), the same float
 * multiply, round to nearest even (fcvtns; nan gives 0) clamped to +-127.
 * Returns sum(q). */
static int quant_block_q8_neon(const float *x, uint16_t *d, int8_t qs[32]) {
    float32x4_t v[8], amax4 = vdupq_n_f32(0.0f);
    for (int k = 0; k < 8; k++) {
        v[k] = vld1q_f32(x + 4 * k);
        amax4 = vmaxnmq_f32(amax4, vabsq_f32(v[k]));
    }
    float amax = vmaxnmvq_f32(amax4);
    float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    const int32x4_t lo = vdupq_n_s32(-127), hi = vdupq_n_s32(127);
    int32x4_t sum = vdupq_n_s32(0);
    int16x8_t h[4];
    for (int k = 0; k < 8; k += 2) {
        int32x4_t q0 = vminq_s32(vmaxq_s32(vcvtnq_s32_f32(vmulq_n_f32(v[k], id)), lo), hi);
        int32x4_t q1 = vminq_s32(vmaxq_s32(vcvtnq_s32_f32(vmulq_n_f32(v[k + 1], id)), lo), hi);
        sum = vaddq_s32(sum, vaddq_s32(q0, q1));
        h[k / 2] = vcombine_s16(vmovn_s32(q0), vmovn_s32(q1));
    }
    vst1q_s8(qs, vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1])));
    vst1q_s8(qs + 16, vcombine_s8(vmovn_s16(h[2]), vmovn_s16(h[3])));
    *d = kern_f32_to_f16(amax / 127.0f);
    return vaddvq_s32(sum);
}

static void quant_row_q8_0_neon(const float *src, void *dst, int64_t k) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) quant_block_q8_neon(src + i * QK_LEGACY, &b[i].d, b[i].qs);
}

static void quant_row_q8_1_neon(const float *src, void *dst, int64_t k) {
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        int sum = quant_block_q8_neon(src + i * QK_LEGACY, &b[i].d, b[i].qs);
        b[i].s = kern_f32_to_f16(kern_f16_to_f32(b[i].d) * (float)sum);
    }
}

/* q8_k (quant_row_q8_k_ref's bytes): max = the first value of largest
 * magnitude, iscale = -127 / max, q = min(127, round_even(iscale * x)) with
 * nan -> 127 and below -128 -> -128, d = 1 / iscale; bsums per 16. */
static void quant_row_q8_k_neon(const float *src, void *dst, int64_t k) {
    block_q8_k *b = dst;
    for (int64_t i = 0; i < k / QK_K; i++, b++, src += QK_K) {
        float32x4_t amax4 = vdupq_n_f32(0.0f);
        for (int j = 0; j < QK_K; j += 4) amax4 = vmaxnmq_f32(amax4, vabsq_f32(vld1q_f32(src + j)));
        float amax = vmaxnmvq_f32(amax4);
        if (!(amax > 0.0f)) {
            if (amax == 0.0f) memset(b, 0, sizeof *b); /* as the reference, also for a block of quiet nans */
            else quant_row_q8_k_ref(src, b, QK_K); /* a signalling nan made amax nan: let _ref decide */
            continue;
        }
        int first = 0; /* maxnm returned one of the |x| exactly, so the scan finds it */
        while (first < QK_K - 1 && !(fabsf(src[first]) == amax)) first++;
        const float iscale = -127.0f / src[first];
        const float32x4_t top = vdupq_n_f32(127.0f), bottom = vdupq_n_f32(-128.0f);
        for (int j = 0; j < QK_K; j += 16) {
            int16x8_t h[2];
            for (int k2 = 0; k2 < 2; k2++) {
                int32x4_t q[2];
                for (int l = 0; l < 2; l++) {
                    float32x4_t r = vrndnq_f32(vmulq_n_f32(vld1q_f32(src + j + 8 * k2 + 4 * l), iscale));
                    int32x4_t v = vcvtq_s32_f32(r); /* exact: r is integral (or saturated, then replaced) */
                    v = vbslq_s32(vcgeq_f32(r, bottom), v, vdupq_n_s32(-128));
                    q[l] = vbslq_s32(vcltq_f32(r, top), v, vdupq_n_s32(127)); /* nan: not < 127 */
                }
                h[k2] = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
            }
            vst1q_s8(b->qs + j, vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1])));
            b->bsums[j / 16] = (int16_t)vaddlvq_s8(vld1q_s8(b->qs + j));
        }
        b->d = 1.0f / iscale;
    }
}

/* ==== tables ==== */

quant_vec_dot_fn kern_arm_vec_dot(int wtype, int isa) {
    if (isa != HIVE_ISA_NEON) return NULL;
    switch (wtype) {
    case HIVE_TYPE_F32: return vec_dot_f32_f32_neon;
    case HIVE_TYPE_F16: return vec_dot_f16_f32_neon;
    case HIVE_TYPE_BF16: return vec_dot_bf16_f32_neon;
    default: return dotprod_on() ? kern_arm_vec_dot_dotprod(wtype) : kern_arm_vec_dot_neon(wtype);
    }
}

kern_vec_dot_rows_fn kern_arm_vec_dot_rows(int wtype, int isa) {
    if (isa != HIVE_ISA_NEON) return NULL;
    return dotprod_on() ? kern_arm_vec_dot_rows_dotprod(wtype) : kern_arm_vec_dot_rows_neon(wtype);
}

quant_vec_dot_toks_fn kern_arm_vec_dot_toks(int wtype, int isa) {
    if (isa != HIVE_ISA_NEON) return NULL;
    return dotprod_on() ? kern_arm_vec_dot_toks_dotprod(wtype) : kern_arm_vec_dot_toks_neon(wtype);
}

quant_quant_fn kern_arm_quant(int type, int isa) {
    if (isa == HIVE_ISA_NEON && type == HIVE_TYPE_Q8_0) return quant_row_q8_0_neon;
    if (isa == HIVE_ISA_NEON && type == HIVE_TYPE_Q8_1) return quant_row_q8_1_neon;
    return NULL;
}

quant_vec_dot_fn kern_arm_k_vec_dot(int wtype) { return kern_arm_vec_dot(wtype, HIVE_ISA_NEON); }

quant_quant_fn kern_arm_k_quant(int type) { return type == HIVE_TYPE_Q8_K ? quant_row_q8_k_neon : NULL; }

quant_vec_dot_toks_fn kern_arm_k_vec_dot_toks(int wtype) { return kern_arm_vec_dot_toks(wtype, HIVE_ISA_NEON); }

#else /* not aarch64: no NEON kernels */

quant_vec_dot_fn kern_arm_vec_dot(int wtype, int isa) {
    (void)wtype, (void)isa;
    return NULL;
}

kern_vec_dot_rows_fn kern_arm_vec_dot_rows(int wtype, int isa) {
    (void)wtype, (void)isa;
    return NULL;
}

quant_vec_dot_toks_fn kern_arm_vec_dot_toks(int wtype, int isa) {
    (void)wtype, (void)isa;
    return NULL;
}

quant_quant_fn kern_arm_quant(int type, int isa) {
    (void)type, (void)isa;
    return NULL;
}

quant_vec_dot_fn kern_arm_k_vec_dot(int wtype) {
    (void)wtype;
    return NULL;
}

quant_vec_dot_toks_fn kern_arm_k_vec_dot_toks(int wtype) {
    (void)wtype;
    return NULL;
}

quant_quant_fn kern_arm_k_quant(int type) {
    (void)type;
    return NULL;
}

int kern_arm_dotprod_hw(void) { return 0; }

int kern_arm_use_dotprod(int on) {
    (void)on;
    return 0;
}

#endif
