/* kern_x86_k.c - AVX2 and AVX-512 kernels for the k-quant formats: dot
 * products of q2_k..q6_k weight rows with q8_k activations, and the q8_k
 * activation quantizer.
 *
 * Each function carries its own target attribute, so the library's baseline
 * stays plain x86-64; quant_k.c hands a kernel out only after CPUID says the
 * level is there (AVX2 = avx2+fma+f16c, AVX-512 = that + avx512f/bw/vl).
 * At the AVX-512 level q6_k uses 512-bit registers, q4_k/q5_k use 256-bit
 * ones with VNNI's vpdpwssd (measured faster on AMD Zen 4, which splits
 * 512-bit ops in two); without VNNI they fall back to the AVX2 kernels, and
 * q2_k/q3_k and the q8_k quantizer always do.
 *
 * Scheme shared by all dot kernels: a block's integer sum
 *   sumi = sum_groups scale_g * sum_{e in g} q_e * y_e
 * is exact in int32 (|sumi| < 2^31 for every format); maddubs multiplies the
 * unsigned weight codes with the signed q8_k values into int16 pairs (no
 * saturation: |pair| <= 2*63*128), madd (or vpdpwssd) applies the group
 * scale. Offsets of the signed formats (q3_k: -4, q6_k: -32) and the mins
 * of the affine ones (q2_k, q4_k, q5_k) come from q8_k's bsums. Per block, d_x*d_y*sumi is
 * accumulated in float, so results differ from the reference only by float
 * rounding. Element order of each format: see quant_k.h.
 *
 * At the AVX2 level hive_matmul runs q4_k and q6_k (decode and batches) on
 * the packed kernels of kern_x86_gemm_k_avx2.c, which sum in their own order;
 * the one-row q4_k / q6_k kernels here remain the vec_dot of that level (and
 * the AVX-512 level's fallback). The steps both use are in kern_x86_k_avx2.h.
 * Several-token twins exist at the AVX-512 VNNI level only. */
#include "quant_k.h"

#include "hive/tensor.h"
#include "kern_x86_k_avx2.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#define TARGET_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

TARGET_AVX2 static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TARGET_AVX2 static inline float hmax_avx2(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

TARGET_AVX2 static inline __m256i srl16_avx2(__m256i v, int bits) {
    return _mm256_srl_epi16(v, _mm_cvtsi32_si128(bits));
}

/* ================= q2_k ================= */

/* x (n,) q2_k . y (n,) q8_k -> *s */
TARGET_AVX2 static void vec_dot_q2_k_q8_k_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q2_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i low4 = _mm_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = y[i].d * _cvtsh_ss(x[i].d), dmin = y[i].d * _cvtsh_ss(x[i].dmin);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m128i scl = _mm_and_si128(sc8, low4), mn = _mm_and_si128(_mm_srli_epi16(sc8, 4), low4);
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)y[i].bsums);
        __m256i summ = _mm256_madd_epi16(bsums, _mm256_cvtepu8_epi16(mn));
        acc_m = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(summ), acc_m);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m128i sch = h ? _mm_unpackhi_epi64(scl, scl) : scl;
            __m256i scales16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sch));
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m256i qj = _mm256_and_si256(srl16_avx2(q, 2 * j), m3);
                sumi = _mm256_add_epi32(sumi, dot_chunk_avx2(qj, y[i].qs + 128 * h + 32 * j, scales16, j));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_avx2(acc) - hsum_avx2(acc_m);
}

/* ================= q3_k ================= */

/* The 16 signed scales of a q3_k block as bytes (layout in quant_k.h), from
 * the 12 scale bytes read as words w0 w1 w2: groups 0-3 low nibbles of w0,
 * 4-7 of w1, 8-11 high nibbles of w0, 12-15 of w1; top bits from w2 >> 0, 2,
 * 4, 6. Reads exactly 12 bytes (the block may end 2 bytes later). */
TARGET_AVX2 static inline __m128i scales_q3(const uint8_t *s) {
    int32_t w2;
    memcpy(&w2, s + 8, sizeof w2);
    const __m128i v = _mm_insert_epi32(_mm_loadl_epi64((const __m128i *)s), w2, 2);
    __m128i low = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 1, 0)); /* w0 w1 w0 w1 */
    __m128i high = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 2, 2, 2));
    low = _mm_and_si128(_mm_srlv_epi32(low, _mm_setr_epi32(0, 0, 4, 4)), _mm_set1_epi8(0x0f));
    high = _mm_and_si128(_mm_srlv_epi32(high, _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(0x03));
    return _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi32(high, 4)), _mm_set1_epi8(32));
}

/* x (n,) q3_k . y (n,) q8_k -> *s; codes taken as u = q + 4 in 0..7 */
TARGET_AVX2 static void vec_dot_q3_k_q8_k_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q3_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const __m128i sc = scales_q3(x[i].scales);
        const float d = y[i].d * _cvtsh_ss(x[i].d);
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)y[i].bsums);
        const __m256i corr = _mm256_madd_epi16(bsums, _mm256_cvtepi8_epi16(sc));
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i scales16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_unpackhi_epi64(sc, sc) : sc));
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m256i low = _mm256_and_si256(srl16_avx2(q, 2 * j), m3);
                __m256i high = _mm256_and_si256(srl16_avx2(hm, 4 * h + j), one);
                __m256i u = _mm256_or_si256(low, _mm256_slli_epi16(high, 2));
                sumi = _mm256_add_epi32(sumi, dot_chunk_avx2(u, y[i].qs + 128 * h + 32 * j, scales16, j));
            }
        }
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(corr, 2)); /* the -4 offset */
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_avx2(acc);
}

/* ================= q4_k / q5_k ================= */

/* x (n,) q4_k or q5_k (qh_off = offset of qh in the block, 0 = q4_k) . y (n,) q8_k */
TARGET_AVX2 static inline __attribute__((always_inline)) float
dot_q45_avx2(int64_t n, const uint8_t *xb, size_t block_bytes, size_t scales_off, size_t qh_off, size_t qs_off,
             const block_q8_k *y) {
    __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, xb += block_bytes) {
        __m128 dd;
        __m256i summ, sumi = block_sums_q45_avx2(xb, scales_off, qh_off, qs_off, &y[i], &dd, &summ);
        acc_m = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)), _mm256_cvtepi32_ps(summ), acc_m);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_avx2(acc) - hsum_avx2(acc_m);
}

TARGET_AVX2 static void vec_dot_q4_k_q8_k_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    *s = dot_q45_avx2(n, vx, sizeof(block_q4_k), offsetof(block_q4_k, scales), 0, offsetof(block_q4_k, qs), vy);
}

TARGET_AVX2 static void vec_dot_q5_k_q8_k_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    *s = dot_q45_avx2(n, vx, sizeof(block_q5_k), offsetof(block_q5_k, scales), offsetof(block_q5_k, qh),
                      offsetof(block_q5_k, qs), vy);
}

/* AVX-512 level, VNNI: the same 256-bit scheme with vpdpwssd fusing the
 * scale multiply and the accumulation. On AMD Zen 4 (512-bit ops run as two
 * 256-bit halves) this beats 512-bit variants, which only add shuffles. */
TARGET_VNNI static inline __attribute__((always_inline)) float
dot_q45_vnni(int64_t n, const uint8_t *xb, size_t block_bytes, size_t scales_off, size_t qh_off, size_t qs_off,
             const block_q8_k *y) {
    __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, xb += block_bytes) {
        __m128 dd;
        __m256i scales16, summ = prologue_q45(xb, scales_off, &y[i], &dd, &scales16);
        __m256i hbits = qh_off ? _mm256_loadu_si256((const __m256i *)(xb + qh_off)) : _mm256_setzero_si256();
        __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256(); /* two chains */
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256i p0, p1;
            products_q45_avx2(xb + qs_off, qh_off != 0, &hbits, y[i].qs, c, &p0, &p1);
            sum0 = _mm256_dpwssd_epi32(sum0, p0, group_scale_q45(scales16, c, 0));
            sum1 = _mm256_dpwssd_epi32(sum1, p1, group_scale_q45(scales16, c, 1));
        }
        acc_m = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)), _mm256_cvtepi32_ps(summ), acc_m);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(_mm256_add_epi32(sum0, sum1)), acc);
    }
    return hsum_avx2(acc) - hsum_avx2(acc_m);
}

TARGET_VNNI static void vec_dot_q4_k_q8_k_vnni(int64_t n, float *s, const void *vx, const void *vy) {
    *s = dot_q45_vnni(n, vx, sizeof(block_q4_k), offsetof(block_q4_k, scales), 0, offsetof(block_q4_k, qs), vy);
}

TARGET_VNNI static void vec_dot_q5_k_q8_k_vnni(int64_t n, float *s, const void *vx, const void *vy) {
    *s = dot_q45_vnni(n, vx, sizeof(block_q5_k), offsetof(block_q5_k, scales), offsetof(block_q5_k, qh),
                      offsetof(block_q5_k, qs), vy);
}

/* ================= q6_k ================= */

/* x (n,) q6_k . y (n,) q8_k -> *s; codes taken as u = q + 32 in 0..63 */
TARGET_AVX2 static void vec_dot_q6_k_q8_k_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q6_k *x = vx;
    const block_q8_k *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = y[i].d * _cvtsh_ss(x[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(block_sums_q6_k_avx2(&x[i], &y[i])), acc);
    }
    *s = hsum_avx2(acc);
}

/* AVX-512: per half, one zmm of ql gives elements 0..63 (low nibbles) and
 * 64..127 (high nibbles) of that half in order; each 128-bit lane of the
 * maddubs result is one group of 16. */
TARGET_AVX512 static void vec_dot_q6_k_q8_k_avx512(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q6_k *x = vx;
    const block_q8_k *y = vy;
    const __m512i low4 = _mm512_set1_epi8(0x0f), bits45 = _mm512_set1_epi8(0x30);
    /* int16 index j in 128-bit lane j: broadcasts scale j over its group */
    const __m512i lane_idx = _mm512_setr_epi32(0, 0, 0, 0, 0x10001, 0x10001, 0x10001, 0x10001, 0x20002, 0x20002,
                                               0x20002, 0x20002, 0x30003, 0x30003, 0x30003, 0x30003);
    const __m512i idx[4] = {lane_idx, _mm512_add_epi16(lane_idx, _mm512_set1_epi16(4)),
                            _mm512_add_epi16(lane_idx, _mm512_set1_epi16(8)),
                            _mm512_add_epi16(lane_idx, _mm512_set1_epi16(12))};
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = y[i].d * _cvtsh_ss(x[i].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales));
        const __m256i corr = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[i].bsums), sc16);
        const __m512i scales = _mm512_zextsi256_si512(sc16);
        __m512i sumi = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            __m512i ql = _mm512_loadu_si512(x[i].ql + 64 * h);
            __m256i hb = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            /* lower half: qh bits as stored, upper half: shifted by 2 */
            __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(hb), _mm256_srli_epi16(hb, 2), 1);
            __m512i ua = _mm512_or_si512(_mm512_and_si512(ql, low4),
                                         _mm512_and_si512(_mm512_slli_epi16(hh, 4), bits45));
            __m512i ub = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                         _mm512_and_si512(hh, bits45));
            __m512i pa = _mm512_maddubs_epi16(ua, _mm512_loadu_si512(y[i].qs + 128 * h));
            __m512i pb = _mm512_maddubs_epi16(ub, _mm512_loadu_si512(y[i].qs + 128 * h + 64));
            pa = _mm512_madd_epi16(pa, _mm512_permutexvar_epi16(idx[2 * h], scales));
            pb = _mm512_madd_epi16(pb, _mm512_permutexvar_epi16(idx[2 * h + 1], scales));
            sumi = _mm512_add_epi32(sumi, _mm512_add_epi32(pa, pb));
        }
        __m512i corr32 = _mm512_zextsi256_si512(_mm256_slli_epi32(corr, 5)); /* the -32 offset */
        sumi = _mm512_sub_epi32(sumi, corr32);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    *s = _mm512_reduce_add_ps(acc);
}

/* ============ several tokens per weight row (prefill, AVX-512 VNNI) ============
 * x (n,) . y_t (n,) for t < T tokens: each weight super-block is unpacked
 * once and used for all T tokens. Per token each kernel computes the same
 * exact int32 lanes as its one-token twin and then the same float steps
 * (fma into the same lanes, same final reduction), so every result has the
 * bits of the one-token vec_dot of the same type and level. */

#define TOKS_MAX 8
_Static_assert(QUANT_TOKS <= TOKS_MAX, "a case per token count");

/* q4_k, AVX-512 VNNI level: the twin of dot_q45_vnni (qh_off = 0). */
TARGET_VNNI static inline __attribute__((always_inline)) void
dot_q4_k_toks_vnni(int64_t n, float *s, int64_t s_stride, const uint8_t *xb, const uint8_t *yb, size_t y_stride,
                   const int T) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256 acc[TOKS_MAX], acc_m[TOKS_MAX];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = acc_m[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, xb += sizeof(block_q4_k)) {
        const block_q4_k *x = (const block_q4_k *)xb;
        const __m128i sm = scales_mins_q45(x->scales);
        const __m256i scales16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        const __m256i mins = mins_per_bsum_q45(sm);
        __m256i w[8], gs[8];
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * c));
            w[2 * c] = _mm256_and_si256(q, low4);
            w[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            gs[2 * c] = group_scale_q45(scales16, c, 0);
            gs[2 * c + 1] = group_scale_q45(scales16, c, 1);
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const block_q8_k *y = (const block_q8_k *)(yb + (size_t)t * y_stride) + i;
            const __m128 dd = scales_d_dmin(xb, &y->d);
            const __m256i summ = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), mins);
            __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m256i p0 = _mm256_maddubs_epi16(w[2 * c], _mm256_loadu_si256((const __m256i *)(y->qs + 64 * c)));
                __m256i p1 =
                    _mm256_maddubs_epi16(w[2 * c + 1], _mm256_loadu_si256((const __m256i *)(y->qs + 64 * c + 32)));
                sum0 = _mm256_dpwssd_epi32(sum0, p0, gs[2 * c]);
                sum1 = _mm256_dpwssd_epi32(sum1, p1, gs[2 * c + 1]);
            }
            acc_m[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)), _mm256_cvtepi32_ps(summ), acc_m[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(_mm256_add_epi32(sum0, sum1)),
                                     acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) s[t * s_stride] = hsum_avx2(acc[t]) - hsum_avx2(acc_m[t]);
}

TARGET_VNNI static void vec_dot_toks_q4_k_vnni(int64_t n, float *s, int64_t s_stride, const void *vx, size_t x_stride,
                                               int nr, const void *y, size_t y_stride, int nt) {
    for (int r = 0; r < nr; r++) {
        const uint8_t *x = (const uint8_t *)vx + (size_t)r * x_stride;
        switch (nt) {
        case 8: dot_q4_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 8); break;
        case 7: dot_q4_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 7); break;
        case 6: dot_q4_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 6); break;
        case 5: dot_q4_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 5); break;
        case 4: dot_q4_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 4); break;
        case 3: dot_q4_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 3); break;
        case 2: dot_q4_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 2); break;
        default: dot_q4_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 1); break;
        }
    }
}

/* q6_k: the twin of vec_dot_q6_k_q8_k_avx512 (vpdpwssd fuses its madd and add). */
TARGET_VNNI static inline __attribute__((always_inline)) void
dot_q6_k_toks_vnni(int64_t n, float *s, int64_t s_stride, const block_q6_k *x, const uint8_t *yb, size_t y_stride,
                     const int T) {
    const __m512i low4 = _mm512_set1_epi8(0x0f), bits45 = _mm512_set1_epi8(0x30);
    const __m512i lane_idx = _mm512_setr_epi32(0, 0, 0, 0, 0x10001, 0x10001, 0x10001, 0x10001, 0x20002, 0x20002,
                                               0x20002, 0x20002, 0x30003, 0x30003, 0x30003, 0x30003);
    __m512 acc[TOKS_MAX];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float dx = _cvtsh_ss(x[i].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales));
        const __m512i scales = _mm512_zextsi256_si512(sc16);
        __m512i u[4], gs[4];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m512i ql = _mm512_loadu_si512(x[i].ql + 64 * h);
            __m256i hb = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(hb), _mm256_srli_epi16(hb, 2), 1);
            u[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, low4), _mm512_and_si512(_mm512_slli_epi16(hh, 4), bits45));
            u[2 * h + 1] =
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4), _mm512_and_si512(hh, bits45));
            gs[2 * h] = _mm512_permutexvar_epi16(_mm512_add_epi16(lane_idx, _mm512_set1_epi16((short)(8 * h))), scales);
            gs[2 * h + 1] =
                _mm512_permutexvar_epi16(_mm512_add_epi16(lane_idx, _mm512_set1_epi16((short)(8 * h + 4))), scales);
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const block_q8_k *y = (const block_q8_k *)(yb + (size_t)t * y_stride) + i;
            const float d = y->d * dx;
            const __m256i corr = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), sc16);
            __m512i sumi = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(_mm256_slli_epi32(corr, 5)));
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u[k], _mm512_loadu_si512(y->qs + 64 * k)), gs[k]);
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc[t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) s[t * s_stride] = _mm512_reduce_add_ps(acc[t]);
}

TARGET_VNNI static void vec_dot_toks_q6_k_vnni(int64_t n, float *s, int64_t s_stride, const void *vx, size_t x_stride,
                                               int nr, const void *y, size_t y_stride, int nt) {
    for (int r = 0; r < nr; r++) {
        const block_q6_k *x = (const void *)((const uint8_t *)vx + (size_t)r * x_stride);
        switch (nt) {
        case 8: dot_q6_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 8); break;
        case 7: dot_q6_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 7); break;
        case 6: dot_q6_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 6); break;
        case 5: dot_q6_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 5); break;
        case 4: dot_q6_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 4); break;
        case 3: dot_q6_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 3); break;
        case 2: dot_q6_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 2); break;
        default: dot_q6_k_toks_vnni(n, s + r, s_stride, x, y, y_stride, 1); break;
        }
    }
}

/* ================= q8_k quantizer ================= */

/* x (k,) -> q8_k blocks, bit-identical to quant_row_q8_k_ref: same max
 * (first of largest magnitude, nan skipped), same iscale, same f32 product;
 * min(v, 127) before rounding sends nan and +inf to 127 like the ref, and the
 * saturating packs send -inf and anything below to -128. */
TARGET_AVX2 static void quant_row_q8_k_avx2(const float *x, void *vy, int64_t k) {
    block_q8_k *y = vy;
    const __m256 sign = _mm256_set1_ps(-0.0f), lim = _mm256_set1_ps(127.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), bias = _mm256_set1_epi8((char)0x80);
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        __m256 am = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) am = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), am);
        const float amax = hmax_avx2(am);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int first = 0;
        for (int j = 0; j < QK_K; j += 8) {
            __m256 eq = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), _mm256_set1_ps(amax), _CMP_EQ_OQ);
            int bits = _mm256_movemask_ps(eq);
            if (bits) {
                first = j + __builtin_ctz((unsigned)bits);
                break;
            }
        }
        const float iscale = -127.0f / x[first];
        const __m256 vs = _mm256_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i v[4];
            for (int t = 0; t < 4; t++)
                v[t] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * t), vs), lim));
            __m256i q = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
            q = _mm256_permutevar8x32_epi32(q, perm);
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), q);
            /* group sums: bias to unsigned, sum 8 bytes per u64 lane, unbias */
            uint64_t part[4];
            _mm256_storeu_si256((__m256i *)part, _mm256_sad_epu8(_mm256_xor_si256(q, bias), _mm256_setzero_si256()));
            y[i].bsums[j / 16] = (int16_t)((int)(part[0] + part[1]) - 16 * 128);
            y[i].bsums[j / 16 + 1] = (int16_t)((int)(part[2] + part[3]) - 16 * 128);
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ================= tables ================= */

quant_vec_dot_fn kern_x86_k_vec_dot(int wtype, int isa) {
    if (isa == HIVE_ISA_AVX2) {
        switch (wtype) {
        case HIVE_TYPE_Q2_K: return vec_dot_q2_k_q8_k_avx2;
        case HIVE_TYPE_Q3_K: return vec_dot_q3_k_q8_k_avx2;
        case HIVE_TYPE_Q4_K: return vec_dot_q4_k_q8_k_avx2;
        case HIVE_TYPE_Q5_K: return vec_dot_q5_k_q8_k_avx2;
        case HIVE_TYPE_Q6_K: return vec_dot_q6_k_q8_k_avx2;
        }
    } else if (isa == HIVE_ISA_AVX512) {
        switch (wtype) {
        /* without VNNI the AVX2 kernels are as fast: NULL makes the caller fall back */
        case HIVE_TYPE_Q4_K: return __builtin_cpu_supports("avx512vnni") ? vec_dot_q4_k_q8_k_vnni : NULL;
        case HIVE_TYPE_Q5_K: return __builtin_cpu_supports("avx512vnni") ? vec_dot_q5_k_q8_k_vnni : NULL;
        case HIVE_TYPE_Q6_K: return vec_dot_q6_k_q8_k_avx512;
        }
    }
    return NULL;
}

quant_vec_dot_toks_fn kern_x86_k_vec_dot_toks(int wtype, int isa) {
    /* only where kern_x86_k_vec_dot(wtype, isa) is the twin of the kernel given
     * here; at the AVX2 level q4_k's and q6_k's batches run on the packed
     * kernels (kern_x86_gemm_k_avx2.c) instead */
    if (isa != HIVE_ISA_AVX512 || !__builtin_cpu_supports("avx512vnni")) return NULL;
    if (wtype == HIVE_TYPE_Q4_K) return vec_dot_toks_q4_k_vnni;
    if (wtype == HIVE_TYPE_Q6_K) return vec_dot_toks_q6_k_vnni;
    return NULL;
}

quant_quant_fn kern_x86_k_quant(int type, int isa) {
    /* the AVX-512 level uses the AVX2 quantizer (the caller falls back) */
    return isa == HIVE_ISA_AVX2 && type == HIVE_TYPE_Q8_K ? quant_row_q8_k_avx2 : NULL;
}

#else

quant_vec_dot_fn kern_x86_k_vec_dot(int wtype, int isa) {
    (void)wtype;
    (void)isa;
    return NULL;
}

quant_vec_dot_toks_fn kern_x86_k_vec_dot_toks(int wtype, int isa) {
    (void)wtype;
    (void)isa;
    return NULL;
}

quant_quant_fn kern_x86_k_quant(int type, int isa) {
    (void)type;
    (void)isa;
    return NULL;
}

#endif
