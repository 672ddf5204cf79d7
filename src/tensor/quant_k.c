/* quant_k.c - placeholder until the k-quant formats land (being written). */
#include <stddef.h>
#include "quant_k.h"

size_t quant_k_block_bytes(int type) { (void)type; return 0; }
quant_dequant_fn quant_k_dequant(int type) { (void)type; return NULL; }
quant_quant_fn quant_k_quant(int type) { (void)type; return NULL; }
quant_vec_dot_fn quant_k_vec_dot(int type, int isa) { (void)type; (void)isa; return NULL; }
