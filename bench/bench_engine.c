/* bench_engine.c - single-node engine speed on a TinyLlama-1.1B-shaped model.
 *
 * For Q4_0, Q8_0 and Q4_K_M (random weights made by `hive mkmodel`):
 *   prompt processing tok/s (128 tokens in one batch) and decode tok/s (64
 *   tokens, one at a time), at 1 and 2 threads, median of 5 runs each;
 *   the machine's read bandwidth, measured here; decode as a percentage of
 *   the bandwidth ceiling (bandwidth / bytes of weights read per token).
 * Prints a table and, last, one JSON object.
 *
 * usage: bench_engine [--quick] [--types q4_0,q8_0,q4_k_m] [--dir DIR] [--reps N]
 *   --quick uses a 4-layer model of the same width (for a fast sanity run). */
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h> /* the AVX2 read-bandwidth loop */
#endif

#include "bench_common.h"
#include "hive/gguf.h"
#include "hive/model.h"
#include "hive/tensor.h"

#define N_PROMPT 128
#define N_DECODE 64

/* ---- read bandwidth ---- */
struct bw_job {
    const float *buf;
    int64_t n;
    double sums[64];
};

#if defined(__x86_64__)
__attribute__((target("avx2"))) static double sum_avx2(const float *p, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float t[8];
    _mm256_storeu_ps(t, s);
    double r = 0;
    for (int k = 0; k < 8; k++) r += t[k];
    for (; i < n; i++) r += p[i];
    return r;
}
#endif

static double sum_plain(const float *p, int64_t n) {
    float a[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += p[i + k];
    double r = 0;
    for (int k = 0; k < 8; k++) r += a[k];
    for (; i < n; i++) r += p[i];
    return r;
}

static void bw_task(void *arg, int ith, int nth) {
    struct bw_job *j = arg;
    int64_t b, e;
    hive_split_range(j->n / 64, ith, nth, &b, &e); /* 64-float (256 B) aligned chunks */
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) {
        j->sums[ith] = sum_avx2(j->buf + b * 64, (e - b) * 64);
        return;
    }
#endif
    j->sums[ith] = sum_plain(j->buf + b * 64, (e - b) * 64);
}

/* GB/s reading a 1 GiB buffer, best of 5. */
static double measure_bandwidth(hive_pool *pool) {
    int64_t n = (int64_t)1 << 28;
    float *buf = hive_malloc_aligned((size_t)n * sizeof(float));
    if (!buf) return 0;
    for (int64_t i = 0; i < n; i++) buf[i] = (float)(i & 7);
    struct bw_job j = {.buf = buf, .n = n};
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = hive_now_ms();
        hive_pool_run(pool, bw_task, &j);
        double dt = hive_now_ms() - t0;
        double gbs = (double)n * sizeof(float) / (dt * 1e6);
        if (gbs > best) best = gbs;
    }
    hive_free_aligned(buf);
    return best;
}

/* ---- model runs ---- */
struct result {
    char type[16];
    int threads;
    double pp_tps, tg_tps;
    double bytes_per_token;
    double bw_gbs;
};

int main(int argc, char **argv) {
    const char *types = "q4_0,q8_0,q4_k_m";
    const char *dir = "/tmp/hive-bench-models";
    int quick = 0, reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) types = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--types a,b] [--dir DIR] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 16) reps = 5;
    printf("cpu: %s | isa: %s\n", hive_cpu_features(), hive_isa_name(hive_isa_current()));

    double bw[3] = {0};
    for (int t = 1; t <= 2; t++) {
        hive_pool *pool = hive_pool_create(t);
        bw[t] = measure_bandwidth(pool);
        hive_pool_free(pool);
        printf("read bandwidth, %d thread%s: %.1f GB/s\n", t, t > 1 ? "s" : "", bw[t]);
    }

    struct result res[16];
    int n_res = 0;
    char list[256];
    snprintf(list, sizeof list, "%s", types);
    for (char *save = NULL, *ty = strtok_r(list, ",", &save); ty; ty = strtok_r(NULL, ",", &save)) {
        char name[128], args[256], path[1024];
        snprintf(name, sizeof name, "tinyllama-%s%s.gguf", quick ? "quick-" : "", ty);
        snprintf(args, sizeof args, "--preset tinyllama-1.1b --type %s --seed 1%s", ty, quick ? " --layers 4" : "");
        if (bench_synth_model(dir, name, args, path, sizeof path)) {
            fprintf(stderr, "bench: could not make %s\n", name);
            return 1;
        }
        for (int t = 1; t <= 2 && n_res < 16; t++) {
            struct result *r = &res[n_res];
            snprintf(r->type, sizeof r->type, "%s", ty);
            struct hive_speed_opts so = {.n_threads = t, .n_prompt = N_PROMPT, .n_decode = N_DECODE, .reps = reps,
                                         .copy_weights = 1};
            struct hive_speed sp;
            char err[HIVE_ERR_LEN];
            if (hive_model_measure_speed(path, &so, &sp, err)) {
                fprintf(stderr, "bench: %s\n", err);
                return 1;
            }
            r->threads = t;
            r->pp_tps = sp.prefill_tps;
            r->tg_tps = sp.decode_tps;
            /* per decoded token every layer weight is read once, plus the
             * output head; the embedding table contributes one row only */
            r->bytes_per_token = (double)sp.bytes_per_token;
            r->bw_gbs = bw[t];
            double ceiling = r->bw_gbs * 1e9 / r->bytes_per_token;
            printf("%-7s %dt  prefill %7.1f tok/s  decode %6.1f tok/s  (%.0f MB/token, ceiling %.1f tok/s, %.0f%%)\n",
                   ty, t, r->pp_tps, r->tg_tps, r->bytes_per_token / 1e6, ceiling, 100.0 * r->tg_tps / ceiling);
            fflush(stdout);
            n_res++;
        }
    }

    printf("{\"bench\":\"engine\",\"model\":\"tinyllama-1.1b%s\",\"n_prompt\":%d,\"n_decode\":%d,\"reps\":%d,"
           "\"bandwidth_gbs\":{\"1\":%.2f,\"2\":%.2f},\"results\":[",
           quick ? "-4layer" : "", N_PROMPT, N_DECODE, reps, bw[1], bw[2]);
    for (int i = 0; i < n_res; i++) {
        struct result *r = &res[i];
        double ceiling = r->bw_gbs * 1e9 / r->bytes_per_token;
        printf("%s{\"type\":\"%s\",\"threads\":%d,\"prefill_tps\":%.2f,\"decode_tps\":%.2f,"
               "\"bytes_per_token\":%.0f,\"ceiling_tps\":%.2f,\"pct_of_ceiling\":%.1f}",
               i ? "," : "", r->type, r->threads, r->pp_tps, r->tg_tps, r->bytes_per_token, ceiling,
               100.0 * r->tg_tps / ceiling);
    }
    printf("]}\n");
    return 0;
}
