/* tensor.h - tensor types (bit-compatible with the GGUF/ggml block layouts)
 * and the kernels that multiply them.
 *
 * Numbering follows ggml's type ids, which is what GGUF stores. Block
 * layouts: see the GGUF spec and ggml's ggml-common.h descriptions. */
#ifndef HIVE_TENSOR_H
#define HIVE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "hive/core.h"

enum hive_type {
    HIVE_TYPE_F32 = 0,
    HIVE_TYPE_F16 = 1,
    HIVE_TYPE_Q4_0 = 2,
    HIVE_TYPE_Q4_1 = 3,
    HIVE_TYPE_Q5_0 = 6,
    HIVE_TYPE_Q5_1 = 7,
    HIVE_TYPE_Q8_0 = 8,
    HIVE_TYPE_Q8_1 = 9,   /* activation-only: Q8_0 + sum term */
    HIVE_TYPE_Q2_K = 10,
    HIVE_TYPE_Q3_K = 11,
    HIVE_TYPE_Q4_K = 12,
    HIVE_TYPE_Q5_K = 13,
    HIVE_TYPE_Q6_K = 14,
    HIVE_TYPE_Q8_K = 15,  /* activation-only: 256-block, f32 scale, i16 block sums */
    HIVE_TYPE_BF16 = 30,
    HIVE_TYPE_COUNT = 40, /* upper bound on type ids we index tables with */
};

/* Type facts. A type this build does not know has block size 0. */
const char *hive_type_name(int type);          /* "q4_0", ... or "unknown" */
int hive_type_from_name(const char *name);      /* -1 if unknown; case-insensitive */
int64_t hive_type_block_size(int type);         /* elements per block (1 for f32/f16/bf16) */
size_t hive_type_block_bytes(int type);         /* bytes per block */
/* Bytes for a row of n elements; 0 if type unknown or n not a block multiple. */
uint64_t hive_type_row_bytes(int type, int64_t n);
/* 1 if the type can be used as a weight for hive_matmul and dequantized. */
int hive_type_is_weight(int type);

/* f16 / bf16 scalar conversions (round to nearest even). */
float hive_f16_to_f32(uint16_t h);
uint16_t hive_f32_to_f16(float f);
float hive_bf16_to_f32(uint16_t h);
uint16_t hive_f32_to_bf16(float f);

/* Row conversions; n must be a multiple of the block size. */
void hive_dequantize_row(int type, const void *src, float *dst, int64_t n);
/* Reference quantizer: deterministic, writes valid blocks. Used by the model
 * maker and for activation quantization (q8_0, q8_1, q8_k). */
void hive_quantize_row(int type, const float *src, void *dst, int64_t n);

/* ---- kernels ----
 * Instruction-set levels. The best level the CPU supports is picked on first
 * use; tests may force a lower one to compare against the reference. */
enum hive_isa { HIVE_ISA_REF = 0, HIVE_ISA_AVX2 = 1, HIVE_ISA_AVX512 = 2, HIVE_ISA_NEON = 3 };
int hive_isa_best(void);               /* best level this CPU supports */
int hive_isa_current(void);
/* Forces a level (clamped to what the CPU supports); returns the level set. */
int hive_isa_set(int isa);
const char *hive_isa_name(int isa);
/* Space-separated CPU feature list, e.g. "avx2 fma f16c avx512f". */
const char *hive_cpu_features(void);

/* y (n_tok, n_rows) = x (n_tok, n_cols) @ W^T
 * W is n_rows rows of n_cols elements of type wtype (row-major, each row
 * hive_type_row_bytes(wtype, n_cols) bytes). x and y are f32, row-major.
 * Activations are converted to the weight type's dot type (q8_0 / q8_1 /
 * q8_k / f32) first, as llama.cpp does. Work is split across the pool by
 * output rows, so results are identical for any thread count.
 * Returns HIVE_OK, HIVE_ERR_UNSUPPORTED for an unknown type, HIVE_ERR_INVAL
 * when n_cols is not a block multiple, HIVE_ERR_NOMEM. */
int hive_matmul(hive_pool *pool, int wtype, const void *w, int64_t n_rows, int64_t n_cols,
                const float *x, int64_t n_tok, float *y);

/* One matrix of hive_matmul_many: y (n_tok, n_rows) = x (n_tok, n_cols) @ W^T,
 * W n_rows rows of type wtype as for hive_matmul. */
typedef struct hive_matmul_part {
    int wtype;
    const void *w;
    int64_t n_rows;
    float *y;
} hive_matmul_part;

#define HIVE_MATMUL_MAX_PARTS 4

/* Several matrices over the same x (attention's q, k and v; the FFN's gate
 * and up): the bytes of n_parts hive_matmul calls (n_parts at most
 * HIVE_MATMUL_MAX_PARTS), but where the parts' kernels are of one kind (all
 * packed, or none: the usual case, one weight type family per layer) x is
 * converted once per activation layout and all the parts' rows go through
 * the pool in one round, so the threads wait for each other once. Every part
 * is checked before any is computed; returns as hive_matmul. */
int hive_matmul_many(hive_pool *pool, const hive_matmul_part *parts, int n_parts, int64_t n_cols, const float *x,
                     int64_t n_tok);

/* Copies row `row` of a (n_rows, n_cols) weight matrix of type wtype into
 * dst as f32 (used for embedding lookups). */
void hive_get_row(int wtype, const void *w, int64_t n_cols, int64_t row, float *dst);

#endif
