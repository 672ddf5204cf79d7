/* quant_k.h - internal door between the tensor dispatcher (tensor.c) and the
 * k-quant formats (quant_k.c, kern_*_k.c): Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and
 * the activation type Q8_K. Super-blocks of QK_K = 256 elements. */
#ifndef HIVE_TENSOR_QUANT_K_H
#define HIVE_TENSOR_QUANT_K_H

#include <stdint.h>

#define QK_K 256

/* Row functions; k is a multiple of QK_K. */
typedef void (*quant_dequant_fn)(const void *src, float *dst, int64_t k);
typedef void (*quant_quant_fn)(const float *src, void *dst, int64_t k);
/* *s = dot(x, y) over n elements; x of the weight type, y of its dot type. */
typedef void (*quant_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);

/* Block size in bytes of a k-quant type (0 if not a k-quant type). */
size_t quant_k_block_bytes(int type);
quant_dequant_fn quant_k_dequant(int type);     /* NULL if not a k-quant type */
quant_quant_fn quant_k_quant(int type);         /* reference quantizer, Q8_K included */
/* Best vec_dot for the weight type at or below isa (enum hive_isa); NULL if
 * not a k-quant weight type. The dot type is always HIVE_TYPE_Q8_K. */
quant_vec_dot_fn quant_k_vec_dot(int type, int isa);

#endif
