/* kern_arm_dotprod.c - the dotprod build of the NEON integer dots
 * (kern_arm_body.h): 16 int8 products summed four by four into int32 lanes
 * by one sdot (vdotq_s32).
 *
 * CMakeLists.txt compiles this one file with -march=armv8.2-a+dotprod, so
 * the rest of the library stays plain armv8-a; kern_arm.c hands these
 * kernels out only when the CPU reports dotprod. Built without that flag
 * (another compiler, another CPU), the tables are empty and the plain
 * kernels serve. */
#include "kern.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)

#define KA_DOT16(acc, a, b) ((acc) = vdotq_s32((acc), (a), (b)))
#define KA_NAME(x) x##_dotprod
#include "kern_arm_body.h"

#else

quant_vec_dot_fn kern_arm_vec_dot_dotprod(int wtype) {
    (void)wtype;
    return NULL;
}

kern_vec_dot_rows_fn kern_arm_vec_dot_rows_dotprod(int wtype) {
    (void)wtype;
    return NULL;
}

quant_vec_dot_toks_fn kern_arm_vec_dot_toks_dotprod(int wtype) {
    (void)wtype;
    return NULL;
}

#endif
