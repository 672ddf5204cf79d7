/* kern_x86_gemm_avx2.c - AVX2 matmul kernels for q4_0 and q8_0 weights,
 * hive_matmul's fast path at the AVX2 level (kern_gemm in kern.h): what
 * CPUs without AVX-512 (Zen 2/3, Intel client cores) run for decode and
 * prefill.
 *
 * Rows go in groups of eight, one row per 32-bit lane of a ymm register, so
 * that a block's integer dot ends in the lane of its row with no horizontal
 * sums, and the float steps run on eight rows at once. The canonical
 * computation of one output y(row, token), performed by every path below:
 *   acc = 0; for every block i of the row, in order:
 *     isum = exact integer dot of weight block i and activation block i
 *            (q4_0: sum (q - 8) y; q8_0: sum q y)
 *     acc  = fma(float(isum), dx_i * dy_i, acc)
 *   y = acc
 * with dx, dy the blocks' f16 scales as f32. A lane never sees another
 * lane's data, so the bits of y(row, token) do not depend on which rows
 * share its group (a short group repeats a row), on the token count or on
 * the kernel path: decode, small batches and prefill, any thread count.
 *
 * A group's block i is transposed into W_k (k = 0..7): lane r = quad k
 * (elements 4k..4k+3) of row r's block. Against token t, the quad k of the
 * activation block is broadcast to all lanes, so vpmaddubsw(W_k, y_k) and a
 * vpmaddwd with ones give each row's partial dot:
 *   q4_0: W_k holds the unsigned nibbles (0..15); the eight vpmaddubsw
 *         results are summed as int16 (|sum| <= 8 * 2 * 15 * 127 = 30480,
 *         exact), then isum = that - 8 * sum(y).
 *   q8_0: signed weights, so the sign trick: |W_k| times y_k carrying W_k's
 *         sign (|pair| <= 2 * 128 * 127, exact), widened to int32 per k.
 * The activations are quantized once per call (the reference quantizer's
 * bytes) with their scale as f32 and the sum of their values beside them.
 *
 * Prefill (KERN_GEMM_PACKED) transposes a group's whole row once into the
 * scratch and runs MT tokens at a time over it; small batches transpose
 * CHUNK blocks at a time into a stack buffer and run every token over them.
 * Decode (one token) skips the transpose: each row's block dot is taken in
 * its own vector (q4_0: two rows per vector) and horizontal adds bring row
 * r's exact isum to lane r (decode_q8_0, decode_q4_0), the same integers, so
 * the same bits; the transpose's stores cost more than those adds when the
 * block serves one token. A short q4_0 group (the matrix's last rows) takes
 * the chunked path. vpdpbusd on ymm
 * (AVX512-VL + VNNI) can replace vpmaddubsw in the tile; it is opt-in, see
 * use_vnni and BENCHMARKS.md for the measurement. */
#include <stdlib.h>

#include "kern.h"

#if defined(__x86_64__)
#include "kern_x86_group_avx2.h"

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#define MT 4      /* tokens per register tile */
#define CHUNK 64  /* blocks transposed at a time for decode and small batches */
#define MAX_FEW 64 /* the most tokens the chunked path holds accumulators for */

/* One activation block as the kernels read it. */
struct act_blk {
    int8_t qs[32];
    float d;   /* f16 scale as f32 */
    int32_t s; /* sum of qs */
};
_Static_assert(sizeof(struct act_blk) == 40, "act_blk is 40 bytes");

/* Block i of a group of eight rows, transposed. */
struct pk8 {
    uint8_t w[8][32]; /* w[k] lane r = quad k of row r */
    float dx[GROUP_ROWS];
};
_Static_assert(sizeof(struct pk8) == 288, "pk8 is 9 x 32 bytes");

static size_t act_bytes(int64_t n_cols) {
    return ((size_t)(n_cols / QK_LEGACY) * sizeof(struct act_blk) + 63) / 64 * 64;
}

static size_t pack_bytes(int64_t n_cols) { return (size_t)(n_cols / QK_LEGACY) * sizeof(struct pk8); }

/* x (n_cols,) -> act_blk per block: the q8_0 bytes of the AVX2 quantizer
 * (the reference's bytes), a few blocks at a time through a stack buffer. */
static AVX2_FN void act_prep(const float *x, void *vact, int64_t n_cols, int batched) {
    (void)batched; /* one layout for every path */
    quant_quant_fn quant = kern_x86_quant(HIVE_TYPE_Q8_0, HIVE_ISA_AVX2);
    struct act_blk *a = vact;
    const int64_t nb = n_cols / QK_LEGACY;
    block_q8_0 tmp[CHUNK];
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t b0 = 0; b0 < nb; b0 += CHUNK) {
        int n = nb - b0 < CHUNK ? (int)(nb - b0) : CHUNK;
        quant(x + b0 * QK_LEGACY, tmp, (int64_t)n * QK_LEGACY);
        for (int k = 0; k < n; k++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)tmp[k].qs);
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16);
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
            struct act_blk *o = &a[b0 + k];
            memcpy(o->qs, tmp[k].qs, sizeof o->qs);
            o->d = _cvtsh_ss(tmp[k].d);
            o->s = _mm_cvtsi128_si32(h);
        }
    }
}

/* ---- transposing eight rows' block i ---- */

static INLINE AVX2_FN void pack8_q4_0(const uint8_t *const rows[GROUP_ROWS], int64_t i, struct pk8 *out) {
    const size_t off = (size_t)i * sizeof(block_q4_0);
    __m256i a[4], t[4], d[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) /* row r in the low half, row r + 4 in the high half */
        a[r] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(rows[r] + off + 2))),
                                       _mm_loadu_si128((const __m128i *)(rows[r + 4] + off + 2)), 1);
    /* 4 x 4 dword transpose per half: d[j] lane r = dword j of row r */
    t[0] = _mm256_unpacklo_epi32(a[0], a[1]);
    t[1] = _mm256_unpacklo_epi32(a[2], a[3]);
    t[2] = _mm256_unpackhi_epi32(a[0], a[1]);
    t[3] = _mm256_unpackhi_epi32(a[2], a[3]);
    d[0] = _mm256_unpacklo_epi64(t[0], t[1]);
    d[1] = _mm256_unpackhi_epi64(t[0], t[1]);
    d[2] = _mm256_unpacklo_epi64(t[2], t[3]);
    d[3] = _mm256_unpackhi_epi64(t[2], t[3]);
    /* dword j: low nibbles are quad j, high nibbles quad j + 4 */
    const __m256i m4 = _mm256_set1_epi8(0x0f);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        _mm256_store_si256((__m256i *)out->w[j], _mm256_and_si256(d[j], m4));
        _mm256_store_si256((__m256i *)out->w[j + 4], _mm256_and_si256(_mm256_srli_epi16(d[j], 4), m4));
    }
    _mm256_store_ps(out->dx, scales8(rows, off));
}

static INLINE AVX2_FN void pack8_q8_0(const uint8_t *const rows[GROUP_ROWS], int64_t i, struct pk8 *out) {
    const size_t off = (size_t)i * sizeof(block_q8_0);
    __m256i b[8], d[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++) b[r] = _mm256_loadu_si256((const __m256i *)(rows[r] + off + 2));
    transpose8_epi32(b, d); /* d[k] lane r = quad k of row r */
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) _mm256_store_si256((__m256i *)out->w[k], d[k]);
    _mm256_store_ps(out->dx, scales8(rows, off));
}

/* ---- the register tile: eight rows x T tokens over nb transposed blocks ----
 * acc[t] (lane r = row r) carries the canonical accumulator across calls. */

/* wt: the weight type, plus W_VNNI for the vpdpbusd form of the tile */
enum { WQ4_0 = 0, WQ8_0 = 1, W_VNNI = 2 };
#define IS_Q4(wt) (((wt) & WQ8_0) == 0)

/* isum += u8 x i8 quads of a and b (vpdpbusd, the EVEX form on ymm: AVX512-VL
 * + VNNI). Inline asm: the AVX2 functions cannot take the intrinsic, and the
 * instruction only runs where kern_x86_gemm_avx2 found those extensions. */
static INLINE AVX2_FN __m256i dpbusd(__m256i isum, __m256i a, __m256i b) {
    __asm__("%{evex%} vpdpbusd %2, %1, %0" : "+x"(isum) : "x"(a), "x"(b));
    return isum;
}

static INLINE AVX2_FN __m256i bcast_quad(const struct act_blk *a, int k) {
    int32_t v;
    memcpy(&v, a->qs + 4 * k, sizeof v);
    return _mm256_set1_epi32(v);
}

/* The activation blocks of token t start at act + t * a_stride bytes. */
static INLINE const struct act_blk *act_tok(const uint8_t *act, size_t a_stride, int64_t t) {
    return (const struct act_blk *)(act + (size_t)t * a_stride);
}

static INLINE AVX2_FN void tile(const struct pk8 *pw, int64_t nb, const uint8_t *act, size_t a_stride,
                                __m256 *acc_io, int wt, const int T) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[MT];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc[t] = acc_io[t];
    for (int64_t i = 0; i < nb; i++) {
        const struct pk8 *p = pw + i;
        __m256i isum[MT];
        if (wt & W_VNNI) { /* exact int32 sums in any order: the same isum */
            const int32_t off = IS_Q4(wt) ? 8 : 128; /* q4_0 nibbles are q + 8, q8_0 bytes xor 0x80 are q + 128 */
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) isum[t] = _mm256_set1_epi32(-off * act_tok(act, a_stride, t)[i].s);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                __m256i w = _mm256_load_si256((const __m256i *)p->w[k]);
                if (!IS_Q4(wt)) w = _mm256_xor_si256(w, _mm256_set1_epi8((char)0x80));
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) isum[t] = dpbusd(isum[t], w, bcast_quad(act_tok(act, a_stride, t) + i, k));
            }
        } else if (IS_Q4(wt)) {
            __m256i m[MT];
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) m[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                __m256i w = _mm256_load_si256((const __m256i *)p->w[k]);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++)
                    m[t] = _mm256_add_epi16(m[t], _mm256_maddubs_epi16(w, bcast_quad(act_tok(act, a_stride, t) + i, k)));
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                isum[t] = _mm256_sub_epi32(_mm256_madd_epi16(m[t], ones), _mm256_set1_epi32(8 * act_tok(act, a_stride, t)[i].s));
        } else {
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                __m256i w = _mm256_load_si256((const __m256i *)p->w[k]);
                __m256i aw = _mm256_sign_epi8(w, w);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    __m256i y = _mm256_sign_epi8(bcast_quad(act_tok(act, a_stride, t) + i, k), w);
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, y), ones));
                }
            }
        }
        __m256 dx = _mm256_load_ps(p->dx);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]),
                                     _mm256_mul_ps(dx, _mm256_set1_ps(act_tok(act, a_stride, t)[i].d)), acc[t]);
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc_io[t] = acc[t];
}

/* Every token of the call over nb transposed blocks, MT at a time. */
static INLINE AVX2_FN void tile_all(const struct pk8 *pw, int64_t nb, const uint8_t *act, size_t a_stride,
                                    __m256 *acc, int64_t n_tok, int wt) {
    int64_t t = 0;
    for (; t + MT <= n_tok; t += MT) tile(pw, nb, act + (size_t)t * a_stride, a_stride, acc + t, wt, MT);
    switch (n_tok - t) {
    case 3: tile(pw, nb, act + (size_t)t * a_stride, a_stride, acc + t, wt, 3); break;
    case 2: tile(pw, nb, act + (size_t)t * a_stride, a_stride, acc + t, wt, 2); break;
    case 1: tile(pw, nb, act + (size_t)t * a_stride, a_stride, acc + t, wt, 1); break;
    default: break;
    }
}

static INLINE AVX2_FN void pack8(const uint8_t *const rows[GROUP_ROWS], int64_t i, struct pk8 *out, int wt) {
    if (IS_Q4(wt)) pack8_q4_0(rows, i, out);
    else pack8_q8_0(rows, i, out);
}

/* Decode of q8_0 without the transpose: each row's block dot is taken in its
 * own vector (the sign trick, eight int32 partial sums) and three levels of
 * horizontal adds leave row r's exact isum in lane r, the same integers as
 * the tile computes, so the same bits. Fewer shuffles than transposing the
 * 32-byte blocks for a single token. */
static INLINE AVX2_FN __m256 decode_q8_0(const uint8_t *const rows[GROUP_ROWS], int64_t i0, int64_t n,
                                         const struct act_blk *a, __m256 acc, size_t w_stride, int64_t nb) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t i = i0; i < i0 + n; i++) {
        prefetch_share(rows[0] + GROUP_ROWS * w_stride, GROUP_ROWS * w_stride, i, nb);
        const size_t off = (size_t)i * sizeof(block_q8_0);
        const __m256i y = _mm256_loadu_si256((const __m256i *)a[i].qs);
        __m256i p[GROUP_ROWS];
#pragma GCC unroll 8
        for (int r = 0; r < GROUP_ROWS; r++) {
            __m256i w = _mm256_loadu_si256((const __m256i *)(rows[r] + off + 2));
            p[r] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(y, w)), ones);
        }
        /* lanes: A = [r0..r3 of the low halves | r0..r3 of the high halves], B the same for r4..r7 */
        __m256i A = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
        __m256i B = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
        __m256i isum = _mm256_add_epi32(_mm256_permute2x128_si256(A, B, 0x20), _mm256_permute2x128_si256(A, B, 0x31));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(scales8(rows, off), _mm256_set1_ps(a[i].d)),
                              acc);
    }
    return acc;
}

/* Decode of q4_0 without the transpose, for a full group (eight rows, one
 * after the other w_stride apart). Rows r and r + 4 share a vector (row r's
 * 16 packed bytes in the low half, row r + 4's in the high); its low nibbles
 * meet activation elements 0..15 and its high nibbles elements 16..31 in two
 * vpmaddubsw, whose sum holds eight int16 partial dots per row (each |v| <=
 * 2 * 2 * 15 * 127 = 7620). Two levels of vphaddw over the four vectors and
 * a vpmaddwd with ones leave row r's sum of unsigned nibbles times y in lane
 * r (the int16 stages stay within 4 * 7620 = 30480: exact), and isum = that
 * - 8 * sum(y): the integers the tile computes, so the same bits, without
 * the transposed copy and its stores. */
static INLINE AVX2_FN __m256 decode_q4_0(const uint8_t *w, size_t w_stride, const struct act_blk *a, int64_t nb,
                                         int first) {
    const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0f);
    const size_t s = w_stride, s3 = 3 * w_stride;
    /* block i of rows 0..3 at q + r * s, of rows 4..7 at q4 + (r - 4) * s:
     * base + index addressing, four registers for the eight rows */
    const uint8_t *q = w, *q4 = w + 4 * s;
    /* Prefetch (see prefetch_share; here the share is fixed: 8 x 18 bytes,
     * three lines, per block): block i fetches its share of the span two
     * groups ahead into L2. One group ahead, the last rows of that span were
     * fetched only a few blocks before the next group read them, too late
     * for DRAM: TinyLlama Q4_0 decode on one thread ran ~20% slower. A call's
     * first group also fetches the next group, which nothing fetched yet.
     * Addresses only, as integers: past the matrix's end is harmless. */
    uintptr_t pf = (uintptr_t)w + 2 * GROUP_ROWS * s, pf1 = first ? (uintptr_t)w + GROUP_ROWS * s : 0;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        _mm_prefetch((const char *)pf, _MM_HINT_T1);
        _mm_prefetch((const char *)(pf + 64), _MM_HINT_T1);
        _mm_prefetch((const char *)(pf + 128), _MM_HINT_T1);
        if (pf1) {
            _mm_prefetch((const char *)pf1, _MM_HINT_T1);
            _mm_prefetch((const char *)(pf1 + 64), _MM_HINT_T1);
            _mm_prefetch((const char *)(pf1 + 128), _MM_HINT_T1);
            pf1 += GROUP_ROWS * sizeof(block_q4_0);
        }
        const __m256i ylo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)a[i].qs));
        const __m256i yhi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(a[i].qs + 16)));
        const uint8_t *const rows[GROUP_ROWS] = {q, q + s, q + 2 * s, q + s3, q4, q4 + s, q4 + 2 * s, q4 + s3};
        __m256i p[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(rows[r] + 2))),
                                                _mm_loadu_si128((const __m128i *)(rows[r + 4] + 2)), 1);
            p[r] = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(v, m4), ylo),
                                    _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), yhi));
        }
        /* after the two levels: rows 0..3 (two int16 each) | rows 4..7 */
        __m256i h = _mm256_hadd_epi16(_mm256_hadd_epi16(p[0], p[1]), _mm256_hadd_epi16(p[2], p[3]));
        __m256i isum = _mm256_sub_epi32(_mm256_madd_epi16(h, ones), _mm256_slli_epi32(_mm256_set1_epi32(a[i].s), 3));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(scales8(rows, 0), _mm256_set1_ps(a[i].d)), acc);
        q += sizeof(block_q4_0);
        q4 += sizeof(block_q4_0);
        pf += GROUP_ROWS * sizeof(block_q4_0);
    }
    return acc;
}

static INLINE AVX2_FN void gemm_impl(const struct kern_gemm_args *g, int wt) {
    const int64_t nb = g->n_cols / QK_LEGACY;
    const size_t a_stride = g->act_stride;
    for (int64_t r0 = 0; r0 < g->n_rows; r0 += GROUP_ROWS) {
        const uint8_t *rows[GROUP_ROWS];
        int R = group_rows(g->w, g->w_stride, g->n_rows, r0, rows);
        float *y = g->y + r0;
        if (g->batched == KERN_GEMM_PACKED) {
            struct pk8 *pw = g->scratch;
            for (int64_t i = 0; i < nb; i++) pack8(rows, i, pw + i, wt);
            for (int64_t t0 = 0; t0 < g->n_tok; t0 += MT) {
                int T = g->n_tok - t0 < MT ? (int)(g->n_tok - t0) : MT;
                __m256 acc[MT];
                for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
                tile_all(pw, nb, g->act + (size_t)t0 * a_stride, a_stride, acc, T, wt);
                store_group(acc, T, y + t0 * g->y_stride, g->y_stride, R);
            }
            continue;
        }
        if (g->batched == KERN_GEMM_DECODE && wt == WQ4_0 && R == GROUP_ROWS) {
            _mm256_storeu_ps(y, decode_q4_0(rows[0], g->w_stride, (const struct act_blk *)g->act, nb, r0 == 0));
            continue;
        }
        if (g->batched == KERN_GEMM_DECODE && wt == WQ8_0) {
            __m256 acc = _mm256_setzero_ps();
            for (int64_t i0 = 0; i0 < nb; i0 += CHUNK) {
                int64_t n = nb - i0 < CHUNK ? nb - i0 : CHUNK;
                acc = decode_q8_0(rows, i0, n, (const struct act_blk *)g->act, acc, g->w_stride, nb);
            }
            store_group(&acc, 1, y, g->y_stride, R);
            continue;
        }
        /* decode and small batches: CHUNK blocks transposed at a time, every
         * token run over them, MAX_FEW tokens at a time */
        for (int64_t t0 = 0; t0 < g->n_tok; t0 += MAX_FEW) {
            int64_t T = g->n_tok - t0 < MAX_FEW ? g->n_tok - t0 : MAX_FEW;
            __m256 acc[MAX_FEW];
            for (int64_t t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
            _Alignas(32) struct pk8 buf[CHUNK];
            for (int64_t i0 = 0; i0 < nb; i0 += CHUNK) {
                int n = nb - i0 < CHUNK ? (int)(nb - i0) : CHUNK;
                for (int i = 0; i < n; i++) {
                    prefetch_share(rows[0] + GROUP_ROWS * g->w_stride, GROUP_ROWS * g->w_stride, i0 + i, nb);
                    pack8(rows, i0 + i, &buf[i], wt);
                }
                tile_all(buf, n, g->act + (size_t)t0 * a_stride + (size_t)i0 * sizeof(struct act_blk), a_stride, acc, T,
                         wt);
            }
            store_group(acc, T, y + t0 * g->y_stride, g->y_stride, R);
        }
    }
}

static AVX2_FN void gemm_q4_0(const struct kern_gemm_args *g) { gemm_impl(g, WQ4_0); }
static AVX2_FN void gemm_q8_0(const struct kern_gemm_args *g) { gemm_impl(g, WQ8_0); }
static AVX2_FN void gemm_q4_0_vnni(const struct kern_gemm_args *g) { gemm_impl(g, WQ4_0 | W_VNNI); }
static AVX2_FN void gemm_q8_0_vnni(const struct kern_gemm_args *g) { gemm_impl(g, WQ8_0 | W_VNNI); }

static const kern_gemm gemm_tab[2][2] = {
    {{act_bytes, act_prep, pack_bytes, gemm_q4_0}, {act_bytes, act_prep, pack_bytes, gemm_q8_0}},
    {{act_bytes, act_prep, pack_bytes, gemm_q4_0_vnni}, {act_bytes, act_prep, pack_bytes, gemm_q8_0_vnni}},
};

/* The vpdpbusd tile only on request (HIVE_AVX2_VNNI=1, where the CPU has
 * AVX512-VL + VNNI): it exists to measure vpmaddubsw against VNNI on ymm
 * (BENCHMARKS.md, issue 8), while HIVE_ISA=avx2 on such a machine otherwise
 * runs what an AVX2-only CPU runs. */
static int use_vnni(void) {
    const char *e = getenv("HIVE_AVX2_VNNI");
    return e && !strcmp(e, "1") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

const kern_gemm *kern_x86_gemm_avx2(int wtype) {
    int v = use_vnni();
    if (wtype == HIVE_TYPE_Q4_0) return &gemm_tab[v][0];
    if (wtype == HIVE_TYPE_Q8_0) return &gemm_tab[v][1];
    return NULL;
}

#else

const kern_gemm *kern_x86_gemm_avx2(int wtype) {
    (void)wtype;
    return NULL;
}

#endif
