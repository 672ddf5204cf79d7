/* kern_arm.c - NEON kernels (placeholder while being written). */
#include "kern.h"

quant_vec_dot_fn kern_arm_vec_dot(int wtype, int isa) { (void)wtype; (void)isa; return NULL; }
quant_quant_fn kern_arm_quant(int type, int isa) { (void)type; (void)isa; return NULL; }
