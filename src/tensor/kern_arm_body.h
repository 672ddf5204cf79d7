/* kern_arm_body.h - the NEON integer-dot kernels, written once and compiled
 * twice: by kern_arm.c with plain Advanced SIMD (armv8-a) and by
 * kern_arm_dotprod.c with -march=armv8.2-a+dotprod. Not a module door: only
 * those two files include it, after defining
 *   KA_DOT16(acc, a, b)  int32x4_t acc plus the 16 products a[i] * b[i]
 *                        (int8x16_t operands), in any lane arrangement
 *   KA_NAME(x)           x with the level's suffix (x##_neon, x##_dotprod)
 *
 * Scheme: for each weight block (32 elements for the legacy formats, 256 for
 * the k-quants) the codes are unpacked once into int8 vectors, then for each
 * activation row (token) the block's integer sum is computed exactly (every
 * product fits in int16, every sum in int32, whatever the lane order) and
 * turned into float with exactly the expression of the reference kernel, in
 * the same block order. So every result has the bits of _ref, and a fortiori
 * the one-row, several-row and several-token forms agree bit for bit, as do
 * the plain and dotprod levels (nodes of a cluster may differ in dotprod).
 * The float work is one scalar chain per (row, token); it is short next to
 * the integer work of a block, and the several-row / several-token forms run
 * KERN_ROWS or QUANT_TOKS independent chains.
 *
 * Element order of each format: see kern.h (legacy) and quant_k.h (k-quants). */
#ifndef KA_NAME
#error "kern_arm_body.h is included by kern_arm.c and kern_arm_dotprod.c only"
#endif

#include <arm_neon.h>

#define KA_INLINE static inline __attribute__((always_inline))

/* int32 sum of the 16 products a[i] * b[i]. */
KA_INLINE int32_t KA_NAME(ka_dot16)(int8x16_t a, int8x16_t b) {
    int32x4_t acc = vdupq_n_s32(0);
    KA_DOT16(acc, a, b);
    return vaddvq_s32(acc);
}

/* f16 -> f32 in one instruction; exact, as kern_f16_to_f32. */
KA_INLINE float KA_NAME(ka_f16)(uint16_t h) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* ==== legacy formats: blocks of 32 ==== */

/* One weight block unpacked: elements 0..15 in q[0], 16..31 in q[1]. */
struct KA_NAME(ka_leg) {
    int8x16_t q[2];
    float d, m; /* m: the q4_1 / q5_1 offset (0 for the symmetric formats) */
};

/* Bit j of the u32 qh as 0x10 in byte j (bit 4 of a q5 code), bytes 0..15 (half 0) or 16..31 (half 1). */
KA_INLINE uint8x16_t KA_NAME(ka_q5_high)(const uint8_t qh[4], int half) {
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t bytes = vcombine_u8(vdup_n_u8(qh[2 * half]), vdup_n_u8(qh[2 * half + 1]));
    return vandq_u8(vtstq_u8(bytes, vld1q_u8(bit)), vdupq_n_u8(0x10));
}

/* Unpacks block i of a row of weight type wtype; offset is subtracted from every code. */
KA_INLINE void KA_NAME(ka_leg_unpack)(int wtype, const uint8_t *row, int64_t i, struct KA_NAME(ka_leg) *u) {
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    uint8x16_t lo, hi;
    int offset = 0;
    u->m = 0.0f;
    switch (wtype) {
    case HIVE_TYPE_Q8_0: {
        const block_q8_0 *b = (const block_q8_0 *)row + i;
        u->d = KA_NAME(ka_f16)(b->d);
        u->q[0] = vld1q_s8(b->qs);
        u->q[1] = vld1q_s8(b->qs + 16);
        return;
    }
    case HIVE_TYPE_Q4_0: {
        const block_q4_0 *b = (const block_q4_0 *)row + i;
        uint8x16_t v = vld1q_u8(b->qs);
        u->d = KA_NAME(ka_f16)(b->d);
        lo = vandq_u8(v, low4), hi = vshrq_n_u8(v, 4), offset = 8;
        break;
    }
    case HIVE_TYPE_Q4_1: {
        const block_q4_1 *b = (const block_q4_1 *)row + i;
        uint8x16_t v = vld1q_u8(b->qs);
        u->d = KA_NAME(ka_f16)(b->d), u->m = KA_NAME(ka_f16)(b->m);
        lo = vandq_u8(v, low4), hi = vshrq_n_u8(v, 4);
        break;
    }
    case HIVE_TYPE_Q5_0: {
        const block_q5_0 *b = (const block_q5_0 *)row + i;
        uint8x16_t v = vld1q_u8(b->qs);
        u->d = KA_NAME(ka_f16)(b->d);
        lo = vorrq_u8(vandq_u8(v, low4), KA_NAME(ka_q5_high)(b->qh, 0));
        hi = vorrq_u8(vshrq_n_u8(v, 4), KA_NAME(ka_q5_high)(b->qh, 1));
        offset = 16;
        break;
    }
    default: { /* HIVE_TYPE_Q5_1 */
        const block_q5_1 *b = (const block_q5_1 *)row + i;
        uint8x16_t v = vld1q_u8(b->qs);
        u->d = KA_NAME(ka_f16)(b->d), u->m = KA_NAME(ka_f16)(b->m);
        lo = vorrq_u8(vandq_u8(v, low4), KA_NAME(ka_q5_high)(b->qh, 0));
        hi = vorrq_u8(vshrq_n_u8(v, 4), KA_NAME(ka_q5_high)(b->qh, 1));
        break;
    }
    }
    u->q[0] = vsubq_s8(vreinterpretq_s8_u8(lo), vdupq_n_s8((int8_t)offset));
    u->q[1] = vsubq_s8(vreinterpretq_s8_u8(hi), vdupq_n_s8((int8_t)offset));
}

/* The block's term of the dot with block i of activation row y (q8_0 or
 * q8_1, whichever wtype dots with): the reference's expression (kern.h). */
KA_INLINE float KA_NAME(ka_leg_term)(int wtype, const struct KA_NAME(ka_leg) *u, const uint8_t *y, int64_t i) {
    int affine = wtype == HIVE_TYPE_Q4_1 || wtype == HIVE_TYPE_Q5_1;
    const int8_t *qs = affine ? ((const block_q8_1 *)y)[i].qs : ((const block_q8_0 *)y)[i].qs;
    uint16_t dy = affine ? ((const block_q8_1 *)y)[i].d : ((const block_q8_0 *)y)[i].d;
    int32x4_t acc = vdupq_n_s32(0);
    KA_DOT16(acc, u->q[0], vld1q_s8(qs));
    KA_DOT16(acc, u->q[1], vld1q_s8(qs + 16));
    int isum = vaddvq_s32(acc);
    if (!affine) return kern_block_sum_0(isum, u->d, KA_NAME(ka_f16)(dy));
    return kern_block_sum_1(isum, u->d, KA_NAME(ka_f16)(dy), u->m, KA_NAME(ka_f16)(((const block_q8_1 *)y)[i].s));
}

/* s[t * s_stride + r] = row r . activation t for r < nr, t < nt (1..KERN_ROWS
 * rows, 1..QUANT_TOKS tokens; one of them is 1). */
KA_INLINE void KA_NAME(ka_leg_dot)(int wtype, int64_t n, float *s, int64_t s_stride, const uint8_t *x,
                                    size_t x_stride, int nr, const uint8_t *y, size_t y_stride, int nt) {
    float sum[KERN_ROWS][QUANT_TOKS];
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) sum[r][t] = 0.0f;
    for (int64_t i = 0; i < n / QK_LEGACY; i++)
        for (int r = 0; r < nr; r++) {
            struct KA_NAME(ka_leg) u;
            KA_NAME(ka_leg_unpack)(wtype, x + (size_t)r * x_stride, i, &u);
            for (int t = 0; t < nt; t++) sum[r][t] += KA_NAME(ka_leg_term)(wtype, &u, y + (size_t)t * y_stride, i);
        }
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) s[t * s_stride + r] = sum[r][t];
}

/* The three forms of each legacy type; nr / nt are made constants, so each
 * count gets its own unrolled copy. */
#define KA_LEG(type, TYPE)                                                                                         \
    static void KA_NAME(vec_dot_##type)(int64_t n, float *s, const void *x, const void *y) {                       \
        KA_NAME(ka_leg_dot)(TYPE, n, s, 1, x, 0, 1, y, 0, 1);                                                       \
    }                                                                                                              \
    static void KA_NAME(vec_dot_rows_##type)(int64_t n, float *s, const void *x, size_t x_stride, const void *y,   \
                                             int nr) {                                                             \
        switch (nr) {                                                                                              \
        case 4: KA_NAME(ka_leg_dot)(TYPE, n, s, 1, x, x_stride, 4, y, 0, 1); break;                                 \
        case 3: KA_NAME(ka_leg_dot)(TYPE, n, s, 1, x, x_stride, 3, y, 0, 1); break;                                 \
        case 2: KA_NAME(ka_leg_dot)(TYPE, n, s, 1, x, x_stride, 2, y, 0, 1); break;                                 \
        default: KA_NAME(ka_leg_dot)(TYPE, n, s, 1, x, x_stride, 1, y, 0, 1); break;                                \
        }                                                                                                          \
    }                                                                                                              \
    static void KA_NAME(vec_dot_toks_##type)(int64_t n, float *s, int64_t s_stride, const void *x, size_t x_stride, \
                                             int nr, const void *y, size_t y_stride, int nt) {                     \
        (void)nr; /* QUANT_TOK_ROWS is 1 */                                                                        \
        if (nt == QUANT_TOKS) KA_NAME(ka_leg_dot)(TYPE, n, s, s_stride, x, x_stride, 1, y, y_stride, QUANT_TOKS);   \
        else KA_NAME(ka_leg_dot)(TYPE, n, s, s_stride, x, x_stride, 1, y, y_stride, nt);                            \
    }
_Static_assert(KERN_ROWS == 4 && QUANT_TOK_ROWS == 1, "the switches above cover every row count");

KA_LEG(q4_0, HIVE_TYPE_Q4_0)
KA_LEG(q4_1, HIVE_TYPE_Q4_1)
KA_LEG(q5_0, HIVE_TYPE_Q5_0)
KA_LEG(q5_1, HIVE_TYPE_Q5_1)
KA_LEG(q8_0, HIVE_TYPE_Q8_0)

/* ==== k-quants: super-blocks of 256 ==== */

/* One weight super-block unpacked: codes as int8 (offsets of the signed
 * formats applied), one scale and one min per 16 elements. */
struct KA_NAME(ka_k) {
    int8x16_t q[16]; /* q[g]: elements 16g .. 16g+15 */
    int32_t sc[16], mn[16];
    float d, dmin;
};

/* Unpacks super-block i of a row of weight type wtype (layouts: quant_k.h). */
KA_INLINE void KA_NAME(ka_k_unpack)(int wtype, const uint8_t *row, int64_t i, struct KA_NAME(ka_k) *u) {
    const uint8x16_t low4 = vdupq_n_u8(0x0f), three = vdupq_n_u8(3);
    switch (wtype) {
    case HIVE_TYPE_Q2_K: {
        const block_q2_k *b = (const block_q2_k *)row + i;
        u->d = KA_NAME(ka_f16)(b->d), u->dmin = KA_NAME(ka_f16)(b->dmin);
        for (int g = 0; g < 16; g++) u->sc[g] = b->scales[g] & 15, u->mn[g] = b->scales[g] >> 4;
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 2; k++) { /* elements 128h + 32j + 16k + l of qs[32h + 16k + l] */
                uint8x16_t v = vld1q_u8(b->qs + 32 * h + 16 * k);
                u->q[8 * h + 0 + k] = vreinterpretq_s8_u8(vandq_u8(v, three));
                u->q[8 * h + 2 + k] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 2), three));
                u->q[8 * h + 4 + k] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 4), three));
                u->q[8 * h + 6 + k] = vreinterpretq_s8_u8(vshrq_n_u8(v, 6));
            }
        return;
    }
    case HIVE_TYPE_Q3_K: {
        const block_q3_k *b = (const block_q3_k *)row + i;
        int8_t sc[16];
        quant_k_unpack_scales_q3(b->scales, sc);
        u->d = KA_NAME(ka_f16)(b->d), u->dmin = 0.0f;
        for (int g = 0; g < 16; g++) u->sc[g] = sc[g], u->mn[g] = 0;
        for (int k = 0; k < 2; k++) {
            uint8x16_t hm = vld1q_u8(b->hmask + 16 * k);
            for (int h = 0; h < 2; h++) {
                uint8x16_t v = vld1q_u8(b->qs + 32 * h + 16 * k);
                for (int j = 0; j < 4; j++) { /* low2 + 4 * hbit - 4 */
                    uint8x16_t low = vandq_u8(vshlq_u8(v, vdupq_n_s8((int8_t)(-2 * j))), three);
                    uint8x16_t high = vandq_u8(vtstq_u8(hm, vdupq_n_u8((uint8_t)(1u << (4 * h + j)))), vdupq_n_u8(4));
                    u->q[8 * h + 2 * j + k] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low, high)), vdupq_n_s8(4));
                }
            }
        }
        return;
    }
    case HIVE_TYPE_Q4_K:
    case HIVE_TYPE_Q5_K: {
        const block_q4_k *b4 = (const block_q4_k *)row + i;
        const block_q5_k *b5 = (const block_q5_k *)row + i;
        int five = wtype == HIVE_TYPE_Q5_K;
        const uint8_t *qs = five ? b5->qs : b4->qs;
        uint8_t sc[8], m[8];
        quant_k_unpack_scales_q4(five ? b5->scales : b4->scales, sc, m);
        u->d = KA_NAME(ka_f16)(five ? b5->d : b4->d), u->dmin = KA_NAME(ka_f16)(five ? b5->dmin : b4->dmin);
        for (int g = 0; g < 16; g++) u->sc[g] = sc[g / 2], u->mn[g] = m[g / 2];
        for (int c = 0; c < 4; c++)
            for (int k = 0; k < 2; k++) { /* elements 64c + 16k + l (low nibble), +32 (high nibble) */
                uint8x16_t v = vld1q_u8(qs + 32 * c + 16 * k);
                uint8x16_t lo = vandq_u8(v, low4), hi = vshrq_n_u8(v, 4);
                if (five) { /* bit e/32 of qh[e % 32] */
                    uint8x16_t qh = vld1q_u8(b5->qh + 16 * k), sixteen = vdupq_n_u8(16);
                    lo = vorrq_u8(lo, vandq_u8(vtstq_u8(qh, vdupq_n_u8((uint8_t)(1u << (2 * c)))), sixteen));
                    hi = vorrq_u8(hi, vandq_u8(vtstq_u8(qh, vdupq_n_u8((uint8_t)(2u << (2 * c)))), sixteen));
                }
                u->q[4 * c + k] = vreinterpretq_s8_u8(lo);
                u->q[4 * c + 2 + k] = vreinterpretq_s8_u8(hi);
            }
        return;
    }
    default: { /* HIVE_TYPE_Q6_K */
        const block_q6_k *b = (const block_q6_k *)row + i;
        u->d = KA_NAME(ka_f16)(b->d), u->dmin = 0.0f;
        for (int g = 0; g < 16; g++) u->sc[g] = b->scales[g], u->mn[g] = 0;
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 2; k++) { /* l = 16k..16k+15: elements 128h + l, +32, +64, +96 */
                uint8x16_t la = vld1q_u8(b->ql + 64 * h + 16 * k), lb = vld1q_u8(b->ql + 64 * h + 32 + 16 * k);
                uint8x16_t qh = vld1q_u8(b->qh + 32 * h + 16 * k);
                uint8x16_t v0 = vorrq_u8(vandq_u8(la, low4), vshlq_n_u8(vandq_u8(qh, three), 4));
                uint8x16_t v1 = vorrq_u8(vandq_u8(lb, low4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 2), three), 4));
                uint8x16_t v2 = vorrq_u8(vshrq_n_u8(la, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 4), three), 4));
                uint8x16_t v3 = vorrq_u8(vshrq_n_u8(lb, 4), vshlq_n_u8(vshrq_n_u8(qh, 6), 4));
                const int8x16_t off = vdupq_n_s8(32);
                u->q[8 * h + 0 + k] = vsubq_s8(vreinterpretq_s8_u8(v0), off);
                u->q[8 * h + 2 + k] = vsubq_s8(vreinterpretq_s8_u8(v1), off);
                u->q[8 * h + 4 + k] = vsubq_s8(vreinterpretq_s8_u8(v2), off);
                u->q[8 * h + 6 + k] = vsubq_s8(vreinterpretq_s8_u8(v3), off);
            }
        return;
    }
    }
}

/* The super-block's term of the dot with q8_k block y: the reference's
 * expression (quant_k.h) on the exact sums sumi = sum_g sc_g * (q . y)_g
 * and summ = sum_g mn_g * bsums_g. */
KA_INLINE float KA_NAME(ka_k_term)(int wtype, const struct KA_NAME(ka_k) *u, const block_q8_k *y) {
    int32x4_t acc = vdupq_n_s32(0);
    for (int g = 0; g < 16; g++) {
        int32x4_t p = vdupq_n_s32(0);
        KA_DOT16(p, u->q[g], vld1q_s8(y->qs + 16 * g));
        acc = vmlaq_n_s32(acc, p, u->sc[g]);
    }
    int sumi = vaddvq_s32(acc);
    if (wtype == HIVE_TYPE_Q3_K || wtype == HIVE_TYPE_Q6_K) return quant_k_block_sum_sym(y->d, u->d, sumi);
    int summ = 0;
    for (int g = 0; g < 16; g++) summ += u->mn[g] * y->bsums[g];
    return quant_k_block_sum_affine(y->d, u->d, u->dmin, sumi, summ);
}

/* s[t * s_stride] = row . activation t for t < nt (1..QUANT_TOKS). */
KA_INLINE void KA_NAME(ka_k_dot)(int wtype, int64_t n, float *s, int64_t s_stride, const uint8_t *x,
                                  const uint8_t *y, size_t y_stride, int nt) {
    float sum[QUANT_TOKS];
    for (int t = 0; t < nt; t++) sum[t] = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        struct KA_NAME(ka_k) u;
        KA_NAME(ka_k_unpack)(wtype, x, i, &u);
        for (int t = 0; t < nt; t++)
            sum[t] += KA_NAME(ka_k_term)(wtype, &u, (const block_q8_k *)(y + (size_t)t * y_stride) + i);
    }
    for (int t = 0; t < nt; t++) s[t * s_stride] = sum[t];
}

#define KA_K(type, TYPE)                                                                                           \
    static void KA_NAME(vec_dot_##type)(int64_t n, float *s, const void *x, const void *y) {                       \
        KA_NAME(ka_k_dot)(TYPE, n, s, 1, x, y, 0, 1);                                                               \
    }                                                                                                              \
    static void KA_NAME(vec_dot_toks_##type)(int64_t n, float *s, int64_t s_stride, const void *x, size_t x_stride, \
                                             int nr, const void *y, size_t y_stride, int nt) {                     \
        (void)nr, (void)x_stride; /* QUANT_TOK_ROWS is 1 */                                                        \
        if (nt == QUANT_TOKS) KA_NAME(ka_k_dot)(TYPE, n, s, s_stride, x, y, y_stride, QUANT_TOKS);                  \
        else KA_NAME(ka_k_dot)(TYPE, n, s, s_stride, x, y, y_stride, nt);                                           \
    }

KA_K(q2_k, HIVE_TYPE_Q2_K)
KA_K(q3_k, HIVE_TYPE_Q3_K)
KA_K(q4_k, HIVE_TYPE_Q4_K)
KA_K(q5_k, HIVE_TYPE_Q5_K)
KA_K(q6_k, HIVE_TYPE_Q6_K)

/* ==== this level's table ==== */

quant_vec_dot_fn KA_NAME(kern_arm_vec_dot)(int wtype) {
    switch (wtype) {
    case HIVE_TYPE_Q4_0: return KA_NAME(vec_dot_q4_0);
    case HIVE_TYPE_Q4_1: return KA_NAME(vec_dot_q4_1);
    case HIVE_TYPE_Q5_0: return KA_NAME(vec_dot_q5_0);
    case HIVE_TYPE_Q5_1: return KA_NAME(vec_dot_q5_1);
    case HIVE_TYPE_Q8_0: return KA_NAME(vec_dot_q8_0);
    case HIVE_TYPE_Q2_K: return KA_NAME(vec_dot_q2_k);
    case HIVE_TYPE_Q3_K: return KA_NAME(vec_dot_q3_k);
    case HIVE_TYPE_Q4_K: return KA_NAME(vec_dot_q4_k);
    case HIVE_TYPE_Q5_K: return KA_NAME(vec_dot_q5_k);
    case HIVE_TYPE_Q6_K: return KA_NAME(vec_dot_q6_k);
    default: return NULL;
    }
}

kern_vec_dot_rows_fn KA_NAME(kern_arm_vec_dot_rows)(int wtype) {
    switch (wtype) {
    case HIVE_TYPE_Q4_0: return KA_NAME(vec_dot_rows_q4_0);
    case HIVE_TYPE_Q4_1: return KA_NAME(vec_dot_rows_q4_1);
    case HIVE_TYPE_Q5_0: return KA_NAME(vec_dot_rows_q5_0);
    case HIVE_TYPE_Q5_1: return KA_NAME(vec_dot_rows_q5_1);
    case HIVE_TYPE_Q8_0: return KA_NAME(vec_dot_rows_q8_0);
    default: return NULL;
    }
}

quant_vec_dot_toks_fn KA_NAME(kern_arm_vec_dot_toks)(int wtype) {
    switch (wtype) {
    case HIVE_TYPE_Q4_0: return KA_NAME(vec_dot_toks_q4_0);
    case HIVE_TYPE_Q4_1: return KA_NAME(vec_dot_toks_q4_1);
    case HIVE_TYPE_Q5_0: return KA_NAME(vec_dot_toks_q5_0);
    case HIVE_TYPE_Q5_1: return KA_NAME(vec_dot_toks_q5_1);
    case HIVE_TYPE_Q8_0: return KA_NAME(vec_dot_toks_q8_0);
    case HIVE_TYPE_Q2_K: return KA_NAME(vec_dot_toks_q2_k);
    case HIVE_TYPE_Q3_K: return KA_NAME(vec_dot_toks_q3_k);
    case HIVE_TYPE_Q4_K: return KA_NAME(vec_dot_toks_q4_k);
    case HIVE_TYPE_Q5_K: return KA_NAME(vec_dot_toks_q5_k);
    case HIVE_TYPE_Q6_K: return KA_NAME(vec_dot_toks_q6_k);
    default: return NULL;
    }
}
