/* kern_x86_k_avx2.h - AVX2 steps of the q4_k / q5_k kernels shared by the
 * one-row kernels (kern_x86_k.c) and the packed matmul kernels
 * (kern_x86_gemm_k_avx2.c): scale unpacking and the exact integer sums of one
 * super-block. Static inline with their own target attribute, so including
 * this keeps the includer's baseline plain x86-64. Layouts: quant_k.h. */
#ifndef HIVE_TENSOR_KERN_X86_K_AVX2_H
#define HIVE_TENSOR_KERN_X86_K_AVX2_H

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "quant_k.h"

#define TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))

/* Shuffle mask broadcasting int16 2k of each 128-bit lane's 8 over the low
 * lane and int16 2k+1 over the high lane (k = 0..3). */
TARGET_AVX2 static inline __m256i pair_mask_avx2(int k) {
    return _mm256_set_m128i(_mm_set1_epi16((short)(0x0302 + 0x0404 * k)),
                            _mm_set1_epi16((short)(0x0100 + 0x0404 * k)));
}

/* Scaled sums of chunk k (0..3) of 32 codes q times y, whose 16-element
 * halves are groups 2k and 2k+1 of the current 8 (scales16 holds their 8
 * int16 scales in both lanes): 8 int32. */
TARGET_AVX2 static inline __m256i dot_chunk_avx2(__m256i q, const int8_t *y, __m256i scales16, int k) {
    __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)y));
    return _mm256_madd_epi16(p, _mm256_shuffle_epi8(scales16, pair_mask_avx2(k)));
}

/* The 6-bit scales and mins of a q4_k/q5_k block as bytes [sc0..sc7, m0..m7]
 * (layout in quant_k.h), from the 12 scale bytes read as 32-bit words
 * w0 w1 w2: sc0-3 = w0 & 63, m0-3 = w1 & 63, sc4-7 = (w2 & 15) | (w0 >> 6) << 4,
 * m4-7 = (w2 >> 4) | (w1 >> 6) << 4. Reads 16 bytes: the 4 after the scales
 * are still inside the block (qs or qh) and are ignored. */
TARGET_AVX2 static inline __m128i scales_mins_q45(const uint8_t *s) {
    const __m128i v = _mm_loadu_si128((const __m128i *)s);
    __m128i a = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); /* w0 w2 w1 w2 */
    __m128i b = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); /* w0 w0 w1 w1 */
    a = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                      _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    b = _mm_and_si128(_mm_srli_epi32(b, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm_or_si128(a, b);
}

/* 16 int16 m0 m0 m1 m1 ... m7 m7 (one min per pair of q8_k bsums). */
TARGET_AVX2 static inline __m256i mins_per_bsum_q45(__m128i sm) {
    const __m128i dup = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    return _mm256_cvtepu8_epi16(_mm_shuffle_epi8(sm, dup));
}

/* [d_x * d_y, dmin_x * d_y] from a block starting with f16 d, f16 dmin. */
TARGET_AVX2 static inline __m128 scales_d_dmin(const uint8_t *xb, const float *yd) {
    int32_t dd;
    memcpy(&dd, xb, sizeof dd);
    return _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(dd)), _mm_broadcast_ss(yd));
}

/* Chunk c (64 elements) of a q4_k (qh == NULL) or q5_k block times y:
 * *p0 = pair sums of group 2c (low nibbles), *p1 of group 2c+1 (high
 * nibbles), 16 int16 each. *hbits holds the qh bits still to use (bit 0 of
 * each byte for the low codes, bit 1 for the high ones) and is advanced. */
TARGET_AVX2 static inline __attribute__((always_inline)) void
products_q45_avx2(const uint8_t *qs, int has_qh, __m256i *hbits, const int8_t *y, int c, __m256i *p0, __m256i *p1) {
    const __m256i low4 = _mm256_set1_epi8(0x0f), bit4 = _mm256_set1_epi8(0x10);
    __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
    __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
    if (has_qh) {
        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(*hbits, 4), bit4));
        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(*hbits, 3), bit4));
        *hbits = _mm256_srli_epi16(*hbits, 2);
    }
    *p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(y + 64 * c)));
    *p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(y + 64 * c + 32)));
}

/* Scale of group 2c (odd = 0) or 2c+1 (odd = 1) broadcast over 16 int16,
 * from scales16 = the 8 group scales as int16 in both lanes. */
TARGET_AVX2 static inline __m256i group_scale_q45(__m256i scales16, int c, int odd) {
    return _mm256_shuffle_epi8(scales16, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * c + odd))));
}

/* Per-block prologue shared by the q4_k/q5_k kernels: *dd = [d, dmin] times
 * d_y, *scales16 = group scales, returns sum_g m_g * bsums as 8 int32. */
TARGET_AVX2 static inline __m256i prologue_q45(const uint8_t *xb, size_t scales_off, const block_q8_k *y,
                                               __m128 *dd, __m256i *scales16) {
    const __m128i sm = scales_mins_q45(xb + scales_off);
    *dd = scales_d_dmin(xb, &y->d);
    *scales16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    return _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), mins_per_bsum_q45(sm));
}

/* The exact integer sums of one q4_k (qh_off = 0) or q5_k super-block at xb
 * against the q8_k block y: returns the scaled code sums as 8 int32 (their
 * total is sumi), *summ = mins times bsums as 8 int32 (total summ), *dd =
 * [d_x * d_y, dmin_x * d_y]. */
TARGET_AVX2 static inline __attribute__((always_inline)) __m256i
block_sums_q45_avx2(const uint8_t *xb, size_t scales_off, size_t qh_off, size_t qs_off, const block_q8_k *y,
                    __m128 *dd, __m256i *summ) {
    __m256i scales16;
    *summ = prologue_q45(xb, scales_off, y, dd, &scales16);
    __m256i hbits = qh_off ? _mm256_loadu_si256((const __m256i *)(xb + qh_off)) : _mm256_setzero_si256();
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m256i p0, p1;
        products_q45_avx2(xb + qs_off, qh_off != 0, &hbits, y->qs, c, &p0, &p1);
        p0 = _mm256_madd_epi16(p0, group_scale_q45(scales16, c, 0));
        p1 = _mm256_madd_epi16(p1, group_scale_q45(scales16, c, 1));
        sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
    }
    return sumi;
}

/* ---- q6_k ---- */

/* The codes u = q + 32 (0..63) of half h (0..1) of a q6_k block: u[s] holds
 * elements 128h + 32s .. 128h + 32s + 31 in order (layout in quant_k.h). */
TARGET_AVX2 static inline __attribute__((always_inline)) void codes_q6_k_avx2(const block_q6_k *x, int h,
                                                                             __m256i u[4]) {
    const __m256i low4 = _mm256_set1_epi8(0x0f), bits45 = _mm256_set1_epi8(0x30);
    __m256i ql0 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h));
    __m256i ql1 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h + 32));
    __m256i hb = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
    u[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), bits45));
    u[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), bits45));
    u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(hb, bits45));
    u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                           _mm256_and_si256(_mm256_srli_epi16(hb, 2), bits45));
}

/* The exact integer sum of one q6_k block x against the q8_k block y, as 8
 * int32 whose total is sumi = sum_g sc_g * sum_{e in g} (u_e - 32) y_e. */
TARGET_AVX2 static inline __attribute__((always_inline)) __m256i block_sums_q6_k_avx2(const block_q6_k *x,
                                                                                     const block_q8_k *y) {
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)x->scales);
    const __m256i corr = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), _mm256_cvtepi8_epi16(sc8));
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        __m256i scales16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_unpackhi_epi64(sc8, sc8) : sc8));
        __m256i u[4];
        codes_q6_k_avx2(x, h, u);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) sumi = _mm256_add_epi32(sumi, dot_chunk_avx2(u[k], y->qs + 128 * h + 32 * k, scales16, k));
    }
    return _mm256_sub_epi32(sumi, _mm256_slli_epi32(corr, 5)); /* the -32 offset */
}

#endif
#endif
