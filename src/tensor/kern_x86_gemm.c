/* kern_x86_gemm.c - AVX-512 VNNI matmul kernels for q4_0 and q8_0 weights,
 * hive_matmul's fast path (kern_gemm in kern.h). Besides the AVX-512 level
 * they need VBMI (byte permutes) and GFNI (nibble split); CPUs without them
 * (Skylake-X, Cascade Lake) keep the vec_dot kernels of kern_x86.c.
 *
 * The canonical computation of one output y(row, token); every path below
 * performs exactly these float operations, so decode, prefill, any row split
 * and any thread count give the same bits:
 *   the row's blocks go in groups of 16 (the last one zero-padded); group G
 *   gives, for lane m = 0..15 and block b(m) = 16G + 4 (m % 4) + m / 4,
 *     isum[m] = exact integer dot of weight block b(m) and activation block
 *               b(m) (q4_0: sum (q - 8) y; q8_0: sum q y)
 *     acc[m]  = fma(float(isum[m]), dx[m] * dy[m], acc[m])
 *   with dx, dy the blocks' f16 scales as f32; then y = hsum16(acc).
 * Padding blocks have y = 0 and dx = dy = 0.
 *
 * Integer dots use vpdpbusd (unsigned times signed bytes into int32): q4_0
 * nibbles (0..15) and q8_0 bytes xor 0x80 (q + 128) are unsigned, and the
 * offsets come back through the activation block sums:
 *   isum = sum u * y - off * sum y,  off = 8 (q4_0) or 128 (q8_0).
 * "Quad j" of a block is its elements 4j..4j+3 (j = 0..7).
 *
 * Decode (batched = 0) streams one weight row at a time straight from memory
 * (one sequential stream per thread is what DRAM serves fastest). Four
 * blocks fill one vector, one 128-bit lane per block: q4_0 low nibbles
 * (elements 0..15) and high nibbles (16..31), q8_0 first and second halves,
 * against the activation elements in the same places; that leaves 4 int32
 * per block, and a 4x4 transpose-add of four such vectors gives isum.
 * Prefill (KERN_GEMM_PACKED) repacks a few rows at a time into W_j (lane
 * m = quad j of block b(m), unsigned) so that per token 8 vpdpbusd give isum,
 * and runs a register-blocked (rows x tokens) micro-kernel over them.
 * Small batches (KERN_GEMM_FEW, 2 to ~30 tokens) build the same W_j for one
 * group of two rows in registers and run every token against them: no
 * scratch round trip and no repacking cost spread over few tokens; the
 * weights are prefetched a few rows ahead, so reading them from DRAM
 * overlaps the compute. */
#include "kern.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512_FN __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,gfni")))
#define INLINE inline __attribute__((always_inline))

#define GROUP_BLOCKS 16

/* One group of 16 activation blocks (q8_0 values). */
struct act_group {
    /* decode: y[g] (g < 4) lane k (128-bit) = elements 0..15 of block 4g + k,
     *         y[4 + g] the elements 16..31;
     * batched: y[j] lane m (32-bit) = quad j of block b(m) */
    int8_t y[8][64];
    int32_t sum[16]; /* sum of block b(m)'s values */
    float dy[16];    /* block b(m)'s scale */
};
_Static_assert(sizeof(struct act_group) == 640, "act_group is 10 cache lines");

/* One group of 16 weight blocks repacked for the batched kernel. */
struct packed_group {
    uint8_t w[8][64]; /* lane m (32-bit) = quad j of block b(m), unsigned */
    float dx[16];
};
_Static_assert(sizeof(struct packed_group) == 576, "packed_group is 9 cache lines");

static inline int64_t n_groups(int64_t n_cols) { return (n_cols / QK_LEGACY + GROUP_BLOCKS - 1) / GROUP_BLOCKS; }

/* block of lane m */
static inline int lane_block(int m) { return 4 * (m % 4) + m / 4; }

/* ---- the canonical float steps (shared by every path) ---- */

static INLINE AVX512_FN __m512 canon_step(__m512 acc, __m512i isum, __m512 dx, __m512 dy) {
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dx, dy), acc);
}

static INLINE AVX512_FN float canon_sum(__m512 acc) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

/* ---- activations ---- */

static size_t act_bytes(int64_t n_cols) { return (size_t)n_groups(n_cols) * sizeof(struct act_group); }

/* x (n_cols,) -> n_groups act_group, q8_0 values as the reference quantizer gives them. */
static AVX512_FN void act_prep(const float *x, void *vact, int64_t n_cols, int batched) {
    quant_quant_fn quant = kern_x86_quant(HIVE_TYPE_Q8_0, HIVE_ISA_AVX512);
    struct act_group *a = vact;
    int64_t nb = n_cols / QK_LEGACY;
    for (int64_t b0 = 0; b0 < nb; b0 += GROUP_BLOCKS, a++) {
        block_q8_0 q[GROUP_BLOCKS];
        int nq = nb - b0 < GROUP_BLOCKS ? (int)(nb - b0) : GROUP_BLOCKS;
        quant(x + b0 * QK_LEGACY, q, (int64_t)nq * QK_LEGACY);
        memset(q + nq, 0, sizeof q[0] * (size_t)(GROUP_BLOCKS - nq));
        for (int m = 0; m < GROUP_BLOCKS; m++) {
            const block_q8_0 *blk = &q[lane_block(m)];
            __m256i v = _mm256_loadu_si256((const __m256i *)blk->qs);
            a->sum[m] = _mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(v))) +
                        _mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(v, 1)));
            a->dy[m] = _cvtsh_ss(blk->d);
        }
        if (!batched) {
            for (int g = 0; g < 4; g++)
                for (int k = 0; k < 4; k++) {
                    memcpy(&a->y[g][16 * k], q[4 * g + k].qs, 16);
                    memcpy(&a->y[4 + g][16 * k], q[4 * g + k].qs + 16, 16);
                }
        } else {
            for (int m = 0; m < GROUP_BLOCKS; m++)
                for (int j = 0; j < 8; j++) memcpy(&a->y[j][4 * m], q[lane_block(m)].qs + 4 * j, 4);
        }
    }
}

/* ---- shared vector steps ---- */

/* out lane 4k + g = sum of lane (128-bit) k of r[g] (exact int32). */
static INLINE AVX512_FN __m512i transpose_add4(const __m512i r[4]) {
    __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(r[0], r[1]), _mm512_unpackhi_epi32(r[0], r[1]));
    __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(r[2], r[3]), _mm512_unpackhi_epi32(r[2], r[3]));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
}

/* out[j] lane 4k + g = in[g] lane 4k + j (4x4 transpose inside each 128-bit lane). */
static INLINE AVX512_FN void transpose4(const __m512i in[4], __m512i out[4]) {
    __m512i a = _mm512_unpacklo_epi32(in[0], in[1]), b = _mm512_unpackhi_epi32(in[0], in[1]);
    __m512i c = _mm512_unpacklo_epi32(in[2], in[3]), d = _mm512_unpackhi_epi32(in[2], in[3]);
    out[0] = _mm512_unpacklo_epi64(a, c);
    out[1] = _mm512_unpackhi_epi64(a, c);
    out[2] = _mm512_unpacklo_epi64(b, d);
    out[3] = _mm512_unpackhi_epi64(b, d);
}

/* Byte index vectors built once (vpermb tables). */
struct perm_tables {
    __m512i q4_qs;   /* q4_0: byte i <- 18 (i/16) + 2 + i%16 from (x, x + 8) */
    __m512i q4_d;    /* q4_0: byte p < 32 <- 18 (p/8) + p%2 (d of block k at half 4k + g) */
    __m512i q8_lo;   /* q8_0: byte i <- 34 (i/16) + 2 + i%16 from (x, x + 64) */
    __m512i q8_hi;   /* q8_0: byte i <- 34 (i/16) + 10 + i%16 from (x + 8, x + 72) */
    __m512i q8_d;    /* q8_0: byte p < 32 <- 34 (p/8) + p%2 from (x, x + 64) */
};

static INLINE AVX512_FN __m512i bytes_from(const uint8_t t[64]) { return _mm512_loadu_si512(t); }

static AVX512_FN struct perm_tables make_tables(void) {
    uint8_t t[5][64] = {{0}};
    for (int i = 0; i < 64; i++) {
        t[0][i] = i < 48 ? (uint8_t)(18 * (i / 16) + 2 + i % 16) : (uint8_t)(64 + 48 + i % 16);
        t[1][i] = i < 32 ? (uint8_t)(18 * (i / 8) + i % 2) : 0;
        t[2][i] = (uint8_t)(34 * (i / 16) + 2 + i % 16);
        t[3][i] = (uint8_t)(34 * (i / 16) + 10 + i % 16);
        t[4][i] = i < 32 ? (uint8_t)(34 * (i / 8) + i % 2) : 0;
    }
    struct perm_tables p = {bytes_from(t[0]), bytes_from(t[1]), bytes_from(t[2]), bytes_from(t[3]), bytes_from(t[4])};
    return p;
}

/* Bytes of the halves 4k + g (k = 0..3): the f16 scales of subgroup g. */
static inline __mmask64 d_mask(int g) {
    __mmask64 m = 0;
    for (int k = 0; k < 4; k++) m |= (__mmask64)3 << (2 * (4 * k + g));
    return m;
}

/* ---- q4_0 ---- */

/* Blocks 4g..4g+3 of a group (x = the group's first block): *q = the 16
 * nibble bytes of block 4g + k in lane k, and their scales merged into *d. */
static INLINE AVX512_FN __m512i q4_0_sub(const uint8_t *x, int g, const struct perm_tables *pt, __m512i *d) {
    const uint8_t *p = x + 72 * g;
    __m512i a = _mm512_loadu_si512(p), b = _mm512_loadu_si512(p + 8);
    *d = _mm512_mask_permutexvar_epi8(*d, d_mask(g), pt->q4_d, a);
    return _mm512_permutex2var_epi8(a, pt->q4_qs, b);
}

/* Per byte: lo = x & 15, hi = x >> 4 (a GF(2) affine map: one instruction). */
static INLINE AVX512_FN void nibbles(__m512i q, __m512i *lo, __m512i *hi) {
    *lo = _mm512_and_si512(q, _mm512_set1_epi8(0x0f));
    *hi = _mm512_gf2p8affine_epi64_epi8(q, _mm512_set1_epi64(0x1020408000000000LL), 0);
}

static INLINE AVX512_FN __m512 q4_0_group_decode(__m512 acc, const uint8_t *x, const struct act_group *a,
                                                  const struct perm_tables *pt) {
    __m512i r[4], d = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        __m512i lo, hi;
        nibbles(q4_0_sub(x, g, pt, &d), &lo, &hi);
        r[g] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_load_si512(a->y[g]));
        r[g] = _mm512_dpbusd_epi32(r[g], hi, _mm512_load_si512(a->y[4 + g]));
    }
    __m512i isum = _mm512_sub_epi32(transpose_add4(r), _mm512_slli_epi32(_mm512_load_si512(a->sum), 3));
    __m512 dx = _mm512_cvtph_ps(_mm512_castsi512_si256(d));
    return canon_step(acc, isum, dx, _mm512_load_ps(a->dy));
}

static INLINE AVX512_FN void q4_0_pack_group(const uint8_t *x, struct packed_group *pg, const struct perm_tables *pt) {
    __m512i lo[4], hi[4], w[4], d = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        nibbles(q4_0_sub(x, g, pt, &d), &lo[g], &hi[g]);
    }
    transpose4(lo, w);
    for (int j = 0; j < 4; j++) _mm512_store_si512(pg->w[j], w[j]);
    transpose4(hi, w);
    for (int j = 0; j < 4; j++) _mm512_store_si512(pg->w[4 + j], w[j]);
    _mm512_store_ps(pg->dx, _mm512_cvtph_ps(_mm512_castsi512_si256(d)));
}

/* ---- q8_0 ---- */

/* Blocks 4g..4g+3: *lo / *hi = first / second 16 bytes (xor 0x80) of block 4g + k in lane k. */
static INLINE AVX512_FN void q8_0_sub(const uint8_t *x, int g, const struct perm_tables *pt, __m512i *lo, __m512i *hi,
                                      __m512i *d) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const uint8_t *p = x + 136 * g;
    __m512i a = _mm512_loadu_si512(p), b = _mm512_loadu_si512(p + 64);
    __m512i a8 = _mm512_loadu_si512(p + 8), b8 = _mm512_loadu_si512(p + 72);
    *lo = _mm512_xor_si512(_mm512_permutex2var_epi8(a, pt->q8_lo, b), flip);
    *hi = _mm512_xor_si512(_mm512_permutex2var_epi8(a8, pt->q8_hi, b8), flip);
    *d = _mm512_or_si512(*d, _mm512_maskz_permutex2var_epi8(d_mask(g), a, pt->q8_d, b));
}

static INLINE AVX512_FN __m512 q8_0_group_decode(__m512 acc, const uint8_t *x, const struct act_group *a,
                                                  const struct perm_tables *pt) {
    __m512i r[4], d = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        __m512i lo, hi;
        q8_0_sub(x, g, pt, &lo, &hi, &d);
        r[g] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_load_si512(a->y[g]));
        r[g] = _mm512_dpbusd_epi32(r[g], hi, _mm512_load_si512(a->y[4 + g]));
    }
    __m512i isum = _mm512_sub_epi32(transpose_add4(r), _mm512_slli_epi32(_mm512_load_si512(a->sum), 7));
    __m512 dx = _mm512_cvtph_ps(_mm512_castsi512_si256(d));
    return canon_step(acc, isum, dx, _mm512_load_ps(a->dy));
}

static INLINE AVX512_FN void q8_0_pack_group(const uint8_t *x, struct packed_group *pg, const struct perm_tables *pt) {
    __m512i lo[4], hi[4], w[4], d = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) q8_0_sub(x, g, pt, &lo[g], &hi[g], &d);
    transpose4(lo, w);
    for (int j = 0; j < 4; j++) _mm512_store_si512(pg->w[j], w[j]);
    transpose4(hi, w);
    for (int j = 0; j < 4; j++) _mm512_store_si512(pg->w[4 + j], w[j]);
    _mm512_store_ps(pg->dx, _mm512_cvtph_ps(_mm512_castsi512_si256(d)));
}

/* ---- one group of one row into registers (the FEW kernel) ----
 * The same vectors as pack_group stores (w[j] lane m = quad j of block b(m),
 * unsigned), for q4_0 transposed before the nibble split (bytewise, so it
 * commutes with the dword transpose): half the shuffles. */

static INLINE AVX512_FN void q4_0_unpack_group(const uint8_t *x, __m512i w[8], __m512 *dx,
                                               const struct perm_tables *pt) {
    __m512i raw[4], t[4], d = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) raw[g] = q4_0_sub(x, g, pt, &d);
    transpose4(raw, t);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) nibbles(t[j], &w[j], &w[4 + j]);
    *dx = _mm512_cvtph_ps(_mm512_castsi512_si256(d));
}

static INLINE AVX512_FN void q8_0_unpack_group(const uint8_t *x, __m512i w[8], __m512 *dx,
                                               const struct perm_tables *pt) {
    __m512i lo[4], hi[4], d = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) q8_0_sub(x, g, pt, &lo[g], &hi[g], &d);
    transpose4(lo, w);
    transpose4(hi, w + 4);
    *dx = _mm512_cvtph_ps(_mm512_castsi512_si256(d));
}

/* ---- drivers (wtype is a compile-time constant after inlining) ---- */

enum { WQ4_0, WQ8_0 };

static INLINE size_t block_bytes(int wt) { return wt == WQ4_0 ? sizeof(block_q4_0) : sizeof(block_q8_0); }

/* The row's last, partial group copied with zero padding (no read past the row). */
static INLINE void pad_tail(const uint8_t *row, int64_t nb, int wt, uint8_t *buf) {
    int64_t full = nb / GROUP_BLOCKS * GROUP_BLOCKS;
    size_t bb = block_bytes(wt), n = (size_t)(nb - full) * bb;
    memcpy(buf, row + (size_t)full * bb, n);
    memset(buf + n, 0, GROUP_BLOCKS * bb - n);
}

static INLINE AVX512_FN float row_dot_decode(const uint8_t *row, int64_t nb, const struct act_group *a, int wt,
                                             const struct perm_tables *pt) {
    const size_t gb = GROUP_BLOCKS * block_bytes(wt);
    __m512 acc = _mm512_setzero_ps();
    int64_t G = 0;
    for (; G < nb / GROUP_BLOCKS; G++) {
        acc = wt == WQ4_0 ? q4_0_group_decode(acc, row + G * gb, a + G, pt) : q8_0_group_decode(acc, row + G * gb, a + G, pt);
    }
    if (nb % GROUP_BLOCKS) {
        uint8_t tail[GROUP_BLOCKS * sizeof(block_q8_0)];
        pad_tail(row, nb, wt, tail);
        acc = wt == WQ4_0 ? q4_0_group_decode(acc, tail, a + G, pt) : q8_0_group_decode(acc, tail, a + G, pt);
    }
    return canon_sum(acc);
}

static INLINE AVX512_FN void pack_row(const uint8_t *row, int64_t nb, struct packed_group *pg, int wt,
                                      const struct perm_tables *pt) {
    const size_t gb = GROUP_BLOCKS * block_bytes(wt);
    int64_t G = 0;
    for (; G < nb / GROUP_BLOCKS; G++) {
        if (wt == WQ4_0) q4_0_pack_group(row + G * gb, pg + G, pt);
        else q8_0_pack_group(row + G * gb, pg + G, pt);
    }
    if (nb % GROUP_BLOCKS) {
        uint8_t tail[GROUP_BLOCKS * sizeof(block_q8_0)];
        pad_tail(row, nb, wt, tail);
        if (wt == WQ4_0) q4_0_pack_group(tail, pg + G, pt);
        else q8_0_pack_group(tail, pg + G, pt);
    }
}

/* KERN_GEMM_FEW: a block of up to FEW_ROWS rows against T tokens (packed
 * activation layout). The groups go in the outer loop, so a group's
 * activations (T x 640 bytes) stay in L1 for every row of the block; two
 * rows at a time are unpacked into registers and share each activation
 * load. Per (row, token) the canonical steps run over the groups in order
 * (facc holds the float accumulators between groups). */
#define FEW_TOKS 16 /* tokens per pass over a row block */
#define FEW_ROWS 4  /* rows per block (even) */
#define FEW_PF_ROWS 16 /* prefetch distance in rows */

/* Rows r < R (1 or 2) of the block, group G, every token: facc[r][t] += ... */
static INLINE AVX512_FN void few_step(const uint8_t *const src[2], const struct act_group *at, int64_t a_groups,
                                      __m512 facc[][FEW_TOKS], int T, int wt, const struct perm_tables *pt,
                                      const int R) {
    const __m128i shift = _mm_cvtsi32_si128(wt == WQ4_0 ? 3 : 7);
    __m512i w[2][8];
    __m512 dx[2];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++) {
        if (wt == WQ4_0) q4_0_unpack_group(src[r], w[r], &dx[r], pt);
        else q8_0_unpack_group(src[r], w[r], &dx[r], pt);
    }
    for (int t = 0; t < T; t++, at += a_groups) {
        /* two chains per row; the int32 sums are exact, so their order is free */
        __m512i i0[2], i1[2];
        __m512i off = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_sll_epi32(_mm512_load_si512(at->sum), shift));
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) i0[r] = off, i1[r] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int j = 0; j < 8; j += 2) {
            __m512i y0 = _mm512_load_si512(at->y[j]), y1 = _mm512_load_si512(at->y[j + 1]);
            /* one load for both rows: gcc would fold it into each vpdpbusd,
             * and 512-bit loads are what limits this loop on Zen 4 */
            __asm__("" : "+v"(y0), "+v"(y1));
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) {
                i0[r] = _mm512_dpbusd_epi32(i0[r], w[r][j], y0);
                i1[r] = _mm512_dpbusd_epi32(i1[r], w[r][j + 1], y1);
            }
        }
        __m512 dy = _mm512_load_ps(at->dy);
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) facc[r][t] = canon_step(facc[r][t], _mm512_add_epi32(i0[r], i1[r]), dx[r], dy);
    }
}

/* Rows [0, R) at w (w_stride apart) against T tokens. */
static INLINE AVX512_FN void rows_few(const uint8_t *w, size_t w_stride, int R, int64_t nb, const struct act_group *act,
                                      int64_t a_groups, float *y, int64_t y_stride, int T, int wt,
                                      const struct perm_tables *pt) {
    const size_t gb = GROUP_BLOCKS * block_bytes(wt);
    const int64_t ng = n_groups(nb * QK_LEGACY), full = nb / GROUP_BLOCKS;
    uint8_t tail[FEW_ROWS][GROUP_BLOCKS * sizeof(block_q8_0)];
    __m512 facc[FEW_ROWS][FEW_TOKS];
    for (int r = 0; r < R; r++) {
        for (int t = 0; t < T; t++) facc[r][t] = _mm512_setzero_ps();
        if (full < ng) pad_tail(w + (size_t)r * w_stride, nb, wt, tail[r]);
    }
    for (int64_t G = 0; G < ng; G++) {
        for (int r = 0; r < R; r += 2) {
            /* the same group of the rows FEW_PF_ROWS further on, into L2: with
             * the groups outer the block's rows are read as interleaved
             * streams, which the hardware prefetchers follow poorly */
            for (int k = 0; k < 2; k++) { /* an address only: prefetches past the end are harmless */
                uintptr_t pf = (uintptr_t)w + (uintptr_t)(r + k + FEW_PF_ROWS) * w_stride + (uintptr_t)G * gb;
                for (size_t o = 0; o < gb + 63; o += 64) _mm_prefetch((const char *)(pf + o), _MM_HINT_T1);
            }
            const uint8_t *src[2] = {w, w};
            for (int k = 0; k < 2 && r + k < R; k++)
                src[k] = G < full ? w + (size_t)(r + k) * w_stride + G * gb : tail[r + k];
            if (R - r >= 2) few_step(src, act + G, a_groups, &facc[r], T, wt, pt, 2);
            else few_step(src, act + G, a_groups, &facc[r], T, wt, pt, 1);
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) y[t * y_stride + r] = canon_sum(facc[r][t]);
}

/* R packed rows x T tokens over all ng groups:
 * y[t * y_stride + r] for the rows at w + r * ng and the tokens at a + t * a_groups. */
#define MR 4 /* rows per micro-kernel */
#define MT 3 /* tokens per micro-kernel */

static INLINE AVX512_FN void micro(const struct packed_group *w, int64_t ng, const struct act_group *a,
                                   int64_t a_groups, float *y, int64_t y_stride, int shift, const int R, const int T) {
    __m512 facc[MR][MT];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) facc[r][t] = _mm512_setzero_ps();
    for (int64_t G = 0; G < ng; G++) {
        __m512i iacc[MR][MT];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const struct act_group *at = a + t * a_groups + G;
            __m512i off = _mm512_sub_epi32(_mm512_setzero_si512(),
                                           _mm512_sll_epi32(_mm512_load_si512(at->sum), _mm_cvtsi32_si128(shift)));
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) iacc[r][t] = off;
        }
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            __m512i yv[MT];
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) yv[t] = _mm512_load_si512(a[t * a_groups + G].y[j]);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m512i wv = _mm512_load_si512(w[r * ng + G].w[j]);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) iacc[r][t] = _mm512_dpbusd_epi32(iacc[r][t], wv, yv[t]);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 dx = _mm512_load_ps(w[r * ng + G].dx);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                facc[r][t] = canon_step(facc[r][t], iacc[r][t], dx, _mm512_load_ps(a[t * a_groups + G].dy));
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) y[t * y_stride + r] = canon_sum(facc[r][t]);
}

#define MICRO_CASE(R, T)                                                                                                \
    case (R) * 8 + (T): micro(w, ng, a, a_groups, y, y_stride, shift, R, T); break

static AVX512_FN void micro_any(const struct packed_group *w, int64_t ng, const struct act_group *a, int64_t a_groups,
                                float *y, int64_t y_stride, int shift, int R, int T) {
    switch (R * 8 + T) {
        MICRO_CASE(4, 3); MICRO_CASE(4, 2); MICRO_CASE(4, 1);
        MICRO_CASE(3, 3); MICRO_CASE(3, 2); MICRO_CASE(3, 1);
        MICRO_CASE(2, 3); MICRO_CASE(2, 2); MICRO_CASE(2, 1);
        MICRO_CASE(1, 3); MICRO_CASE(1, 2); MICRO_CASE(1, 1);
    default: break;
    }
}

static size_t pack_bytes(int64_t n_cols) { return (size_t)MR * (size_t)n_groups(n_cols) * sizeof(struct packed_group); }

static INLINE AVX512_FN void gemm_impl(const struct kern_gemm_args *g, int wt) {
    const struct perm_tables pt = make_tables();
    const int64_t nb = g->n_cols / QK_LEGACY, ng = n_groups(g->n_cols);
    const int64_t a_groups = (int64_t)(g->act_stride / sizeof(struct act_group));
    const struct act_group *act = (const struct act_group *)g->act;
    if (g->batched == KERN_GEMM_FEW) {
        for (int64_t r0 = 0; r0 < g->n_rows; r0 += FEW_ROWS) {
            int R = g->n_rows - r0 < FEW_ROWS ? (int)(g->n_rows - r0) : FEW_ROWS;
            for (int64_t t0 = 0; t0 < g->n_tok; t0 += FEW_TOKS) {
                int T = g->n_tok - t0 < FEW_TOKS ? (int)(g->n_tok - t0) : FEW_TOKS;
                rows_few(g->w + (size_t)r0 * g->w_stride, g->w_stride, R, nb, act + t0 * a_groups, a_groups,
                         g->y + t0 * g->y_stride + r0, g->y_stride, T, wt, &pt);
            }
        }
        return;
    }
    if (g->batched == KERN_GEMM_DECODE) {
        for (int64_t r = 0; r < g->n_rows; r++) {
            const uint8_t *row = g->w + (size_t)r * g->w_stride;
            for (int64_t t = 0; t < g->n_tok; t++)
                g->y[t * g->y_stride + r] = row_dot_decode(row, nb, act + t * a_groups, wt, &pt);
        }
        return;
    }
    struct packed_group *pw = g->scratch;
    for (int64_t r0 = 0; r0 < g->n_rows; r0 += MR) {
        int R = g->n_rows - r0 < MR ? (int)(g->n_rows - r0) : MR;
        for (int r = 0; r < R; r++) pack_row(g->w + (size_t)(r0 + r) * g->w_stride, nb, pw + r * ng, wt, &pt);
        for (int64_t t0 = 0; t0 < g->n_tok; t0 += MT) {
            int T = g->n_tok - t0 < MT ? (int)(g->n_tok - t0) : MT;
            micro_any(pw, ng, act + t0 * a_groups, a_groups, g->y + t0 * g->y_stride + r0, g->y_stride,
                      wt == WQ4_0 ? 3 : 7, R, T);
        }
    }
}

static AVX512_FN void gemm_q4_0(const struct kern_gemm_args *g) { gemm_impl(g, WQ4_0); }
static AVX512_FN void gemm_q8_0(const struct kern_gemm_args *g) { gemm_impl(g, WQ8_0); }

static const kern_gemm gemm_tab_q4_0 = {act_bytes, act_prep, pack_bytes, gemm_q4_0};
static const kern_gemm gemm_tab_q8_0 = {act_bytes, act_prep, pack_bytes, gemm_q8_0};

const kern_gemm *kern_x86_gemm(int wtype, int isa) {
    if (isa != HIVE_ISA_AVX512 || !__builtin_cpu_supports("avx512vbmi") ||
        !__builtin_cpu_supports("gfni"))
        return NULL;
    if (wtype == HIVE_TYPE_Q4_0) return &gemm_tab_q4_0;
    if (wtype == HIVE_TYPE_Q8_0) return &gemm_tab_q8_0;
    return NULL;
}

#else

const kern_gemm *kern_x86_gemm(int wtype, int isa) {
    (void)wtype, (void)isa;
    return NULL;
}

#endif
