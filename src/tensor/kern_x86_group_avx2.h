/* kern_x86_group_avx2.h - steps shared by the AVX2 packed matmul kernels
 * (kern_x86_gemm_avx2.c: q4_0, q8_0; kern_x86_gemm_k_avx2.c: q4_k, q6_k),
 * which hold a group of eight weight rows in the eight 32-bit lanes of a ymm
 * register: the 8 x 8 dword transpose that puts row r in lane r, the
 * prefetch of the next group and the store of a group's results. Static
 * inline with their own target attribute, so including this keeps the
 * includer's baseline plain x86-64. x86-64 only. */
#ifndef HIVE_TENSOR_KERN_X86_GROUP_AVX2_H
#define HIVE_TENSOR_KERN_X86_GROUP_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define GROUP_AVX2_FN __attribute__((target("avx2,fma,f16c")))
#define INLINE inline __attribute__((always_inline))
#define GROUP_ROWS 8

static INLINE uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The eight rows' f16 at byte off as f32 lanes, inserted in a register: stored to the stack as eight
 * halves and loaded as one vector they would stall store forwarding. */
static INLINE GROUP_AVX2_FN __m256 scales8(const uint8_t *const rows[GROUP_ROWS], size_t off) {
    __m128i d = _mm_cvtsi32_si128(load_u16(rows[0] + off));
    d = _mm_insert_epi16(d, load_u16(rows[1] + off), 1);
    d = _mm_insert_epi16(d, load_u16(rows[2] + off), 2);
    d = _mm_insert_epi16(d, load_u16(rows[3] + off), 3);
    d = _mm_insert_epi16(d, load_u16(rows[4] + off), 4);
    d = _mm_insert_epi16(d, load_u16(rows[5] + off), 5);
    d = _mm_insert_epi16(d, load_u16(rows[6] + off), 6);
    d = _mm_insert_epi16(d, load_u16(rows[7] + off), 7);
    return _mm256_cvtph_ps(d);
}

/* 8 x 8 dword transpose: out[k] lane r = dword k of in[r]. */
static INLINE GROUP_AVX2_FN void transpose8_epi32(const __m256i in[8], __m256i out[8]) {
    __m256i t[8], u[8];
#pragma GCC unroll 4
    for (int r = 0; r < 8; r += 2) {
        t[r] = _mm256_unpacklo_epi32(in[r], in[r + 1]);     /* dwords 0,1 | 4,5 of rows r, r+1 */
        t[r + 1] = _mm256_unpackhi_epi32(in[r], in[r + 1]); /* dwords 2,3 | 6,7 */
    }
#pragma GCC unroll 2
    for (int h = 0; h < 8; h += 4) {
        u[h] = _mm256_unpacklo_epi64(t[h], t[h + 2]);         /* dword 0 | 4 of rows h..h+3 */
        u[h + 1] = _mm256_unpackhi_epi64(t[h], t[h + 2]);     /* dword 1 | 5 */
        u[h + 2] = _mm256_unpacklo_epi64(t[h + 1], t[h + 3]); /* dword 2 | 6 */
        u[h + 3] = _mm256_unpackhi_epi64(t[h + 1], t[h + 3]); /* dword 3 | 7 */
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) { /* the halves swapped */
        out[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
        out[j + 4] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
    }
}

/* A group's eight rows are one contiguous span of memory, but they are read
 * block by block side by side: eight streams, more than the hardware
 * prefetchers follow well. So block `part` of `parts` also fetches its share
 * of the next group's span (spread out: a burst of prefetches stalls on the
 * fill buffers). */
static INLINE void prefetch_share(const uint8_t *next, size_t span, int64_t part, int64_t parts) {
    size_t share = (span / (size_t)parts + 63) / 64 * 64;
    uintptr_t p = (uintptr_t)next + (uintptr_t)part * share; /* an address only: past the end is harmless */
    for (size_t o = 0; o < share; o += 64) _mm_prefetch((const char *)(p + o), _MM_HINT_T1);
}

/* The group of rows [r0, r0 + 8) of w (n_rows rows, w_stride bytes apart):
 * rows[r] = its row r, returns R, the rows that exist; a short group repeats
 * its first row (lanes are independent, the extra lanes are not stored). */
static INLINE int group_rows(const uint8_t *w, size_t w_stride, int64_t n_rows, int64_t r0,
                             const uint8_t *rows[GROUP_ROWS]) {
    int R = n_rows - r0 < GROUP_ROWS ? (int)(n_rows - r0) : GROUP_ROWS;
    for (int r = 0; r < GROUP_ROWS; r++) rows[r] = w + (size_t)(r0 + (r < R ? r : 0)) * w_stride;
    return R;
}

/* The group's results, lanes r < R, into y (token t at y + t * y_stride). */
static INLINE GROUP_AVX2_FN void store_group(const __m256 *acc, int64_t n_tok, float *y, int64_t y_stride, int R) {
    for (int64_t t = 0; t < n_tok; t++) {
        float v[GROUP_ROWS];
        _mm256_storeu_ps(v, acc[t]);
        memcpy(y + t * y_stride, v, sizeof(float) * (size_t)R);
    }
}

#endif
