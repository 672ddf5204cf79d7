/* quant_k.h - internal door between the tensor dispatcher (tensor.c) and the
 * k-quant formats (quant_k.c, kern_*_k.c): Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and
 * the activation type Q8_K. Super-blocks of QK_K = 256 elements.
 *
 * Block layouts (bit-compatible with GGUF files written by llama.cpp; all
 * fields little-endian, f16 = IEEE half):
 *   q2_k  84 B: scales[16] | qs[64] | f16 d | f16 dmin
 *         16 groups of 16; scales[g] = scale (low nibble) | min (high nibble)
 *         x = d*(sc&15)*q - dmin*(sc>>4), q in 0..3
 *   q3_k 110 B: hmask[32] | qs[64] | scales[12] | f16 d
 *         16 groups of 16, 6-bit scales stored +32; q = low2 + 4*hbit - 4 in -4..3
 *         x = d*(sc-32)*q
 *   q4_k 144 B: f16 d | f16 dmin | scales[12] | qs[128]
 *         8 groups of 32, 6-bit scale and 6-bit min each; x = d*sc*q - dmin*m, q in 0..15
 *   q5_k 176 B: f16 d | f16 dmin | scales[12] | qh[32] | qs[128]
 *         as q4_k with a fifth bit from qh; q in 0..31
 *   q6_k 210 B: ql[128] | qh[64] | int8 scales[16] | f16 d
 *         16 groups of 16; x = d*sc*(q-32), q in 0..63
 *   q8_k 292 B: f32 d | int8 qs[256] | int16 bsums[16] (sum of each 16 qs); x = d*q
 *
 * Element order inside a super-block (this is what the unpack helpers below
 * encode; the SIMD kernels rely on the same picture):
 *   q2_k/q3_k: half h (0..1) of 128 elements uses qs[32h .. 32h+32); element
 *     128h + 32j + l (j 0..3, l 0..31) is bits 2j..2j+1 of qs[32h + l];
 *     q3_k's high bit of that element is bit 4h+j of hmask[l]; its group is
 *     (128h + 32j + l) / 16.
 *   q4_k/q5_k: chunk c (0..3) of 64 elements uses qs[32c .. 32c+32);
 *     element 64c + l is the low nibble of qs[32c + l], element 64c + 32 + l
 *     the high nibble; q5_k's fifth bit of element e is bit e/32 of qh[e%32].
 *     Group g (0..7) = e/32; scales: g<4: sc = s[g]&63, m = s[g+4]&63;
 *     g>=4: sc = (s[g+4]&15) | (s[g-4]>>6)<<4, m = (s[g+4]>>4) | (s[g]>>6)<<4.
 *   q3_k scales: group g low nibble = g<8 ? s[g]&15 : s[g-8]>>4, top two
 *     bits = (s[8 + g%4] >> 2*(g/4)) & 3.
 *   q6_k: half h uses ql[64h..], qh[32h..]; for l 0..31 the elements
 *     128h + l, +32, +64, +96 take (ql[l]&15, ql[l+32]&15, ql[l]>>4,
 *     ql[l+32]>>4) as low bits and qh[l] bits (0-1, 2-3, 4-5, 6-7) as the top two. */
#ifndef HIVE_TENSOR_QUANT_K_H
#define HIVE_TENSOR_QUANT_K_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define QK_K 256

typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } block_q2_k;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } block_q3_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } block_q4_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } block_q5_k;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } block_q6_k;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } block_q8_k;

_Static_assert(sizeof(block_q2_k) == 84, "q2_k block is 84 bytes");
_Static_assert(sizeof(block_q3_k) == 110, "q3_k block is 110 bytes");
_Static_assert(sizeof(block_q4_k) == 144, "q4_k block is 144 bytes");
_Static_assert(sizeof(block_q5_k) == 176, "q5_k block is 176 bytes");
_Static_assert(sizeof(block_q6_k) == 210, "q6_k block is 210 bytes");
_Static_assert(sizeof(block_q8_k) == 292, "q8_k block is 292 bytes");

/* Row functions; k is a multiple of QK_K. */
typedef void (*quant_dequant_fn)(const void *src, float *dst, int64_t k);
typedef void (*quant_quant_fn)(const float *src, void *dst, int64_t k);
/* *s = dot(x, y) over n elements; x of the weight type, y of its dot type. */
typedef void (*quant_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);

/* Block size in bytes of a k-quant type (0 if not a k-quant type). */
size_t quant_k_block_bytes(int type);
quant_dequant_fn quant_k_dequant(int type);     /* NULL if not a k-quant type */
/* Quantizer, Q8_K included. For the weight types this is the deterministic
 * reference quantizer. For Q8_K it is the fastest one this CPU supports; every
 * Q8_K quantizer gives output bit-identical to the reference. */
quant_quant_fn quant_k_quant(int type);
/* Quantizer for exactly the best level at or below isa (tests use
 * HIVE_ISA_REF to get the reference Q8_K quantizer). NULL if not a k-quant type. */
quant_quant_fn quant_k_quant_isa(int type, int isa);
/* Best vec_dot for the weight type at or below isa (enum hive_isa); NULL if
 * not a k-quant weight type. The dot type is always HIVE_TYPE_Q8_K.
 * Levels the running CPU lacks are never returned (checked with CPUID). */
quant_vec_dot_fn quant_k_vec_dot(int type, int isa);

/* A few weight rows against a few activation rows (prefill, continuous
 * batching's decode steps; also used by the legacy q4_0 / q8_0 AVX2 kernels):
 * s[t * s_stride + r] = x_r (n,) . y_t (n,) for r < nr, t < nt; x_r at
 * x + r * x_stride bytes, y_t (q8_k) at y + t * y_stride bytes;
 * 1 <= nr <= QUANT_TOK_ROWS, 1 <= nt <= QUANT_TOKS. Each result has exactly
 * the bits of the one-token vec_dot that quant_k_vec_dot gives for the same
 * type and isa. */
#define QUANT_TOKS 8
#define QUANT_TOK_ROWS 1
typedef void (*quant_vec_dot_toks_fn)(int64_t n, float *s, int64_t s_stride, const void *x, size_t x_stride, int nr,
                                      const void *y, size_t y_stride, int nt);
/* The twin of quant_k_vec_dot(type, isa), or NULL when that kernel has none. */
quant_vec_dot_toks_fn quant_k_vec_dot_toks(int type, int isa);

/* ---- shared per-block scalar steps (reference kernels and SIMD tails) ---- */

static inline float quant_k_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    float f;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24 is exact in f32 */
        f = (float)mant * 0x1p-24f;
        return sign ? -f : f;
    }
    bits = exp == 0x1f ? sign | 0x7f800000u | (mant << 13) : sign | ((exp + 112) << 23) | (mant << 13);
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* A super-block's float term from its exact integer sums (sumi: codes times
 * q8_k values times group scales; summ: group mins times bsums), with y_d the
 * q8_k scale and x_d, x_dmin the block's: the one expression of the reference
 * and NEON kernels (which agree bit for bit). Symmetric formats (q3_k, q6_k)
 * have no mins. */
static inline float quant_k_block_sum_sym(float y_d, float x_d, int sumi) { return y_d * x_d * (float)sumi; }

static inline float quant_k_block_sum_affine(float y_d, float x_d, float x_dmin, int sumi, int summ) {
    float d = y_d * x_d, dmin = y_d * x_dmin;
    return d * (float)sumi - dmin * (float)summ;
}

/* The 8 6-bit scales and mins of a q4_k / q5_k block (layout above). */
static inline void quant_k_unpack_scales_q4(const uint8_t s[12], uint8_t sc[8], uint8_t m[8]) {
    for (int g = 0; g < 4; g++) {
        sc[g] = s[g] & 63;
        m[g] = s[g + 4] & 63;
        sc[g + 4] = (uint8_t)((s[g + 8] & 15) | ((s[g] >> 6) << 4));
        m[g + 4] = (uint8_t)((s[g + 8] >> 4) | ((s[g + 4] >> 6) << 4));
    }
}

/* The 16 signed scales (-32..31) of a q3_k block (layout above). */
static inline void quant_k_unpack_scales_q3(const uint8_t s[12], int8_t sc[16]) {
    for (int g = 0; g < 16; g++) {
        int low = g < 8 ? s[g] & 15 : s[g - 8] >> 4;
        int high = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
        sc[g] = (int8_t)((low | high << 4) - 32);
    }
}

/* ---- reference row kernels (quant_k.c) ----
 * dequant: src (k/256 blocks) -> dst (k,); quant: src (k,) -> dst (k/256 blocks);
 * vec_dot: *s = x (n,) . y (n,), x of the weight type, y q8_k. */
void dequant_row_q2_k_ref(const void *src, float *dst, int64_t k);
void dequant_row_q3_k_ref(const void *src, float *dst, int64_t k);
void dequant_row_q4_k_ref(const void *src, float *dst, int64_t k);
void dequant_row_q5_k_ref(const void *src, float *dst, int64_t k);
void dequant_row_q6_k_ref(const void *src, float *dst, int64_t k);
void dequant_row_q8_k_ref(const void *src, float *dst, int64_t k);

void quant_row_q2_k_ref(const float *src, void *dst, int64_t k);
void quant_row_q3_k_ref(const float *src, void *dst, int64_t k);
void quant_row_q4_k_ref(const float *src, void *dst, int64_t k);
void quant_row_q5_k_ref(const float *src, void *dst, int64_t k);
void quant_row_q6_k_ref(const float *src, void *dst, int64_t k);
/* q8_k as llama.cpp does it: per block, max = the value of largest magnitude
 * (first one on ties), iscale = -127/max, q = min(127, round_half_even(iscale*x)),
 * d = 1/iscale; an all-zero block gets d = 0. */
void quant_row_q8_k_ref(const float *src, void *dst, int64_t k);

void vec_dot_q2_k_q8_k_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q3_k_q8_k_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q4_k_q8_k_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q5_k_q8_k_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q6_k_q8_k_ref(int64_t n, float *s, const void *x, const void *y);

/* ---- SIMD kernels (kern_x86_k.c) ----
 * The kernel written for exactly that isa level, or NULL; the caller checks
 * that the CPU supports the level. */
quant_vec_dot_fn kern_x86_k_vec_dot(int wtype, int isa);
quant_quant_fn kern_x86_k_quant(int type, int isa);
quant_vec_dot_toks_fn kern_x86_k_vec_dot_toks(int wtype, int isa);

/* ---- NEON kernels (kern_arm.c) ----
 * The k-quant dot and its several-token twin at the NEON level (dotprod or
 * plain, as kern.h's kern_arm_use_dotprod says), or NULL off aarch64. Both
 * give the reference's bits. */
quant_vec_dot_fn kern_arm_k_vec_dot(int wtype);
quant_vec_dot_toks_fn kern_arm_k_vec_dot_toks(int wtype);
/* The NEON q8_k quantizer (bytes of the reference), NULL for other types or off aarch64. */
quant_quant_fn kern_arm_k_quant(int type);

#endif
