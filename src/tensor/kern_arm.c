/* kern_arm.c - NEON kernels: not written yet.
 *
 * On aarch64 tensor.c reports the NEON level (Advanced SIMD is mandatory
 * there), but this file hands out no kernels, so every type falls back to
 * the scalar reference kernels of quant_legacy.c (correct, slow). A NEON
 * q4_0 / q8_0 dot (vdotq_s32 where the CPU has dotprod) belongs here. */
#include "kern.h"

quant_vec_dot_fn kern_arm_vec_dot(int wtype, int isa) {
    (void)wtype, (void)isa;
    return NULL;
}

quant_quant_fn kern_arm_quant(int type, int isa) {
    (void)type, (void)isa;
    return NULL;
}
