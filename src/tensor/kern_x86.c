/* kern_x86.c - AVX2 and AVX-512 kernels for f32, f16, bf16 and the legacy
 * block formats, plus the f32 -> q8_0 / q8_1 activation quantizers.
 *
 * Each function carries its own target attribute, so the file builds with
 * the baseline flags and the binary runs on any x86-64; tensor.c only hands
 * these out after CPUID said yes. Levels:
 *   AVX2:    avx2 + fma + f16c; integer dots with maddubs (sign trick)
 *   AVX-512: f + bw + vl + dq + vnni; integer dots with vpdpbusd
 * Quantized dots work one block (32 elements) per 256-bit vector; the
 * partial row tails use the scalar per-block helpers of kern.h. q4_0 and
 * q8_0 (what decode benchmarks stress) also have AVX-512 multi-row kernels
 * that share each activation block among KERN_ROWS weight rows.
 *
 * The activation quantizers give the same bytes as the reference (the same
 * float multiply and round-to-nearest-even), so only the dot products round
 * differently from _ref. */
#include "kern.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Round to nearest even without raising exceptions (a macro: the intrinsics
 * need an immediate, also at -O0). */
#define ROUND_EVEN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#define AVX512_FN __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/* ==== AVX2 helpers ==== */

static inline AVX2_FN float f16c_to_f32(uint16_t h) { return _cvtsh_ss(h); }

static inline AVX2_FN float hsum256_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline AVX2_FN int hsum256_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* The 32 4-bit values of a block as bytes 0..15, in element order. */
static inline AVX2_FN __m256i avx2_nibbles(const uint8_t qs[16]) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

/* Bit j of qh as 0x10 in byte j (bit 4 of a q5 value). */
static inline AVX2_FN __m256i avx2_q5_high_bits(const uint8_t qh_bytes[4]) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, sizeof qh);
    /* byte j takes qh byte j/8, then keeps bit j%8 */
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* unsigned bytes x (< 128) . signed bytes y -> 8 int32 partial sums */
static inline AVX2_FN __m256i avx2_dot_u8_i8(__m256i x, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}

/* signed bytes x (> -128) . signed bytes y -> 8 int32 partial sums */
static inline AVX2_FN __m256i avx2_dot_i8_i8(__m256i x, __m256i y) {
    return avx2_dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

static inline AVX2_FN __m256i avx2_load_q8(const int8_t qs[32]) {
    return _mm256_loadu_si256((const __m256i *)qs);
}

/* acc += float(p) * scale */
static inline AVX2_FN __m256 avx2_acc(__m256 acc, __m256i p, float scale) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale), acc);
}

/* ==== AVX2 dot products: *s = x (n,) . y (n,) ==== */

static AVX2_FN void vec_dot_f32_f32_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum256_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += x[i] * y[i];
    *s = sum;
}

static inline AVX2_FN __m256 avx2_load_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline AVX2_FN __m256 avx2_load_bf16(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static AVX2_FN void vec_dot_f16_f32_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(avx2_load_f16(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(avx2_load_f16(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(avx2_load_f16(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(avx2_load_f16(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(avx2_load_f16(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum256_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += f16c_to_f32(x[i]) * y[i];
    *s = sum;
}

static AVX2_FN void vec_dot_bf16_f32_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(avx2_load_bf16(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(avx2_load_bf16(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(avx2_load_bf16(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(avx2_load_bf16(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(avx2_load_bf16(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum256_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += kern_bf16_to_f32(x[i]) * y[i];
    *s = sum;
}

/* Per-block integer dots (8 int32 partial sums each). */
static inline AVX2_FN __m256i avx2_block_q4_0(const block_q4_0 *x, const block_q8_0 *y) {
    __m256i q = _mm256_sub_epi8(avx2_nibbles(x->qs), _mm256_set1_epi8(8));
    return avx2_dot_i8_i8(q, avx2_load_q8(y->qs));
}

static inline AVX2_FN __m256i avx2_block_q5_0(const block_q5_0 *x, const block_q8_0 *y) {
    __m256i q = _mm256_or_si256(avx2_nibbles(x->qs), avx2_q5_high_bits(x->qh));
    return avx2_dot_i8_i8(_mm256_sub_epi8(q, _mm256_set1_epi8(16)), avx2_load_q8(y->qs));
}

static AVX2_FN void vec_dot_q4_0_q8_0_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    int64_t nb = n / QK_LEGACY, i = 0;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (; i + 2 <= nb; i += 2) {
        a0 = avx2_acc(a0, avx2_block_q4_0(x + i, y + i), f16c_to_f32(x[i].d) * f16c_to_f32(y[i].d));
        a1 = avx2_acc(a1, avx2_block_q4_0(x + i + 1, y + i + 1),
                      f16c_to_f32(x[i + 1].d) * f16c_to_f32(y[i + 1].d));
    }
    float sum = hsum256_ps(_mm256_add_ps(a0, a1));
    for (; i < nb; i++) sum += kern_dot_block_q4_0_q8_0(x + i, y + i);
    *s = sum;
}

static AVX2_FN void vec_dot_q5_0_q8_0_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    int64_t nb = n / QK_LEGACY, i = 0;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (; i + 2 <= nb; i += 2) {
        a0 = avx2_acc(a0, avx2_block_q5_0(x + i, y + i), f16c_to_f32(x[i].d) * f16c_to_f32(y[i].d));
        a1 = avx2_acc(a1, avx2_block_q5_0(x + i + 1, y + i + 1),
                      f16c_to_f32(x[i + 1].d) * f16c_to_f32(y[i + 1].d));
    }
    float sum = hsum256_ps(_mm256_add_ps(a0, a1));
    for (; i < nb; i++) sum += kern_dot_block_q5_0_q8_0(x + i, y + i);
    *s = sum;
}

static AVX2_FN void vec_dot_q8_0_q8_0_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    int64_t nb = n / QK_LEGACY, i = 0;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (; i + 2 <= nb; i += 2) {
        a0 = avx2_acc(a0, avx2_dot_i8_i8(avx2_load_q8(x[i].qs), avx2_load_q8(y[i].qs)),
                      f16c_to_f32(x[i].d) * f16c_to_f32(y[i].d));
        a1 = avx2_acc(a1, avx2_dot_i8_i8(avx2_load_q8(x[i + 1].qs), avx2_load_q8(y[i + 1].qs)),
                      f16c_to_f32(x[i + 1].d) * f16c_to_f32(y[i + 1].d));
    }
    float sum = hsum256_ps(_mm256_add_ps(a0, a1));
    for (; i < nb; i++) sum += kern_dot_block_q8_0_q8_0(x + i, y + i);
    *s = sum;
}

/* q4_1 / q5_1: unsigned values times q8_1, plus the min term m * s. */
static AVX2_FN void vec_dot_q4_1_q8_1_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_1 *x = vx;
    const block_q8_1 *y = vy;
    int64_t nb = n / QK_LEGACY, i = 0;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (; i < nb; i++) {
        __m256i p = avx2_dot_u8_i8(avx2_nibbles(x[i].qs), avx2_load_q8(y[i].qs));
        acc = avx2_acc(acc, p, f16c_to_f32(x[i].d) * f16c_to_f32(y[i].d));
        mins += f16c_to_f32(x[i].m) * f16c_to_f32(y[i].s);
    }
    *s = hsum256_ps(acc) + mins;
}

static AVX2_FN void vec_dot_q5_1_q8_1_avx2(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    int64_t nb = n / QK_LEGACY, i = 0;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (; i < nb; i++) {
        __m256i q = _mm256_or_si256(avx2_nibbles(x[i].qs), avx2_q5_high_bits(x[i].qh));
        acc = avx2_acc(acc, avx2_dot_u8_i8(q, avx2_load_q8(y[i].qs)), f16c_to_f32(x[i].d) * f16c_to_f32(y[i].d));
        mins += f16c_to_f32(x[i].m) * f16c_to_f32(y[i].s);
    }
    *s = hsum256_ps(acc) + mins;
}

/* ==== AVX2 activation quantizers (bit-identical to the reference) ==== */

/* One block of 32 floats -> d, qs; returns sum(q). */
static inline AVX2_FN int avx2_quant_block_q8(const float *x, uint16_t *d, int8_t qs[32]) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    __m256 mul = _mm256_set1_ps(id);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), ROUND_EVEN));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), ROUND_EVEN));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), ROUND_EVEN));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), ROUND_EVEN));
    int sum = hsum256_epi32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
    /* packs work per 128-bit lane; the final permute restores element order */
    __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, b);
    *d = kern_f32_to_f16(amax / 127.0f);
    return sum;
}

static AVX2_FN void quant_row_q8_0_avx2(const float *src, void *dst, int64_t k) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) avx2_quant_block_q8(src + i * QK_LEGACY, &b[i].d, b[i].qs);
}

static AVX2_FN void quant_row_q8_1_avx2(const float *src, void *dst, int64_t k) {
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        int sum = avx2_quant_block_q8(src + i * QK_LEGACY, &b[i].d, b[i].qs);
        b[i].s = kern_f32_to_f16(kern_f16_to_f32(b[i].d) * (float)sum);
    }
}

/* ==== AVX-512 helpers ==== */

/* unsigned bytes x . signed bytes y -> 8 int32 partial sums (VNNI) */
static inline AVX512_FN __m256i avx512_dot_u8_i8(__m256i x, __m256i y) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), x, y);
}

/* sum (q - offset) * y for unsigned q, via sum q*y - offset * sum y */
static inline AVX512_FN __m256i avx512_dot_offset(__m256i q, __m256i y, __m256i offset) {
    return _mm256_sub_epi32(avx512_dot_u8_i8(q, y), avx512_dot_u8_i8(offset, y));
}

/* Bit j of qh as 0x10 in byte j. */
static inline AVX512_FN __m256i avx512_q5_high_bits(const uint8_t qh_bytes[4]) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, sizeof qh);
    return _mm256_maskz_mov_epi8((__mmask32)qh, _mm256_set1_epi8(0x10));
}

static inline AVX512_FN float hsum512_ps(__m512 v) { return _mm512_reduce_add_ps(v); }

/* ==== AVX-512 dot products ==== */

static AVX512_FN void vec_dot_f32_f32_avx512(int64_t n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    for (; i < n; i += 16) { /* masked tail: the last chunk may be partial */
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a0);
    }
    *s = hsum512_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

static inline AVX512_FN __m512 avx512_load_f16(__mmask16 m, const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

static inline AVX512_FN __m512 avx512_load_bf16(__mmask16 m, const uint16_t *p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

static AVX512_FN void vec_dot_f16_f32_avx512(int64_t n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    const __mmask16 all = 0xffff;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(avx512_load_f16(all, x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(avx512_load_f16(all, x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(avx512_load_f16(all, x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(avx512_load_f16(all, x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? all : (__mmask16)((1u << (n - i)) - 1);
        a0 = _mm512_fmadd_ps(avx512_load_f16(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a0);
    }
    *s = hsum512_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

static AVX512_FN void vec_dot_bf16_f32_avx512(int64_t n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    const __mmask16 all = 0xffff;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(avx512_load_bf16(all, x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(avx512_load_bf16(all, x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(avx512_load_bf16(all, x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(avx512_load_bf16(all, x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? all : (__mmask16)((1u << (n - i)) - 1);
        a0 = _mm512_fmadd_ps(avx512_load_bf16(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a0);
    }
    *s = hsum512_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* acc += float(p) * scale (256-bit) */
static inline AVX512_FN __m256 avx512_acc(__m256 acc, __m256i p, float scale) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale), acc);
}

static inline AVX512_FN __m256i avx512_block_q5_0(const block_q5_0 *x, const block_q8_0 *y) {
    __m256i q = _mm256_or_si256(avx2_nibbles(x->qs), avx512_q5_high_bits(x->qh));
    return avx512_dot_offset(q, avx2_load_q8(y->qs), _mm256_set1_epi8(16));
}

/* ---- AVX-512 multi-row kernels for q4_0 and q8_0 ----
 * Decode is a matrix-vector product, so KERN_ROWS weight rows share each
 * activation block: its load, its offset term and its scale. Per block and
 * row that leaves one vpdpbusd, one convert and one fma. Every row runs the
 * same instruction sequence whatever the row count, so a row's bits never
 * depend on how rows were grouped.
 *
 * Offsets: q4_0 values are q - 8 and q8_0 values are (x ^ 0x80) - 128 as
 * unsigned bytes; the offset times sum(y) comes from one vpdpbusd per
 * activation block, negated and used as the accumulator start. q4_0 high
 * nibbles are masked in place (value * 16) rather than shifted; the upper
 * four lanes of the accumulator are divided by 16 once at the end (exact). */

/* Four f16 values `stride` halves apart packed into 64 bits (integer unit). */
static inline uint64_t pack4_f16(const uint16_t *p, size_t stride) {
    return (uint64_t)p[0] | (uint64_t)p[stride] << 16 | (uint64_t)p[2 * stride] << 32 |
           (uint64_t)p[3 * stride] << 48;
}

/* The f16 scales of 8 consecutive blocks (`stride` halves apart) as floats. */
static inline AVX512_FN __m256 avx512_scales8(const uint16_t *d0, size_t stride) {
    __m128i h = _mm_cvtsi64_si128((long long)pack4_f16(d0, stride));
    h = _mm_insert_epi64(h, (long long)pack4_f16(d0 + 4 * stride, stride), 1);
    return _mm256_cvtph_ps(h);
}

static inline __attribute__((always_inline)) AVX512_FN void
rows_q4_0_q8_0(int64_t n, float *s, const uint8_t *xb, size_t x_stride, const block_q8_0 *y, const int R) {
    const int64_t nb = n / QK_LEGACY;
    const __m256i mask = _mm256_setr_epi64x(0x0f0f0f0f0f0f0f0f, 0x0f0f0f0f0f0f0f0f,
                                            (long long)0xf0f0f0f0f0f0f0f0, (long long)0xf0f0f0f0f0f0f0f0);
    const __m256i offset = _mm256_setr_epi64x(0x0808080808080808, 0x0808080808080808,
                                              (long long)0x8080808080808080, (long long)0x8080808080808080);
    __m256 acc[KERN_ROWS], sc[KERN_ROWS];
    int64_t i = 0;
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    for (; i + 8 <= nb; i += 8) {
        __m256 dy = avx512_scales8(&y[i].d, sizeof *y / 2);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const block_q4_0 *x = (const block_q4_0 *)(xb + r * x_stride) + i;
            sc[r] = _mm256_mul_ps(avx512_scales8(&x->d, sizeof *x / 2), dy);
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            __m256i yv = avx2_load_q8(y[i + k].qs);
            __m256i neg = _mm256_sub_epi32(_mm256_setzero_si256(),
                                           _mm256_dpbusd_epi32(_mm256_setzero_si256(), offset, yv));
            __m256i lane = _mm256_set1_epi32(k);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const block_q4_0 *x = (const block_q4_0 *)(xb + r * x_stride) + i + k;
                __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)x->qs));
                __m256i p = _mm256_dpbusd_epi32(neg, _mm256_and_si256(q, mask), yv);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_permutevar8x32_ps(sc[r], lane), acc[r]);
            }
        }
    }
    const __m256 unscale = _mm256_setr_ps(1, 1, 1, 1, 1.0f / 16, 1.0f / 16, 1.0f / 16, 1.0f / 16);
    for (int r = 0; r < R; r++) {
        const block_q4_0 *x = (const block_q4_0 *)(xb + r * x_stride);
        float sum = hsum256_ps(_mm256_mul_ps(acc[r], unscale));
        for (int64_t j = i; j < nb; j++) sum += kern_dot_block_q4_0_q8_0(x + j, y + j);
        s[r] = sum;
    }
}

static inline __attribute__((always_inline)) AVX512_FN void
rows_q8_0_q8_0(int64_t n, float *s, const uint8_t *xb, size_t x_stride, const block_q8_0 *y, const int R) {
    const int64_t nb = n / QK_LEGACY;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    __m256 acc[KERN_ROWS], sc[KERN_ROWS];
    int64_t i = 0;
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    for (; i + 8 <= nb; i += 8) {
        __m256 dy = avx512_scales8(&y[i].d, sizeof *y / 2);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const block_q8_0 *x = (const block_q8_0 *)(xb + r * x_stride) + i;
            sc[r] = _mm256_mul_ps(avx512_scales8(&x->d, sizeof *x / 2), dy);
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            __m256i yv = avx2_load_q8(y[i + k].qs);
            __m256i neg = _mm256_sub_epi32(_mm256_setzero_si256(),
                                           _mm256_dpbusd_epi32(_mm256_setzero_si256(), flip, yv));
            __m256i lane = _mm256_set1_epi32(k);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const block_q8_0 *x = (const block_q8_0 *)(xb + r * x_stride) + i + k;
                __m256i p = _mm256_dpbusd_epi32(neg, _mm256_xor_si256(avx2_load_q8(x->qs), flip), yv);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_permutevar8x32_ps(sc[r], lane), acc[r]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        const block_q8_0 *x = (const block_q8_0 *)(xb + r * x_stride);
        float sum = hsum256_ps(acc[r]);
        for (int64_t j = i; j < nb; j++) sum += kern_dot_block_q8_0_q8_0(x + j, y + j);
        s[r] = sum;
    }
}

/* One instantiation per row count, so every loop above unrolls fully. */
static AVX512_FN void vec_dot_rows_q4_0_q8_0_avx512(int64_t n, float *s, const void *x, size_t x_stride,
                                                    const void *y, int nr) {
    switch (nr) {
    case 4: rows_q4_0_q8_0(n, s, x, x_stride, y, 4); break;
    case 3: rows_q4_0_q8_0(n, s, x, x_stride, y, 3); break;
    case 2: rows_q4_0_q8_0(n, s, x, x_stride, y, 2); break;
    default: rows_q4_0_q8_0(n, s, x, x_stride, y, 1); break;
    }
}

static AVX512_FN void vec_dot_rows_q8_0_q8_0_avx512(int64_t n, float *s, const void *x, size_t x_stride,
                                                    const void *y, int nr) {
    switch (nr) {
    case 4: rows_q8_0_q8_0(n, s, x, x_stride, y, 4); break;
    case 3: rows_q8_0_q8_0(n, s, x, x_stride, y, 3); break;
    case 2: rows_q8_0_q8_0(n, s, x, x_stride, y, 2); break;
    default: rows_q8_0_q8_0(n, s, x, x_stride, y, 1); break;
    }
}

static AVX512_FN void vec_dot_q4_0_q8_0_avx512(int64_t n, float *s, const void *vx, const void *vy) {
    rows_q4_0_q8_0(n, s, vx, 0, vy, 1);
}

static AVX512_FN void vec_dot_q8_0_q8_0_avx512(int64_t n, float *s, const void *vx, const void *vy) {
    rows_q8_0_q8_0(n, s, vx, 0, vy, 1);
}

static AVX512_FN void vec_dot_q5_0_q8_0_avx512(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    int64_t nb = n / QK_LEGACY, i = 0;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (; i + 2 <= nb; i += 2) {
        a0 = avx512_acc(a0, avx512_block_q5_0(x + i, y + i), f16c_to_f32(x[i].d) * f16c_to_f32(y[i].d));
        a1 = avx512_acc(a1, avx512_block_q5_0(x + i + 1, y + i + 1),
                        f16c_to_f32(x[i + 1].d) * f16c_to_f32(y[i + 1].d));
    }
    float sum = hsum256_ps(_mm256_add_ps(a0, a1));
    for (; i < nb; i++) sum += kern_dot_block_q5_0_q8_0(x + i, y + i);
    *s = sum;
}

static AVX512_FN void vec_dot_q4_1_q8_1_avx512(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q4_1 *x = vx;
    const block_q8_1 *y = vy;
    int64_t nb = n / QK_LEGACY, i = 0;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (; i < nb; i++) {
        __m256i p = avx512_dot_u8_i8(avx2_nibbles(x[i].qs), avx2_load_q8(y[i].qs));
        acc = avx512_acc(acc, p, f16c_to_f32(x[i].d) * f16c_to_f32(y[i].d));
        mins += f16c_to_f32(x[i].m) * f16c_to_f32(y[i].s);
    }
    *s = hsum256_ps(acc) + mins;
}

static AVX512_FN void vec_dot_q5_1_q8_1_avx512(int64_t n, float *s, const void *vx, const void *vy) {
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    int64_t nb = n / QK_LEGACY, i = 0;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (; i < nb; i++) {
        __m256i q = _mm256_or_si256(avx2_nibbles(x[i].qs), avx512_q5_high_bits(x[i].qh));
        acc = avx512_acc(acc, avx512_dot_u8_i8(q, avx2_load_q8(y[i].qs)),
                         f16c_to_f32(x[i].d) * f16c_to_f32(y[i].d));
        mins += f16c_to_f32(x[i].m) * f16c_to_f32(y[i].s);
    }
    *s = hsum256_ps(acc) + mins;
}

/* ==== AVX-512 activation quantizers (bit-identical to the reference) ==== */

static inline AVX512_FN int avx512_quant_block_q8(const float *x, uint16_t *d, int8_t qs[32]) {
    __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    __m512 mul = _mm512_set1_ps(id);
    __m512i i0 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v0, mul), ROUND_EVEN));
    __m512i i1 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v1, mul), ROUND_EVEN));
    _mm_storeu_si128((__m128i *)qs, _mm512_cvtsepi32_epi8(i0));
    _mm_storeu_si128((__m128i *)(qs + 16), _mm512_cvtsepi32_epi8(i1));
    *d = kern_f32_to_f16(amax / 127.0f);
    return _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
}

static AVX512_FN void quant_row_q8_0_avx512(const float *src, void *dst, int64_t k) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) avx512_quant_block_q8(src + i * QK_LEGACY, &b[i].d, b[i].qs);
}

static AVX512_FN void quant_row_q8_1_avx512(const float *src, void *dst, int64_t k) {
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < k / QK_LEGACY; i++) {
        int sum = avx512_quant_block_q8(src + i * QK_LEGACY, &b[i].d, b[i].qs);
        b[i].s = kern_f32_to_f16(kern_f16_to_f32(b[i].d) * (float)sum);
    }
}

/* ==== tables ==== */

quant_vec_dot_fn kern_x86_vec_dot(int wtype, int isa) {
    if (isa == HIVE_ISA_AVX2) {
        switch (wtype) {
        case HIVE_TYPE_F32: return vec_dot_f32_f32_avx2;
        case HIVE_TYPE_F16: return vec_dot_f16_f32_avx2;
        case HIVE_TYPE_BF16: return vec_dot_bf16_f32_avx2;
        case HIVE_TYPE_Q4_0: return vec_dot_q4_0_q8_0_avx2;
        case HIVE_TYPE_Q4_1: return vec_dot_q4_1_q8_1_avx2;
        case HIVE_TYPE_Q5_0: return vec_dot_q5_0_q8_0_avx2;
        case HIVE_TYPE_Q5_1: return vec_dot_q5_1_q8_1_avx2;
        case HIVE_TYPE_Q8_0: return vec_dot_q8_0_q8_0_avx2;
        default: return NULL;
        }
    }
    if (isa == HIVE_ISA_AVX512) {
        switch (wtype) {
        case HIVE_TYPE_F32: return vec_dot_f32_f32_avx512;
        case HIVE_TYPE_F16: return vec_dot_f16_f32_avx512;
        case HIVE_TYPE_BF16: return vec_dot_bf16_f32_avx512;
        case HIVE_TYPE_Q4_0: return vec_dot_q4_0_q8_0_avx512;
        case HIVE_TYPE_Q4_1: return vec_dot_q4_1_q8_1_avx512;
        case HIVE_TYPE_Q5_0: return vec_dot_q5_0_q8_0_avx512;
        case HIVE_TYPE_Q5_1: return vec_dot_q5_1_q8_1_avx512;
        case HIVE_TYPE_Q8_0: return vec_dot_q8_0_q8_0_avx512;
        default: return NULL;
        }
    }
    return NULL;
}

kern_vec_dot_rows_fn kern_x86_vec_dot_rows(int wtype, int isa) {
    if (isa == HIVE_ISA_AVX512 && wtype == HIVE_TYPE_Q4_0) return vec_dot_rows_q4_0_q8_0_avx512;
    if (isa == HIVE_ISA_AVX512 && wtype == HIVE_TYPE_Q8_0) return vec_dot_rows_q8_0_q8_0_avx512;
    return NULL;
}

quant_quant_fn kern_x86_quant(int type, int isa) {
    if (isa == HIVE_ISA_AVX2 && type == HIVE_TYPE_Q8_0) return quant_row_q8_0_avx2;
    if (isa == HIVE_ISA_AVX2 && type == HIVE_TYPE_Q8_1) return quant_row_q8_1_avx2;
    if (isa == HIVE_ISA_AVX512 && type == HIVE_TYPE_Q8_0) return quant_row_q8_0_avx512;
    if (isa == HIVE_ISA_AVX512 && type == HIVE_TYPE_Q8_1) return quant_row_q8_1_avx512;
    return NULL;
}

#else /* not x86 */


kern_vec_dot_rows_fn kern_x86_vec_dot_rows(int wtype, int isa) {
    (void)wtype, (void)isa;
    return NULL;
}

quant_vec_dot_fn kern_x86_vec_dot(int wtype, int isa) {
    (void)wtype, (void)isa;
    return NULL;
}

quant_quant_fn kern_x86_quant(int type, int isa) {
    (void)type, (void)isa;
    return NULL;
}

#endif
