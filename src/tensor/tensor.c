/* tensor.c - the type table (names, block geometry, dot types, reference
 * kernels), f16/bf16 conversion, row conversions, CPU feature detection and
 * the choice of instruction-set level for the kernels.
 *
 * The legacy formats' kernels are in quant_legacy.c (reference) and
 * kern_x86.c / kern_arm.c (SIMD); the k-quants are reached only through
 * quant_k.h, and a k-quant type whose functions are missing there is simply
 * not supported by this build. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kern.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define TENSOR_X86 1
#endif

/* ---- type table ---- */

struct type_info {
    const char *name;
    int64_t block_size;   /* elements per block; 0 = type unknown to this build */
    size_t block_bytes;
    int dot_type;         /* what activations become for a matmul; -1: not a weight */
    quant_dequant_fn dequant;
    quant_quant_fn quant;
    quant_vec_dot_fn vec_dot_ref;
};

static const struct type_info legacy_types[HIVE_TYPE_COUNT] = {
    [HIVE_TYPE_F32] = {"f32", 1, 4, HIVE_TYPE_F32, dequant_row_f32_ref, quant_row_f32_ref,
                       vec_dot_f32_f32_ref},
    /* 16-bit weights keep f32 activations: closer to exact than llama.cpp's
     * f16/bf16 conversion and well within the reference tolerances. */
    [HIVE_TYPE_F16] = {"f16", 1, 2, HIVE_TYPE_F32, dequant_row_f16_ref, quant_row_f16_ref,
                       vec_dot_f16_f32_ref},
    [HIVE_TYPE_BF16] = {"bf16", 1, 2, HIVE_TYPE_F32, dequant_row_bf16_ref, quant_row_bf16_ref,
                        vec_dot_bf16_f32_ref},
    [HIVE_TYPE_Q4_0] = {"q4_0", 32, sizeof(block_q4_0), HIVE_TYPE_Q8_0, dequant_row_q4_0_ref,
                        quant_row_q4_0_ref, vec_dot_q4_0_q8_0_ref},
    [HIVE_TYPE_Q4_1] = {"q4_1", 32, sizeof(block_q4_1), HIVE_TYPE_Q8_1, dequant_row_q4_1_ref,
                        quant_row_q4_1_ref, vec_dot_q4_1_q8_1_ref},
    [HIVE_TYPE_Q5_0] = {"q5_0", 32, sizeof(block_q5_0), HIVE_TYPE_Q8_0, dequant_row_q5_0_ref,
                        quant_row_q5_0_ref, vec_dot_q5_0_q8_0_ref},
    [HIVE_TYPE_Q5_1] = {"q5_1", 32, sizeof(block_q5_1), HIVE_TYPE_Q8_1, dequant_row_q5_1_ref,
                        quant_row_q5_1_ref, vec_dot_q5_1_q8_1_ref},
    [HIVE_TYPE_Q8_0] = {"q8_0", 32, sizeof(block_q8_0), HIVE_TYPE_Q8_0, dequant_row_q8_0_ref,
                        quant_row_q8_0_ref, vec_dot_q8_0_q8_0_ref},
    [HIVE_TYPE_Q8_1] = {"q8_1", 32, sizeof(block_q8_1), -1, dequant_row_q8_1_ref, quant_row_q8_1_ref,
                        NULL},
};

static const char *const kquant_names[] = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_k"};

static int is_kquant(int type) { return type >= HIVE_TYPE_Q2_K && type <= HIVE_TYPE_Q8_K; }

/* The facts of a type; block_size 0 when unknown. k-quants are asked of
 * quant_k.h each time (cheap), so they appear as soon as that module has them. */
static struct type_info type_get(int type) {
    struct type_info t = {"unknown", 0, 0, -1, NULL, NULL, NULL};
    if (type < 0 || type >= HIVE_TYPE_COUNT) return t;
    if (is_kquant(type)) {
        size_t bytes = quant_k_block_bytes(type);
        if (bytes == 0) return t;
        t.name = kquant_names[type - HIVE_TYPE_Q2_K];
        t.block_size = QK_K;
        t.block_bytes = bytes;
        t.dequant = quant_k_dequant(type);
        t.quant = quant_k_quant(type);
        t.vec_dot_ref = type == HIVE_TYPE_Q8_K ? NULL : quant_k_vec_dot(type, HIVE_ISA_REF);
        t.dot_type = t.vec_dot_ref ? HIVE_TYPE_Q8_K : -1;
        return t;
    }
    if (legacy_types[type].block_size) t = legacy_types[type];
    return t;
}

const char *hive_type_name(int type) { return type_get(type).name; }

int hive_type_from_name(const char *name) {
    if (!name) return -1;
    for (int t = 0; t < HIVE_TYPE_COUNT; t++) {
        const char *n = type_get(t).name;
        if (type_get(t).block_size && strcasecmp(n, name) == 0) return t;
    }
    return -1;
}

int64_t hive_type_block_size(int type) { return type_get(type).block_size; }

size_t hive_type_block_bytes(int type) { return type_get(type).block_bytes; }

uint64_t hive_type_row_bytes(int type, int64_t n) {
    struct type_info t = type_get(type);
    if (t.block_size == 0 || n < 0 || n % t.block_size) return 0;
    uint64_t blocks = (uint64_t)(n / t.block_size);
    if (blocks > UINT64_MAX / t.block_bytes) return 0;
    return blocks * t.block_bytes;
}

int hive_type_is_weight(int type) {
    struct type_info t = type_get(type);
    return t.block_size && t.dot_type >= 0 && t.dequant && t.vec_dot_ref;
}

int tensor_dot_type(int wtype) { return hive_type_is_weight(wtype) ? type_get(wtype).dot_type : -1; }

/* ---- f16 / bf16 ---- */

float hive_f16_to_f32(uint16_t h) { return kern_f16_to_f32(h); }
uint16_t hive_f32_to_f16(float f) { return kern_f32_to_f16(f); }
float hive_bf16_to_f32(uint16_t h) { return kern_bf16_to_f32(h); }
uint16_t hive_f32_to_bf16(float f) { return kern_f32_to_bf16(f); }

/* ---- rows ---- */

/* An unknown type or a bad n writes zeros, so callers never read garbage. */
void hive_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    struct type_info t = type_get(type);
    if (n <= 0) return;
    if (!t.block_size || !t.dequant || n % t.block_size) {
        memset(dst, 0, (size_t)n * sizeof *dst);
        return;
    }
    t.dequant(src, dst, n);
}

/* An unknown type or a bad n writes nothing (the size of dst is unknown). */
void hive_quantize_row(int type, const float *src, void *dst, int64_t n) {
    struct type_info t = type_get(type);
    if (n <= 0 || !t.block_size || !t.quant || n % t.block_size) return;
    t.quant(src, dst, n);
}

void hive_get_row(int wtype, const void *w, int64_t n_cols, int64_t row, float *dst) {
    uint64_t row_bytes = hive_type_row_bytes(wtype, n_cols);
    if (row_bytes == 0 || row < 0) {
        if (n_cols > 0) memset(dst, 0, (size_t)n_cols * sizeof *dst);
        return;
    }
    hive_dequantize_row(wtype, (const uint8_t *)w + (uint64_t)row * row_bytes, dst, n_cols);
}

/* ---- CPU features and ISA level ---- */

struct cpu_state {
    int best;              /* best supported enum hive_isa */
    int supported[4];      /* per enum hive_isa */
    char features[256];
};

static struct cpu_state cpu;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static atomic_int isa_now = -1;

static void feature_add(const char *name, int present) {
    if (!present) return;
    size_t len = strlen(cpu.features);
    snprintf(cpu.features + len, sizeof cpu.features - len, "%s%s", len ? " " : "", name);
}

#ifdef TENSOR_X86
/* XCR0: which register states the OS saves (AVX needs bits 1-2, AVX-512 5-7). */
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect_x86(void) {
    unsigned a, b, c, d;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 1 || !__get_cpuid(1, &a, &b, &c, &d)) return;
    int sse2 = (d >> 26) & 1, fma = (c >> 12) & 1, osxsave = (c >> 27) & 1;
    int avx_cpu = (c >> 28) & 1, f16c = (c >> 29) & 1;
    uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    int os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xe6) == 0xe6;
    unsigned b7 = 0, c7 = 0, a71 = 0;
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b7, c7, d);
        unsigned sub_leaves = a;
        if (sub_leaves >= 1) __cpuid_count(7, 1, a71, b, c, d);
    }
    int avx = avx_cpu && os_avx, avx2 = avx && ((b7 >> 5) & 1);
    int f512 = os_avx512 && ((b7 >> 16) & 1), dq = os_avx512 && ((b7 >> 17) & 1);
    int bw = os_avx512 && ((b7 >> 30) & 1), vl = os_avx512 && ((b7 >> 31) & 1);
    int vnni = os_avx512 && ((c7 >> 11) & 1), bf16 = os_avx512 && ((a71 >> 5) & 1);
    feature_add("sse2", sse2);
    feature_add("avx", avx);
    feature_add("avx2", avx2);
    feature_add("fma", fma && avx);
    feature_add("f16c", f16c && avx);
    feature_add("avx512f", f512);
    feature_add("avx512dq", dq);
    feature_add("avx512bw", bw);
    feature_add("avx512vl", vl);
    feature_add("avx512vnni", vnni);
    feature_add("avx512bf16", bf16);
    cpu.supported[HIVE_ISA_AVX2] = avx2 && fma && f16c;
    /* The AVX-512 kernels use VNNI; CPUs with AVX-512 but no VNNI (Skylake-X)
     * run the AVX2 kernels. */
    cpu.supported[HIVE_ISA_AVX512] = cpu.supported[HIVE_ISA_AVX2] && f512 && dq && bw && vl && vnni;
}
#endif

static int isa_from_name(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, hive_isa_name(i)) == 0) return i;
    return -1;
}

static int isa_clamp(int isa) {
    if (isa >= 0 && isa < 4 && cpu.supported[isa]) return isa;
    if (isa == HIVE_ISA_AVX512 && cpu.supported[HIVE_ISA_AVX2]) return HIVE_ISA_AVX2;
    return HIVE_ISA_REF;
}

static void cpu_detect(void) {
    cpu.supported[HIVE_ISA_REF] = 1;
#ifdef TENSOR_X86
    detect_x86();
#elif defined(__aarch64__)
    feature_add("neon", 1); /* Advanced SIMD is mandatory on aarch64 */
    feature_add("dotprod", kern_arm_dotprod_hw());
    cpu.supported[HIVE_ISA_NEON] = 1;
#endif
    cpu.best = HIVE_ISA_REF;
    for (int i = 1; i < 4; i++)
        if (cpu.supported[i]) cpu.best = i; /* AVX512 > AVX2; NEON only exists alone */
    int level = cpu.best;
    const char *env = getenv("HIVE_ISA");
    if (env && *env) {
        int want = isa_from_name(env);
        if (want < 0)
            hive_log(HIVE_LOG_WARN, "HIVE_ISA=%s is not one of ref|avx2|avx512|neon; using %s", env,
                     hive_isa_name(level));
        else
            level = isa_clamp(want);
    }
    atomic_store(&isa_now, level);
}

static void cpu_init(void) { pthread_once(&cpu_once, cpu_detect); }

int hive_isa_best(void) {
    cpu_init();
    return cpu.best;
}

int hive_isa_current(void) {
    cpu_init();
    return atomic_load(&isa_now);
}

int hive_isa_set(int isa) {
    cpu_init();
    int level = isa_clamp(isa);
    atomic_store(&isa_now, level);
    return level;
}

const char *hive_isa_name(int isa) {
    static const char *const names[] = {"ref", "avx2", "avx512", "neon"};
    return isa >= 0 && isa < 4 ? names[isa] : "unknown";
}

const char *hive_cpu_features(void) {
    cpu_init();
    return cpu.features;
}

/* ---- kernel dispatch ---- */

quant_vec_dot_fn tensor_vec_dot(int wtype, int isa) {
    if (!hive_type_is_weight(wtype)) return NULL;
    if (is_kquant(wtype)) return quant_k_vec_dot(wtype, isa);
    for (int level = isa; level > HIVE_ISA_REF; level--) {
        if (level == HIVE_ISA_NEON) {
            quant_vec_dot_fn f = kern_arm_vec_dot(wtype, level);
            if (f) return f;
            break; /* NEON is not above AVX-512 */
        }
        quant_vec_dot_fn f = kern_x86_vec_dot(wtype, level);
        if (f) return f;
    }
    return type_get(wtype).vec_dot_ref;
}

const kern_gemm *tensor_gemm(int wtype, int isa) {
    if (!hive_type_is_weight(wtype)) return NULL;
    if (is_kquant(wtype)) {
        /* also at the AVX-512 level where its k-quant dot is the AVX2 one (no VNNI) */
        int avx2 = isa == HIVE_ISA_AVX2 ||
                   (isa == HIVE_ISA_AVX512 && quant_k_vec_dot(wtype, isa) == quant_k_vec_dot(wtype, HIVE_ISA_AVX2));
        return avx2 ? kern_x86_gemm_k_avx2(wtype) : NULL;
    }
    if (isa == HIVE_ISA_AVX2) return kern_x86_gemm_avx2(wtype);
    return kern_x86_gemm(wtype, isa);
}

kern_vec_dot_rows_fn tensor_vec_dot_rows(int wtype, int isa) {
    if (!hive_type_is_weight(wtype) || is_kquant(wtype)) return NULL;
    if (isa == HIVE_ISA_NEON) return kern_arm_vec_dot(wtype, isa) ? kern_arm_vec_dot_rows(wtype, isa) : NULL;
    for (int level = isa; level > HIVE_ISA_REF && level != HIVE_ISA_NEON; level--)
        if (kern_x86_vec_dot(wtype, level)) return kern_x86_vec_dot_rows(wtype, level);
    return NULL;
}

quant_vec_dot_toks_fn tensor_vec_dot_toks(int wtype, int isa) {
    if (!hive_type_is_weight(wtype)) return NULL;
    if (is_kquant(wtype)) return quant_k_vec_dot_toks(wtype, isa);
    /* x86: the legacy types' batches run on the packed kernels (kern_gemm) instead;
     * NEON has no packed kernels: its several-token twins */
    if (isa == HIVE_ISA_NEON) return kern_arm_vec_dot(wtype, isa) ? kern_arm_vec_dot_toks(wtype, isa) : NULL;
    return NULL;
}

quant_quant_fn tensor_quant(int type, int isa) {
    if (is_kquant(type)) return quant_k_quant_isa(type, isa);
    for (int level = isa; level > HIVE_ISA_REF; level--) {
        if (level == HIVE_ISA_NEON) {
            quant_quant_fn f = kern_arm_quant(type, level);
            if (f) return f;
            break;
        }
        quant_quant_fn f = kern_x86_quant(type, level);
        if (f) return f;
    }
    return type_get(type).quant;
}
