/* kern_x86_gemm_k_avx2.c - AVX2 matmul kernels for q4_k and q6_k weights,
 * hive_matmul's fast path at the AVX2 level (kern_gemm in kern.h): decode and
 * prefill of the Q4_K_M files on CPUs without AVX-512 (and on AVX-512 CPUs
 * without VNNI, whose k-quant dots are the AVX2 ones).
 *
 * As in kern_x86_gemm_avx2.c, rows go in groups of eight, one row per 32-bit
 * lane of a ymm register. The canonical computation of one output
 * y(row, token), performed by every path below:
 *   acc = 0; for every super-block i of the row, in order:
 *     q4_k: sumi = sum_g sc_g * sum_{e in g} q_e * y_e        (exact int32)
 *           summ = sum_g m_g * (sum of y over group g)        (exact int32)
 *           acc  = fma(float(sumi), d_i * dy_i, acc)
 *           acc  = fma(-float(summ), dmin_i * dy_i, acc)
 *     q6_k: sumi = sum_g sc_g * sum_{e in g} (u_e - 32) * y_e (exact int32)
 *           acc  = fma(float(sumi), d_i * dy_i, acc)
 *   y = acc
 * with d, dmin the block's f16 scales as f32, dy the q8_k scale, sc_g, m_g
 * the scale and min of group g (q4_k: 8 groups of 32, q6_k: 16 of 16, codes
 * u = q + 32 in 0..63). A lane never sees another lane's data, so the bits do
 * not depend on which rows share its group (a short group repeats its first
 * row), on the token count, on the path or on the thread count. (The one-row
 * kernels of kern_x86_k.c sum in another order; hive_matmul does not use
 * them at this level.)
 *
 * Batches (n_tok >= 2) transpose CHUNK super-blocks of the group at a time
 * into a stack buffer (pk_q4k / pk_q6k: for group g and quad k, lane r = the
 * codes of elements 4k..4k+3 of group g of row r, one byte each), then run
 * every token over them, MT tokens per register tile: vpmaddubsw of a
 * transposed quad with the token's quad broadcast gives each row two int16
 * pair sums, and vpmaddwd with the group scale widens them. q4_k sums all 8
 * quads of a group as int16 first (|sum| <= 8 * 2 * 15 * 128 = 30720, exact),
 * q6_k two quads at a time (2 * 2 * 63 * 128 = 32256). So per 256 elements and
 * token, eight rows take 64 vpmaddubsw + 8 (q4_k) or 32 (q6_k) vpmaddwd,
 * where one-row kernels take 8 + 8 per row plus horizontal sums. The q4_k
 * mins and the q6_k offset take 4 / 8 vpmaddwd per block against the
 * activation's group sums.
 *
 * Decode (n_tok = 1) has nothing to share a transpose with: it computes each
 * row's integer sums the one-row way (kern_x86_k_avx2.h), reading whole
 * rows one after the other, reduces four rows' sums to their totals per
 * block in one tree and runs four lanes' float steps side by side: the same
 * integers and the same float operations, so the same bits. */
#include "kern.h"
#include "kern_x86_k_avx2.h"

#if defined(__x86_64__)
#include "kern_x86_group_avx2.h"

#define MT 4       /* tokens per register tile */
#define CHUNK 4    /* super-blocks transposed at a time (4 x <= 2.8 KiB on the stack, in L1) */
#define MAX_TOK 64 /* tokens whose accumulators one pass keeps */

/* One q8_k activation super-block as the kernels read it. */
struct act_k {
    block_q8_k q;    /* the reference quantizer's bytes (decode reads it as is; q6_k uses its bsums) */
    int16_t bs32[8]; /* sum of q.qs over each group of 32 (for the q4_k mins) */
    uint8_t pad[12];
};
_Static_assert(sizeof(struct act_k) == 320, "act_k is 5 x 64 bytes");

/* Super-block i of a group of eight q4_k rows, transposed. */
struct pk_q4k {
    uint8_t w[8][8][32]; /* w[g][k] lane r = codes of quad k of group g of row r */
    int16_t sc[8][16];   /* sc[g] lane r = scale g of row r, twice */
    int16_t mn[4][16];   /* mn[j] lane r = mins 2j, 2j+1 of row r */
    float d[GROUP_ROWS], dmin[GROUP_ROWS];
};
_Static_assert(sizeof(struct pk_q4k) % 32 == 0, "pk_q4k keeps 32-byte alignment");

/* Super-block i of a group of eight q6_k rows, transposed. */
struct pk_q6k {
    uint8_t w[16][4][32]; /* w[g][k] lane r = codes u of quad k of group g of row r */
    int16_t sc[16][16];   /* sc[g] lane r = scale g of row r, twice */
    int16_t cs[8][16];    /* cs[j] lane r = scales 2j, 2j+1 of row r (the offset) */
    float d[GROUP_ROWS];
};
_Static_assert(sizeof(struct pk_q6k) % 32 == 0, "pk_q6k keeps 32-byte alignment");

enum { WQ4_K = 0, WQ6_K = 1 };

static size_t act_bytes(int64_t n_cols) { return (size_t)(n_cols / QK_K) * sizeof(struct act_k); }

/* The transpose lives on the stack: no scratch. */
static size_t pack_bytes(int64_t n_cols) {
    (void)n_cols;
    return 0;
}

/* x (n_cols,) -> act_k per super-block: the q8_k bytes of the AVX2 quantizer
 * (the reference's bytes) and the group sums. */
static void act_prep(const float *x, void *vact, int64_t n_cols, int batched) {
    (void)batched; /* one layout for every path */
    quant_quant_fn quant = quant_k_quant_isa(HIVE_TYPE_Q8_K, HIVE_ISA_AVX2);
    struct act_k *a = vact;
    for (int64_t b = 0; b < n_cols / QK_K; b++) {
        quant(x + b * QK_K, &a[b].q, QK_K);
        for (int g = 0; g < 8; g++) a[b].bs32[g] = (int16_t)(a[b].q.bsums[2 * g] + a[b].q.bsums[2 * g + 1]);
        memset(a[b].pad, 0, sizeof a[b].pad);
    }
}

/* ---- transposing eight rows' super-block i ---- */

static INLINE int32_t load_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The eight rows' d and dmin (the f16 pair at the block's start) as f32 lanes. */
static INLINE TARGET_AVX2 void d_dmin8(const uint8_t *const rows[GROUP_ROWS], size_t off, __m256 *d, __m256 *dmin) {
    __m256i v = _mm256_setr_epi32(load_i32(rows[0] + off), load_i32(rows[1] + off), load_i32(rows[2] + off),
                                  load_i32(rows[3] + off), load_i32(rows[4] + off), load_i32(rows[5] + off),
                                  load_i32(rows[6] + off), load_i32(rows[7] + off));
    /* per 128-bit lane: the four d, then the four dmin; then d of all rows low, dmin high */
    const __m256i sep = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15));
    v = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, sep), _MM_SHUFFLE(3, 1, 2, 0));
    *d = _mm256_cvtph_ps(_mm256_castsi256_si128(v));
    *dmin = _mm256_cvtph_ps(_mm256_extracti128_si256(v, 1));
}

/* e[r] = 16 int16 of row r, [x0..x7 | x8..x15]; returns v[j] = [x_j of rows
 * 0..7 | x_{8+j} of rows 0..7]: an 8 x 8 int16 transpose per 128-bit lane. */
static INLINE TARGET_AVX2 void transpose8_epi16_lanes(const __m256i e[8], __m256i v[8]) {
    __m256i a[8], b[8];
#pragma GCC unroll 4
    for (int r = 0; r < 8; r += 2) {
        a[r] = _mm256_unpacklo_epi16(e[r], e[r + 1]);     /* x0..x3 of rows r, r+1 */
        a[r + 1] = _mm256_unpackhi_epi16(e[r], e[r + 1]); /* x4..x7 */
    }
#pragma GCC unroll 2
    for (int h = 0; h < 8; h += 4) { /* rows h..h+3 */
        b[h] = _mm256_unpacklo_epi32(a[h], a[h + 2]);         /* x0, x1 */
        b[h + 1] = _mm256_unpackhi_epi32(a[h], a[h + 2]);     /* x2, x3 */
        b[h + 2] = _mm256_unpacklo_epi32(a[h + 1], a[h + 3]); /* x4, x5 */
        b[h + 3] = _mm256_unpackhi_epi32(a[h + 1], a[h + 3]); /* x6, x7 */
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        v[2 * j] = _mm256_unpacklo_epi64(b[j], b[4 + j]);
        v[2 * j + 1] = _mm256_unpackhi_epi64(b[j], b[4 + j]);
    }
}

/* From v = transpose8_epi16_lanes' output: *lo lane r = x_j of row r twice,
 * *hi the same for x_{8+j}. */
static INLINE TARGET_AVX2 void dup_lanes(__m256i v, __m256i *lo, __m256i *hi) {
    __m256i a = _mm256_unpacklo_epi16(v, v), b = _mm256_unpackhi_epi16(v, v); /* rows 0..3, 4..7 */
    *lo = _mm256_permute2x128_si256(a, b, 0x20);
    *hi = _mm256_permute2x128_si256(a, b, 0x31);
}

/* From v0, v1 = outputs j, j+1 of transpose8_epi16_lanes: *lo lane r =
 * (x_j, x_{j+1}) of row r, *hi the same for x_{8+j}, x_{9+j}. */
static INLINE TARGET_AVX2 void pair_lanes(__m256i v0, __m256i v1, __m256i *lo, __m256i *hi) {
    __m256i a = _mm256_unpacklo_epi16(v0, v1), b = _mm256_unpackhi_epi16(v0, v1);
    *lo = _mm256_permute2x128_si256(a, b, 0x20);
    *hi = _mm256_permute2x128_si256(a, b, 0x31);
}

static INLINE TARGET_AVX2 void pack8_q4_k(const uint8_t *const rows[GROUP_ROWS], int64_t i, struct pk_q4k *out) {
    const size_t off = (size_t)i * sizeof(block_q4_k);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    /* codes: dword k of 32-byte chunk c holds quad k of group 2c (low nibbles) and of group 2c+1 (high) */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m256i in[8], d[8];
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++)
            in[r] = _mm256_loadu_si256((const __m256i *)(rows[r] + off + offsetof(block_q4_k, qs) + 32 * c));
        transpose8_epi32(in, d);
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            _mm256_store_si256((__m256i *)out->w[2 * c][k], _mm256_and_si256(d[k], low4));
            _mm256_store_si256((__m256i *)out->w[2 * c + 1][k], _mm256_and_si256(_mm256_srli_epi16(d[k], 4), low4));
        }
    }
    /* scales and mins: e[r] = int16 [sc0..sc7 | m0..m7] of row r */
    __m256i e[8], v[8], unused;
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++)
        e[r] = _mm256_cvtepu8_epi16(scales_mins_q45(rows[r] + off + offsetof(block_q4_k, scales)));
    transpose8_epi16_lanes(e, v);
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) {
        __m256i sc;
        dup_lanes(v[g], &sc, &unused);
        _mm256_store_si256((__m256i *)out->sc[g], sc);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m256i mn;
        pair_lanes(v[2 * j], v[2 * j + 1], &unused, &mn);
        _mm256_store_si256((__m256i *)out->mn[j], mn);
    }
    __m256 d, dmin;
    d_dmin8(rows, off, &d, &dmin);
    _mm256_store_ps(out->d, d);
    _mm256_store_ps(out->dmin, dmin);
}

static INLINE TARGET_AVX2 void pack8_q6_k(const uint8_t *const rows[GROUP_ROWS], int64_t i, struct pk_q6k *out) {
    const size_t off = (size_t)i * sizeof(block_q6_k);
    /* codes: run s of half h (32 elements from 128h + 32s) is groups 8h + 2s
     * and 8h + 2s + 1; its dword k is quad k % 4 of the group k / 4 selects */
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++) {
            __m256i in[8], d[8];
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) {
                __m256i u[4];
                codes_q6_k_avx2((const block_q6_k *)(rows[r] + off), h, u);
                in[r] = u[s];
            }
            transpose8_epi32(in, d);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++)
                _mm256_store_si256((__m256i *)out->w[8 * h + 2 * s + k / 4][k % 4], d[k]);
        }
    /* scales: e[r] = int16 [sc0..sc7 | sc8..sc15] of row r */
    __m256i e[8], v[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++)
        e[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(rows[r] + off + offsetof(block_q6_k, scales))));
    transpose8_epi16_lanes(e, v);
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) {
        __m256i lo, hi;
        dup_lanes(v[g], &lo, &hi);
        _mm256_store_si256((__m256i *)out->sc[g], lo);
        _mm256_store_si256((__m256i *)out->sc[8 + g], hi);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m256i lo, hi;
        pair_lanes(v[2 * j], v[2 * j + 1], &lo, &hi);
        _mm256_store_si256((__m256i *)out->cs[j], lo);
        _mm256_store_si256((__m256i *)out->cs[4 + j], hi);
    }
    _mm256_store_ps(out->d, scales8(rows, off + offsetof(block_q6_k, d)));
}

/* ---- the float steps, shared by every path ---- */

/* d_dy = d * dy, dmin_dy = dmin * dy per lane */
static INLINE TARGET_AVX2 __m256 step_q4_k(__m256 acc, __m256i sumi, __m256i summ, __m256 d_dy, __m256 dmin_dy) {
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), d_dy, acc);
    return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ), dmin_dy, acc);
}

static INLINE TARGET_AVX2 __m256 step_q6_k(__m256 acc, __m256i sumi, __m256 d_dy) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), d_dy, acc);
}

/* ---- the register tile: eight rows x T tokens over nb transposed blocks ----
 * acc[t] (lane r = row r) is the canonical accumulator of token t. */

static INLINE TARGET_AVX2 __m256i bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

static INLINE TARGET_AVX2 __m256i load256(const void *p) { return _mm256_load_si256((const __m256i *)p); }

/* The activation blocks of token t start at act + t * a_stride bytes. */
static INLINE const struct act_k *act_tok(const uint8_t *act, size_t a_stride, int64_t t) {
    return (const struct act_k *)(act + (size_t)t * a_stride);
}

/* q4_k block p against T tokens' block a_t = act_tok(act, a_stride, t) + i. */
static INLINE TARGET_AVX2 void tile_q4_k(const struct pk_q4k *p, const uint8_t *act, size_t a_stride, int64_t i,
                                          __m256 *acc, const int T) {
    __m256i sumi[MT];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) sumi[t] = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
        __m256i m[MT];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) m[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            __m256i w = load256(p->w[g][k]);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                m[t] = _mm256_add_epi16(
                    m[t], _mm256_maddubs_epi16(w, bcast32(act_tok(act, a_stride, t)[i].q.qs + 32 * g + 4 * k)));
        }
        __m256i sc = load256(p->sc[g]);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(m[t], sc));
    }
    __m256 d = _mm256_load_ps(p->d), dmin = _mm256_load_ps(p->dmin);
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        const struct act_k *a = act_tok(act, a_stride, t) + i;
        __m256i summ = _mm256_madd_epi16(load256(p->mn[0]), bcast32(a->bs32));
#pragma GCC unroll 3
        for (int j = 1; j < 4; j++) summ = _mm256_add_epi32(summ, _mm256_madd_epi16(load256(p->mn[j]), bcast32(a->bs32 + 2 * j)));
        const __m256 dy = _mm256_set1_ps(a->q.d);
        acc[t] = step_q4_k(acc[t], sumi[t], summ, _mm256_mul_ps(d, dy), _mm256_mul_ps(dmin, dy));
    }
}

/* q6_k block p against T tokens' block i. */
static INLINE TARGET_AVX2 void tile_q6_k(const struct pk_q6k *p, const uint8_t *act, size_t a_stride, int64_t i,
                                          __m256 *acc, const int T) {
    __m256i sumi[MT];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) { /* the -32 offset first: sum_g sc_g * bsum_g */
        const struct act_k *a = act_tok(act, a_stride, t) + i;
        __m256i corr = _mm256_madd_epi16(load256(p->cs[0]), bcast32(a->q.bsums));
#pragma GCC unroll 7
        for (int j = 1; j < 8; j++) corr = _mm256_add_epi32(corr, _mm256_madd_epi16(load256(p->cs[j]), bcast32(a->q.bsums + 2 * j)));
        sumi[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
    }
    for (int g = 0; g < 16; g++) {
        __m256i sc = load256(p->sc[g]);
#pragma GCC unroll 2
        for (int k = 0; k < 4; k += 2) {
            __m256i w0 = load256(p->w[g][k]), w1 = load256(p->w[g][k + 1]);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const int8_t *y = act_tok(act, a_stride, t)[i].q.qs + 16 * g + 4 * k;
                __m256i m = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast32(y)), _mm256_maddubs_epi16(w1, bcast32(y + 4)));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(m, sc));
            }
        }
    }
    __m256 d = _mm256_load_ps(p->d);
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
        acc[t] = step_q6_k(acc[t], sumi[t], _mm256_mul_ps(d, _mm256_set1_ps(act_tok(act, a_stride, t)[i].q.d)));
}

/* acc (in memory: it changes once per block) carries the canonical
 * accumulators of the T tokens across calls. */
static INLINE TARGET_AVX2 void tile(const uint8_t *pw, int64_t nb, const uint8_t *act, size_t a_stride, __m256 *acc,
                                    int wt, const int T) {
    for (int64_t i = 0; i < nb; i++) {
        if (wt == WQ4_K) tile_q4_k((const struct pk_q4k *)pw + i, act, a_stride, i, acc, T);
        else tile_q6_k((const struct pk_q6k *)pw + i, act, a_stride, i, acc, T);
    }
}

/* Every token of the pass over nb transposed blocks, MT at a time. */
static INLINE TARGET_AVX2 void tile_all(const uint8_t *pw, int64_t nb, const uint8_t *act, size_t a_stride,
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

/* ---- decode ---- */

/* Four rows x[0..3] (nb blocks each) against one token: the canonical steps
 * of four lanes. Each row is read from start to end, as the one-row kernels
 * read it, and each block the one-row way (kern_x86_k_avx2.h), to 8 int32
 * lanes of sumi and 8 of summ, added pairwise (vphaddd) into one register
 * kept on the stack. The per-block totals the canonical order needs then come
 * out of one reduction tree for the four rows, [S0 M0 S1 M1 | S2 M2 S3 M3]
 * (sumi S, summ M of rows 0-3), where a row alone took a tree of its own per
 * block. The float steps run in those lanes, d * dy and dmin * dy beside them:
 * lane 2r rounds as lane r of the tile's vfmadd does, with the same products,
 * so the same bits. (Measured, 2048 x 5632: the four rows read block by block
 * side by side cost 1.3-3x in cold memory, prefetched or not.) Long rows go
 * DECODE_CHUNK blocks at a time. out[r] = row r's result. */
#define DECODE_CHUNK 32
static INLINE TARGET_AVX2 void decode_rows4(const uint8_t *const x[4], int64_t nb, const struct act_k *a, int wt,
                                            float out[4]) {
    const size_t bb = wt == WQ6_K ? sizeof(block_q6_k) : sizeof(block_q4_k);
    __m256i h[4][DECODE_CHUNK];
    __m256 acc8 = _mm256_setzero_ps(); /* q4_k: lane 2r = row r */
    __m128 acc4 = _mm_setzero_ps();    /* q6_k: lane r = row r */
    for (int64_t i0 = 0; i0 < nb; i0 += DECODE_CHUNK) {
        const int n = nb - i0 < DECODE_CHUNK ? (int)(nb - i0) : DECODE_CHUNK;
        for (int r = 0; r < 4; r++) {
            const uint8_t *xb = x[r] + (size_t)i0 * bb;
            for (int i = 0; i < n; i++, xb += bb) {
                const block_q8_k *y = &a[i0 + i].q;
                if (wt == WQ6_K) {
                    h[r][i] = block_sums_q6_k_avx2((const block_q6_k *)xb, y);
                } else {
                    __m128 unused;
                    __m256i summ, sumi = block_sums_q45_avx2(xb, offsetof(block_q4_k, scales), 0,
                                                             offsetof(block_q4_k, qs), y, &unused, &summ);
                    h[r][i] = _mm256_hadd_epi32(sumi, summ);
                }
            }
        }
        for (int i = 0; i < n; i++) {
            const size_t off = (size_t)(i0 + i) * bb;
            const __m256 dy = _mm256_set1_ps(a[i0 + i].q.d);
            if (wt == WQ6_K) {
                __m256i g = _mm256_hadd_epi32(_mm256_hadd_epi32(h[0][i], h[1][i]), _mm256_hadd_epi32(h[2][i], h[3][i]));
                __m128i t = _mm_add_epi32(_mm256_castsi256_si128(g), _mm256_extracti128_si256(g, 1)); /* S0..S3 */
                const size_t od = off + offsetof(block_q6_k, d);
                __m128i dh = _mm_setr_epi16((short)load_u16(x[0] + od), (short)load_u16(x[1] + od),
                                            (short)load_u16(x[2] + od), (short)load_u16(x[3] + od), 0, 0, 0, 0);
                acc4 = _mm_fmadd_ps(_mm_cvtepi32_ps(t), _mm_mul_ps(_mm_cvtph_ps(dh), _mm256_castps256_ps128(dy)), acc4);
            } else {
                __m256i g01 = _mm256_hadd_epi32(h[0][i], h[1][i]), g23 = _mm256_hadd_epi32(h[2][i], h[3][i]);
                __m256i t = _mm256_add_epi32(_mm256_permute2x128_si256(g01, g23, 0x20),
                                             _mm256_permute2x128_si256(g01, g23, 0x31)); /* S0 M0 S1 M1 | ... */
                __m128i dh = _mm_setr_epi32(load_i32(x[0] + off), load_i32(x[1] + off), load_i32(x[2] + off),
                                            load_i32(x[3] + off)); /* the f16 pairs d, dmin */
                __m256 dd = _mm256_mul_ps(_mm256_cvtph_ps(dh), dy);
                __m256 f = _mm256_cvtepi32_ps(t);
                acc8 = _mm256_fmadd_ps(f, dd, acc8);
                acc8 = _mm256_fnmadd_ps(_mm256_movehdup_ps(f), _mm256_movehdup_ps(dd), acc8);
            }
        }
    }
    if (wt == WQ6_K) {
        _mm_storeu_ps(out, acc4);
    } else {
        float v[8];
        _mm256_storeu_ps(v, acc8);
        for (int r = 0; r < 4; r++) out[r] = v[2 * r];
    }
}

/* ---- driver ---- */

static INLINE TARGET_AVX2 void gemm_impl(const struct kern_gemm_args *g, int wt) {
    const int64_t nb = g->n_cols / QK_K;
    const size_t a_stride = g->act_stride, span = GROUP_ROWS * g->w_stride;
    for (int64_t r0 = 0; r0 < g->n_rows; r0 += GROUP_ROWS) {
        const uint8_t *rows[GROUP_ROWS];
        int R = group_rows(g->w, g->w_stride, g->n_rows, r0, rows);
        float *y = g->y + r0;
        if (g->n_tok == 1) {
            for (int r = 0; r < R; r += 4) {
                float v[4];
                decode_rows4(rows + r, nb, (const struct act_k *)g->act, wt, v);
                memcpy(y + r, v, sizeof(float) * (size_t)(R - r < 4 ? R - r : 4));
            }
            continue;
        }
        /* batches: CHUNK blocks transposed at a time, every token of the
         * pass run over them, MAX_TOK tokens per pass */
        for (int64_t t0 = 0; t0 < g->n_tok; t0 += MAX_TOK) {
            int64_t T = g->n_tok - t0 < MAX_TOK ? g->n_tok - t0 : MAX_TOK;
            __m256 acc[MAX_TOK];
            for (int64_t t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
            _Alignas(32) uint8_t buf[CHUNK * sizeof(struct pk_q6k)];
            _Static_assert(sizeof(struct pk_q6k) >= sizeof(struct pk_q4k), "buf holds either");
            for (int64_t i0 = 0; i0 < nb; i0 += CHUNK) {
                int n = nb - i0 < CHUNK ? (int)(nb - i0) : CHUNK;
                for (int i = 0; i < n; i++) {
                    if (t0 + MAX_TOK >= g->n_tok) prefetch_share(rows[0] + span, span, i0 + i, nb);
                    if (wt == WQ4_K) pack8_q4_k(rows, i0 + i, (struct pk_q4k *)buf + i);
                    else pack8_q6_k(rows, i0 + i, (struct pk_q6k *)buf + i);
                }
                tile_all(buf, n, g->act + (size_t)t0 * a_stride + (size_t)i0 * sizeof(struct act_k), a_stride, acc, T,
                         wt);
            }
            store_group(acc, T, y + t0 * g->y_stride, g->y_stride, R);
        }
    }
}

static TARGET_AVX2 void gemm_q4_k(const struct kern_gemm_args *g) { gemm_impl(g, WQ4_K); }
static TARGET_AVX2 void gemm_q6_k(const struct kern_gemm_args *g) { gemm_impl(g, WQ6_K); }

static const kern_gemm gemm_tab_q4_k = {act_bytes, act_prep, pack_bytes, gemm_q4_k};
static const kern_gemm gemm_tab_q6_k = {act_bytes, act_prep, pack_bytes, gemm_q6_k};

const kern_gemm *kern_x86_gemm_k_avx2(int wtype) {
    if (wtype == HIVE_TYPE_Q4_K) return &gemm_tab_q4_k;
    if (wtype == HIVE_TYPE_Q6_K) return &gemm_tab_q6_k;
    return NULL;
}

#else

const kern_gemm *kern_x86_gemm_k_avx2(int wtype) {
    (void)wtype;
    return NULL;
}

#endif
