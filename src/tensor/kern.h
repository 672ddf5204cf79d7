/* kern.h - internal door between the tensor dispatcher (tensor.c, matmul.c)
 * and the kernels of the legacy block formats: the scalar reference
 * (quant_legacy.c) and the SIMD versions (kern_x86.c, kern_arm.c).
 *
 * Block layouts are bit-compatible with GGUF / ggml (see the GGUF spec):
 *   q4_0: f16 d | 16 B nibbles           x = d * (q - 8),  q in 0..15
 *   q4_1: f16 d | f16 m | 16 B nibbles   x = d * q + m
 *   q5_0: f16 d | u32 qh | 16 B nibbles  x = d * (q - 16), q in 0..31
 *   q5_1: f16 d | f16 m | u32 qh | 16 B  x = d * q + m
 *   q8_0: f16 d | 32 x i8                x = d * q
 *   q8_1: f16 d | f16 s | 32 x i8        x = d * q, s = d * sum(q)
 * In a 4-bit block, element j (0..15) is the low nibble of byte j and element
 * j+16 its high nibble; in a 5-bit block bit j of qh is bit 4 of element j.
 *
 * The per-block scalar steps live here as static inline helpers so the
 * reference kernels and the SIMD tails share one copy. */
#ifndef HIVE_TENSOR_KERN_H
#define HIVE_TENSOR_KERN_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "hive/tensor.h"
#include "quant_k.h"

#define QK_LEGACY 32 /* elements per legacy block */

typedef struct { uint16_t d; uint8_t qs[16]; } block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } block_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } block_q8_0;
typedef struct { uint16_t d, s; int8_t qs[32]; } block_q8_1;

_Static_assert(sizeof(block_q4_0) == 18, "q4_0 block is f16 + 16 bytes");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1 block is 2 x f16 + 16 bytes");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0 block is f16 + u32 + 16 bytes");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1 block is 2 x f16 + u32 + 16 bytes");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0 block is f16 + 32 bytes");
_Static_assert(sizeof(block_q8_1) == 36, "q8_1 block is 2 x f16 + 32 bytes");

/* ---- f16 / bf16 (round to nearest even; inf, nan and subnormals kept) ---- */

static inline uint32_t kern_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float kern_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float kern_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return kern_bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in f32 */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    return kern_bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static inline uint16_t kern_f32_to_f16(float f) {
    uint32_t x = kern_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x1ff); /* quiet nan */
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* >= 65520 rounds to inf (and inf) */
    if (ax >= 0x38800000u) {                     /* normal f16: >= 2^-14 */
        ax += 0xfffu + ((ax >> 13) & 1);         /* round the 13 dropped bits, ties to even */
        return sign | (uint16_t)((ax - 0x38000000u) >> 13);
    }
    /* subnormal f16: adding 0.5 (ulp 2^-24) makes the FPU round to the f16
     * subnormal grid, ties to even; the low bits are then the mantissa. */
    float t = kern_bits_f32(ax) + 0.5f;
    return sign | (uint16_t)(kern_f32_bits(t) - 0x3f000000u);
}

static inline float kern_bf16_to_f32(uint16_t h) { return kern_bits_f32((uint32_t)h << 16); }

static inline uint16_t kern_f32_to_bf16(float f) {
    uint32_t x = kern_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* Rounds to the nearest integer, ties to even (the FPU's default mode),
 * clamped to [lo, hi]; nan gives 0 (so bad inputs never reach an UB cast). */
static inline int kern_round_even_clamp(float v, int lo, int hi) {
    float r = nearbyintf(v);
    if (r >= (float)lo && r <= (float)hi) return (int)r;
    return r > 0.0f ? hi : r < 0.0f ? lo : 0;
}

/* Truncates toward zero, clamped to [lo, hi]; nan gives lo. */
static inline int kern_trunc_clamp(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    return v >= (float)hi ? hi : (int)v;
}

/* ---- per-block scalar steps ---- */

/* Unpacks the 32 4-bit values of a block (0..15) in element order. */
static inline void kern_unpack_nibbles(const uint8_t qs[16], int q[32]) {
    for (int j = 0; j < 16; j++) {
        q[j] = qs[j] & 0x0f;
        q[j + 16] = qs[j] >> 4;
    }
}

/* Unpacks the 32 5-bit values (0..31) of a q5 block. */
static inline void kern_unpack_q5(const uint8_t qs[16], const uint8_t qh_bytes[4], int q[32]) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, sizeof qh); /* little-endian, as stored */
    kern_unpack_nibbles(qs, q);
    for (int j = 0; j < 32; j++) q[j] |= (int)((qh >> j) & 1) << 4;
}

/* sum_j (q[j] - offset) * y[j] over one block. */
static inline int kern_dot_block_i8(const int q[32], int offset, const int8_t y[32]) {
    int s = 0;
    for (int j = 0; j < 32; j++) s += (q[j] - offset) * y[j];
    return s;
}

/* A block's float term from its exact integer sum: the one expression every
 * kernel uses (reference and SIMD alike, so that they agree bit for bit). */
static inline float kern_block_sum_0(int isum, float dx, float dy) { return (float)isum * (dx * dy); }

static inline float kern_block_sum_1(int isum, float dx, float dy, float mx, float sy) {
    return (float)isum * (dx * dy) + mx * sy;
}

static inline float kern_dot_block_q4_0_q8_0(const block_q4_0 *x, const block_q8_0 *y) {
    int q[32];
    kern_unpack_nibbles(x->qs, q);
    return kern_block_sum_0(kern_dot_block_i8(q, 8, y->qs), kern_f16_to_f32(x->d), kern_f16_to_f32(y->d));
}

static inline float kern_dot_block_q4_1_q8_1(const block_q4_1 *x, const block_q8_1 *y) {
    int q[32];
    kern_unpack_nibbles(x->qs, q);
    return kern_block_sum_1(kern_dot_block_i8(q, 0, y->qs), kern_f16_to_f32(x->d), kern_f16_to_f32(y->d),
                            kern_f16_to_f32(x->m), kern_f16_to_f32(y->s));
}

static inline float kern_dot_block_q5_0_q8_0(const block_q5_0 *x, const block_q8_0 *y) {
    int q[32];
    kern_unpack_q5(x->qs, x->qh, q);
    return kern_block_sum_0(kern_dot_block_i8(q, 16, y->qs), kern_f16_to_f32(x->d), kern_f16_to_f32(y->d));
}

static inline float kern_dot_block_q5_1_q8_1(const block_q5_1 *x, const block_q8_1 *y) {
    int q[32];
    kern_unpack_q5(x->qs, x->qh, q);
    return kern_block_sum_1(kern_dot_block_i8(q, 0, y->qs), kern_f16_to_f32(x->d), kern_f16_to_f32(y->d),
                            kern_f16_to_f32(x->m), kern_f16_to_f32(y->s));
}

static inline float kern_dot_block_q8_0_q8_0(const block_q8_0 *x, const block_q8_0 *y) {
    int s = 0;
    for (int j = 0; j < 32; j++) s += x->qs[j] * y->qs[j];
    return kern_block_sum_0(s, kern_f16_to_f32(x->d), kern_f16_to_f32(y->d));
}

/* Quantizes 32 floats to one q8_0 block: d = amax/127, q = round_even(x * 127/amax).
 * Returns sum(q) (for q8_1). */
static inline int kern_quant_block_q8(const float *x, uint16_t *d_out, int8_t qs[32]) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        int q = kern_round_even_clamp(x[j] * id, -127, 127);
        qs[j] = (int8_t)q;
        sum += q;
    }
    *d_out = kern_f32_to_f16(amax / 127.0f);
    return sum;
}

/* ---- reference row kernels (quant_legacy.c) ----
 * dequant: src (k/32 blocks) -> dst (k,); quant: src (k,) -> dst (k/32 blocks);
 * vec_dot: *s = x (n,) . y (n,), x of the weight type, y of its dot type. */
void dequant_row_q4_0_ref(const void *src, float *dst, int64_t k);
void dequant_row_q4_1_ref(const void *src, float *dst, int64_t k);
void dequant_row_q5_0_ref(const void *src, float *dst, int64_t k);
void dequant_row_q5_1_ref(const void *src, float *dst, int64_t k);
void dequant_row_q8_0_ref(const void *src, float *dst, int64_t k);
void dequant_row_q8_1_ref(const void *src, float *dst, int64_t k);
void dequant_row_f32_ref(const void *src, float *dst, int64_t k);
void dequant_row_f16_ref(const void *src, float *dst, int64_t k);
void dequant_row_bf16_ref(const void *src, float *dst, int64_t k);

void quant_row_q4_0_ref(const float *src, void *dst, int64_t k);
void quant_row_q4_1_ref(const float *src, void *dst, int64_t k);
void quant_row_q5_0_ref(const float *src, void *dst, int64_t k);
void quant_row_q5_1_ref(const float *src, void *dst, int64_t k);
void quant_row_q8_0_ref(const float *src, void *dst, int64_t k);
void quant_row_q8_1_ref(const float *src, void *dst, int64_t k);
void quant_row_f32_ref(const float *src, void *dst, int64_t k);
void quant_row_f16_ref(const float *src, void *dst, int64_t k);
void quant_row_bf16_ref(const float *src, void *dst, int64_t k);

void vec_dot_f32_f32_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_f16_f32_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_bf16_f32_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q4_0_q8_0_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q4_1_q8_1_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q5_0_q8_0_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q5_1_q8_1_ref(int64_t n, float *s, const void *x, const void *y);
void vec_dot_q8_0_q8_0_ref(int64_t n, float *s, const void *x, const void *y);

/* Several weight rows against one activation row:
 * s[r] = x_r (n,) . y (n,) for r < nr, x_r at x + r * x_stride bytes,
 * 1 <= nr <= KERN_ROWS. Each row's result has exactly the bits of the
 * one-row vec_dot of the same type and isa level. */
#define KERN_ROWS 4
typedef void (*kern_vec_dot_rows_fn)(int64_t n, float *s, const void *x, size_t x_stride, const void *y,
                                     int nr);

/* ---- packed GEMM kernels (kern_x86_gemm.c) ----
 * hive_matmul's fast path for the weight types that have one. Activations are
 * quantized (to the bytes the dot type's reference quantizer gives) into a
 * kernel-private layout, one token row at a time (act_prep); gemm then computes
 *   y[t * y_stride + r] = W row r (n_cols,) . activation t (n_cols,)
 * for rows r < n_rows and tokens t < n_tok. batched selects the layout and the
 * kernel (KERN_GEMM_DECODE: one weight row streamed at a time, for decode;
 * KERN_GEMM_PACKED: weight rows repacked once per row tile into `scratch`
 * (pack_bytes) and reused across tokens, for prefill; KERN_GEMM_FEW: one
 * weight row streamed at a time, each group of its blocks unpacked into
 * registers once and used for every token, for small batches (continuous
 * batching); it takes the PACKED activation layout and no scratch). Every
 * kernel performs the same float operations per (row, token), so every result
 * has the same bits whatever n_tok, batched, the rows run together and the
 * thread count. */
enum { KERN_GEMM_DECODE = 0, KERN_GEMM_PACKED = 1, KERN_GEMM_FEW = 2 };
struct kern_gemm_args {
    int64_t n_cols, n_rows, n_tok, y_stride;
    const uint8_t *w; /* (n_rows, w_stride bytes) */
    size_t w_stride;
    const uint8_t *act; /* (n_tok, act_stride bytes), act_prep output */
    size_t act_stride;
    float *y;
    void *scratch; /* pack_bytes(n_cols), 64-byte aligned; KERN_GEMM_PACKED only */
    int batched;    /* KERN_GEMM_* */
};

typedef struct kern_gemm {
    size_t (*act_bytes)(int64_t n_cols); /* one prepared token row; a multiple of 64 */
    void (*act_prep)(const float *x, void *act, int64_t n_cols, int batched); /* KERN_GEMM_* */
    size_t (*pack_bytes)(int64_t n_cols);
    void (*gemm)(const struct kern_gemm_args *a);
} kern_gemm;

/* The packed kernels for exactly that isa level, or NULL. */
const kern_gemm *kern_x86_gemm(int wtype, int isa);
/* The AVX2 level's packed kernels (kern_x86_gemm_avx2.c), or NULL. */
const kern_gemm *kern_x86_gemm_avx2(int wtype);
/* The AVX2 level's packed k-quant kernels (kern_x86_gemm_k_avx2.c: q4_k, q6_k), or NULL. */
const kern_gemm *kern_x86_gemm_k_avx2(int wtype);

/* ---- SIMD kernels ----
 * Each returns the kernel implemented for exactly that isa level, or NULL
 * (the dispatcher then falls back to a lower level, finally to _ref). */
quant_vec_dot_fn kern_x86_vec_dot(int wtype, int isa);
quant_quant_fn kern_x86_quant(int type, int isa);
kern_vec_dot_rows_fn kern_x86_vec_dot_rows(int wtype, int isa);

/* NEON (kern_arm.c; NULL on other CPUs). The integer dots come in two
 * builds of one source (kern_arm_body.h): plain Advanced SIMD and dotprod
 * (vdotq_s32, armv8.2-a); they give identical bits (both equal _ref), and
 * the dotprod one is handed out when the CPU has it (HWCAP_ASIMDDP) and it
 * is not switched off. These take the same wtype for legacy and k-quants. */
quant_vec_dot_fn kern_arm_vec_dot(int wtype, int isa);
kern_vec_dot_rows_fn kern_arm_vec_dot_rows(int wtype, int isa);
quant_vec_dot_toks_fn kern_arm_vec_dot_toks(int wtype, int isa);
quant_quant_fn kern_arm_quant(int type, int isa);
/* 1 if the CPU has dotprod (always 0 off aarch64). */
int kern_arm_dotprod_hw(void);
/* Tests and benchmarks: on = 0 makes the kernels above the plain ones, 1
 * the dotprod ones where the CPU has them; returns the state now in force
 * (1: dotprod). The process starts with dotprod where the CPU has it and
 * HIVE_NEON_DOTPROD is not "0". */
int kern_arm_use_dotprod(int on);
/* The kernel tables of each build (kern_arm_body.h), for kern_arm.c. */
quant_vec_dot_fn kern_arm_vec_dot_neon(int wtype);
kern_vec_dot_rows_fn kern_arm_vec_dot_rows_neon(int wtype);
quant_vec_dot_toks_fn kern_arm_vec_dot_toks_neon(int wtype);
quant_vec_dot_fn kern_arm_vec_dot_dotprod(int wtype);
kern_vec_dot_rows_fn kern_arm_vec_dot_rows_dotprod(int wtype);
quant_vec_dot_toks_fn kern_arm_vec_dot_toks_dotprod(int wtype);

/* ---- dispatch (tensor.c) ---- */
/* The type activations are converted to for a weight type (-1 if none). */
int tensor_dot_type(int wtype);
/* Best kernels at or below isa; NULL when the type has none. */
quant_vec_dot_fn tensor_vec_dot(int wtype, int isa);
quant_quant_fn tensor_quant(int type, int isa);
/* The packed kernels of hive_matmul for wtype at exactly isa, or NULL. */
const kern_gemm *tensor_gemm(int wtype, int isa);
/* The multi-row form of tensor_vec_dot(wtype, isa), when that kernel has one. */
kern_vec_dot_rows_fn tensor_vec_dot_rows(int wtype, int isa);
/* The several-token form of tensor_vec_dot(wtype, isa), or NULL. */
quant_vec_dot_toks_fn tensor_vec_dot_toks(int wtype, int isa);

#endif
