/* bench_batch.c - continuous batching: aggregate decode throughput when B
 * sequences decode together in one hive_forward_batch per step, against one
 * sequence decoding alone and against prefill, on a TinyLlama-1.1B-shaped
 * Q4_0 model (random weights made by `hive mkmodel`).
 *
 * Every sequence is first prefilled to N_CTX0 = 64 positions (all 16 in one
 * batch of 1024 rows: that is also the batched-prefill figure); then for
 * B = 1, 4, 8, 16 the first B sequences decode `--steps` tokens each, one
 * batch of B single-token items per step, and go back to 64 positions
 * (hive_ctx_truncate) after each run. Prefill alone: one sequence, 128
 * tokens in one call. Medians of `--reps` runs.
 *
 * Also measured, to see where the time of a batched step goes: a step of B
 * sequences at context ~1 instead of ~64 (the difference is attention over
 * the cache) and a step of B rows of ONE sequence (hive_forward of B tokens:
 * the same matmul shapes, attention over at most B positions).
 *
 * Prints a table and, last, one JSON line.
 * usage: bench_batch [--model PATH] [--dir DIR] [--threads N] [--steps N] [--reps N] [--quick]
 *   without --model the model is made (once) in DIR (default /tmp/hive-bench-models);
 *   --quick makes and uses a 4-layer model of the same width. */
#include "bench_common.h"
#include "hive/model.h"
#include "hive/tensor.h"

#define N_CTX0 64
#define N_PREFILL 128
#define MAX_B 16

static const int batch_sizes[] = {1, 4, 8, 16};
#define N_SIZES ((int)(sizeof batch_sizes / sizeof batch_sizes[0]))

static int32_t tok_at(int seq, int pos, int n_vocab) {
    return 1 + (int32_t)(((uint32_t)seq * 104729u + (uint32_t)pos * 7919u) % (uint32_t)(n_vocab - 1));
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "bench_batch: %s: %s\n", what, err);
    exit(1);
}

/* Seconds for `steps` decode steps of the first b contexts, which hold
 * `base` positions; they are truncated back to base afterwards. */
static double decode_run(hive_ctx **c, int b, int base, int steps, int n_vocab, float *out) {
    char err[HIVE_ERR_LEN];
    struct hive_batch_item it[MAX_B];
    int32_t tok[MAX_B];
    double t0 = hive_now_ms();
    for (int k = 0; k < steps; k++) {
        for (int i = 0; i < b; i++) {
            tok[i] = tok_at(i, base + k, n_vocab);
            it[i] = (struct hive_batch_item){.ctx = c[i], .tokens = &tok[i], .n_tok = 1, .pos = base + k,
                                             .out = out + (size_t)i * n_vocab};
        }
        if (hive_forward_batch(it, b, err)) die("decode", err);
    }
    double s = (hive_now_ms() - t0) / 1e3;
    for (int i = 0; i < b; i++) hive_ctx_truncate(c[i], base);
    return s;
}

int main(int argc, char **argv) {
    const char *model = NULL, *dir = "/tmp/hive-bench-models";
    int threads = 2, steps = 16, reps = 3, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else {
            fprintf(stderr, "usage: %s [--model PATH] [--dir DIR] [--threads N] [--steps N] [--reps N] [--quick]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1 || threads > 256) threads = 2;
    if (steps < 1 || steps > 256) steps = 16;
    if (reps < 1 || reps > 15) reps = 3;
    char path[1024], err[HIVE_ERR_LEN];
    if (model) {
        snprintf(path, sizeof path, "%s", model);
    } else {
        char name[128], args[256];
        snprintf(name, sizeof name, "tinyllama-%sq4_0.gguf", quick ? "quick-" : "");
        snprintf(args, sizeof args, "--preset tinyllama-1.1b --type q4_0 --seed 1%s", quick ? " --layers 4" : "");
        if (bench_synth_model(dir, name, args, path, sizeof path)) die("model", "could not make it");
    }
    printf("cpu: %s | isa: %s | threads: %d\n", hive_cpu_features(), hive_isa_name(hive_isa_current()), threads);

    hive_model *m = NULL;
    if (hive_model_load(&m, path, NULL, err)) die(path, err);
    const struct hive_hparams *hp = hive_model_hparams(m);
    hive_pool *pool = hive_pool_create(threads);
    int n_ctx = N_CTX0 + steps + N_PREFILL;
    hive_ctx *c[MAX_B];
    for (int i = 0; i < MAX_B; i++)
        if (hive_ctx_create(&c[i], m, 0, hp->n_layer, n_ctx, pool, err)) die("context", err);
    float *out = malloc((size_t)N_PREFILL * hp->n_vocab * sizeof(float));
    int32_t *toks = malloc((size_t)MAX_B * N_PREFILL * sizeof(int32_t));
    if (!out || !toks) die("memory", "out of memory");
    for (int i = 0; i < MAX_B; i++)
        for (int p = 0; p < N_PREFILL; p++) toks[i * N_PREFILL + p] = tok_at(i, p, hp->n_vocab);
    double runs[16];

    /* Prefill of one sequence, 128 tokens. */
    for (int r = 0; r < reps; r++) {
        hive_ctx_truncate(c[0], 0);
        double t0 = hive_now_ms();
        if (hive_forward(c[0], toks, NULL, N_PREFILL, 0, out, 0, err)) die("prefill", err);
        runs[r] = N_PREFILL / ((hive_now_ms() - t0) / 1e3);
    }
    double prefill_tps = hive_median(runs, reps);
    printf("prefill, 1 sequence x %d tokens:          %7.2f tok/s\n", N_PREFILL, prefill_tps);

    /* Decode at context ~1: every sequence holds one position. */
    struct hive_batch_item it[MAX_B];
    for (int i = 0; i < MAX_B; i++) {
        hive_ctx_truncate(c[i], 0);
        it[i] = (struct hive_batch_item){.ctx = c[i], .tokens = toks + i * N_PREFILL, .n_tok = 1, .pos = 0,
                                         .out = out + (size_t)i * hp->n_vocab};
    }
    if (hive_forward_batch(it, MAX_B, err)) die("prefill", err);
    double short_tps[N_SIZES];
    for (int s = 0; s < N_SIZES; s++) {
        int b = batch_sizes[s];
        for (int r = 0; r < reps; r++) runs[r] = b * steps / decode_run(c, b, 1, steps, hp->n_vocab, out);
        short_tps[s] = hive_median(runs, reps);
    }

    /* All 16 sequences prefilled to 64 positions in one batch. */
    for (int i = 0; i < MAX_B; i++) {
        hive_ctx_truncate(c[i], 0);
        it[i] = (struct hive_batch_item){.ctx = c[i], .tokens = toks + i * N_PREFILL, .n_tok = N_CTX0, .pos = 0,
                                         .out = out + (size_t)i * hp->n_vocab};
    }
    double t0 = hive_now_ms();
    if (hive_forward_batch(it, MAX_B, err)) die("batched prefill", err);
    double batch_prefill_tps = MAX_B * N_CTX0 / ((hive_now_ms() - t0) / 1e3);
    printf("prefill, %d sequences x %d tokens, 1 batch: %7.2f tok/s\n", MAX_B, N_CTX0, batch_prefill_tps);

    /* Decode at context ~64. */
    double dec_tps[N_SIZES], rows_tps[N_SIZES];
    for (int s = 0; s < N_SIZES; s++) {
        int b = batch_sizes[s];
        for (int r = 0; r < reps; r++) runs[r] = b * steps / decode_run(c, b, N_CTX0, steps, hp->n_vocab, out);
        dec_tps[s] = hive_median(runs, reps);
        /* b rows of one sequence per call (context ~64 too): the same
         * matmuls, a single KV cache. */
        for (int r = 0; r < reps; r++) {
            double t1 = hive_now_ms();
            for (int k = 0; k < steps; k++) {
                if (hive_forward(c[0], toks + N_CTX0, NULL, b, N_CTX0, out, 0, err)) die("rows", err);
                hive_ctx_truncate(c[0], N_CTX0);
            }
            runs[r] = b * steps / ((hive_now_ms() - t1) / 1e3);
        }
        rows_tps[s] = hive_median(runs, reps);
    }

    printf("\n%-4s %14s %10s %12s %14s %16s\n", "B", "decode tok/s", "vs B=1", "vs prefill", "at ctx ~1", "B rows, 1 seq");
    for (int s = 0; s < N_SIZES; s++)
        printf("%-4d %14.2f %9.2fx %11.2fx %14.2f %16.2f\n", batch_sizes[s], dec_tps[s], dec_tps[s] / dec_tps[0],
               dec_tps[s] / prefill_tps, short_tps[s], rows_tps[s]);

    printf("{\"bench\":\"batch\",\"model\":\"tinyllama-1.1b%s-q4_0\",\"threads\":%d,\"ctx\":%d,\"steps\":%d,\"reps\":%d,"
           "\"prefill_tps\":%.2f,\"batch_prefill_tps\":%.2f,\"decode\":[",
           quick ? "-4layer" : "", threads, N_CTX0, steps, reps, prefill_tps, batch_prefill_tps);
    for (int s = 0; s < N_SIZES; s++)
        printf("%s{\"B\":%d,\"tps\":%.2f,\"vs_b1\":%.3f,\"vs_prefill\":%.3f,\"tps_ctx1\":%.2f,\"tps_rows_one_seq\":%.2f}",
               s ? "," : "", batch_sizes[s], dec_tps[s], dec_tps[s] / dec_tps[0], dec_tps[s] / prefill_tps,
               short_tps[s], rows_tps[s]);
    printf("]}\n");

    for (int i = 0; i < MAX_B; i++) hive_ctx_free(c[i]);
    free(out);
    free(toks);
    hive_pool_free(pool);
    hive_model_free(m);
    return 0;
}
