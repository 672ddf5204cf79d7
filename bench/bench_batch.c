/* bench_batch.c - continuous batching: aggregate decode throughput when B
 * sequences decode together in one hive_forward_batch per step, against one
 * sequence decoding alone and against prefill, on a TinyLlama-1.1B-shaped
 * Q4_0 model (random weights made by `hive mkmodel`).
 *
 * Every sequence is first prefilled to N_CTX0 = 64 positions (all 16 in one
 * batch of 1024 rows; 4 of them again in each round: the batched-prefill
 * figure); then for
 * B = 1, 4, 8, 16 the first B sequences decode `--steps` tokens each, one
 * batch of B single-token items per step, and go back to 64 positions
 * (hive_ctx_truncate) after each run. Prefill alone: one sequence, 128
 * tokens in one call.
 *
 * Also measured, to see where the time of a batched step goes: a step of B
 * sequences at context ~1 instead of ~64 (the difference is attention over
 * the cache) and a step of B rows of ONE sequence (hive_forward of B tokens:
 * the same matmul shapes, attention over at most B positions).
 *
 * And the matmuls alone: one pass of hive_matmul with n_tok = B over every
 * 2-D weight of the file but the embedding table (what one step of B rows
 * multiplies), as B / seconds: the ceiling the kernels give a batch of B.
 *
 * Reading the table: a batched step costs its matmuls at n_tok = B plus
 * attention (the "at ctx ~1" column shows its share at context 64) and the
 * per-row work (norms, rope, SiLU). B sequences decode about as fast as B
 * rows of one sequence, and close to the matmul-only column: the batch adds
 * no overhead of its own. What keeps B = 8 below prefill is the kernels: on
 * AVX-512 (q4_0, packed path) hive_matmul needs ~1.5x more compute per
 * token at n_tok = 8 than at 64 (weights repacked per row block and used by
 * 8 tokens instead of 64), and prefill here is compute-bound too, so
 * reading the weights once per batch cannot close that gap; n_tok 2 and 3
 * still take the one-token streaming kernel.
 *
 * The figures are the best of `--reps` runs (on a shared machine the best
 * run is the one least disturbed by other work).
 * Prints a table and, last, one JSON line.
 * usage: bench_batch [--model PATH] [--dir DIR] [--threads N] [--steps N] [--reps N] [--quick]
 *   without --model the model is made (once) in DIR (default /tmp/hive-bench-models);
 *   --quick makes and uses a 4-layer model of the same width. */
#include <math.h>
#include <sys/mman.h>

#include "bench_common.h"
#include "hive/gguf.h"
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

/* A 2-D weight to multiply by: every one of the file's but the embedding
 * table (lookups are not matmuls) unless the head is tied to it. */
struct mm_weight {
    int type;
    const void *data;
    int64_t rows, cols;
    void *base;          /* w[0] only: the mapping holding every copy */
    size_t base_bytes;
};

/* Copies the weights into one anonymous mapping; returns their number. */
static int copy_weights(const hive_gguf *g, struct mm_weight *w, int cap) {
    int tied = !hive_gguf_find_tensor(g, "output.weight"), n = 0;
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        char *base = NULL;
        if (pass) {
            base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (base == MAP_FAILED) return -1;
#ifdef MADV_HUGEPAGE
            madvise(base, total, MADV_HUGEPAGE);
#endif
        }
        size_t off = 0;
        n = 0;
        for (int64_t i = 0; i < hive_gguf_n_tensors(g) && n < cap; i++) {
            const struct hive_gguf_tensor *t = hive_gguf_tensor(g, i);
            if (t->n_dims != 2) continue;
            if (!tied && t->name.len == 17 && !memcmp(t->name.ptr, "token_embd.weight", 17)) continue;
            if (pass) {
                memcpy(base + off, t->data, t->n_bytes);
                w[n] = (struct mm_weight){.type = t->type, .data = base + off, .rows = t->ne[1], .cols = t->ne[0]};
            }
            off += (t->n_bytes + 4095) & ~(size_t)4095;
            n++;
        }
        if (!pass) total = off;
        else if (n) w[0].base = base, w[0].base_bytes = total;
    }
    return n;
}

/* Seconds for one hive_matmul of n_tok rows over every weight. */
static double matmul_pass(hive_pool *pool, const struct mm_weight *w, int n_w, int n_tok, const float *x, float *y) {
    double t0 = hive_now_ms();
    for (int i = 0; i < n_w; i++)
        if (hive_matmul(pool, w[i].type, w[i].data, w[i].rows, w[i].cols, x, n_tok, y)) {
            fprintf(stderr, "bench_batch: matmul failed\n");
            exit(1);
        }
    return (hive_now_ms() - t0) / 1e3;
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
    double load[3] = {0};
    if (getloadavg(load, 3) < 1) load[0] = -1;
    printf("cpu: %s | isa: %s | threads: %d | load average at start %.2f (%d CPUs)\n", hive_cpu_features(),
           hive_isa_name(hive_isa_current()), threads, load[0], hive_cpu_count());

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
    struct hive_batch_item it[MAX_B];
    hive_ctx *c1[MAX_B], *solo = NULL;
    for (int i = 0; i < MAX_B; i++)
        if (hive_ctx_create(&c1[i], m, 0, hp->n_layer, 1 + steps, pool, err)) die("context", err);
    if (hive_ctx_create(&solo, m, 0, hp->n_layer, n_ctx, pool, err)) die("context", err);

    /* All 16 sequences prefilled to 64 positions in one batch; the c1 set
     * to one position. */
    for (int i = 0; i < MAX_B; i++)
        it[i] = (struct hive_batch_item){.ctx = c[i], .tokens = toks + i * N_PREFILL, .n_tok = N_CTX0, .pos = 0,
                                         .out = out + (size_t)i * hp->n_vocab};
    if (hive_forward_batch(it, MAX_B, err)) die("batched prefill", err);
    for (int i = 0; i < MAX_B; i++) it[i].ctx = c1[i], it[i].n_tok = 1;
    if (hive_forward_batch(it, MAX_B, err)) die("prefill", err);
    double t0;

    /* The matmuls alone run over a copy of the weights in anonymous memory
     * (huge pages where possible), as the model's own copy is. */
    const hive_gguf *g = hive_model_gguf(m);
    struct mm_weight w[512];
    int n_w = copy_weights(g, w, 512);
    float *x = malloc((size_t)64 * 8192 * sizeof(float)), *y = malloc((size_t)64 * hp->n_vocab * sizeof(float));
    if (n_w <= 0 || !x || !y || hp->n_ff > 8192 || hp->n_embd > 8192 || hp->n_vocab < hp->n_ff)
        die("memory", "matmul buffers");
    for (int64_t i = 0; i < (int64_t)64 * 8192; i++) x[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;

    /* Runs interleaved (every measurement once per round), so that a busy
     * moment on a shared machine does not hit one batch size only; the
     * best round counts. */
    double prefill_tps = 0, dec_tps[N_SIZES] = {0}, short_tps[N_SIZES] = {0}, rows_tps[N_SIZES] = {0};
    double mm_tps[N_SIZES + 1] = {0}, batch_prefill_tps = 0;
    for (int r = 0; r < reps; r++) {
        /* 4 of the sequences prefilled again, 4 x 64 rows in one batch */
        for (int i = 0; i < 4; i++)
            it[i] = (struct hive_batch_item){.ctx = c[i], .tokens = toks + i * N_PREFILL, .n_tok = N_CTX0, .pos = 0,
                                             .out = out + (size_t)i * hp->n_vocab};
        t0 = hive_now_ms();
        if (hive_forward_batch(it, 4, err)) die("batched prefill", err);
        batch_prefill_tps = fmax(batch_prefill_tps, 4 * N_CTX0 / ((hive_now_ms() - t0) / 1e3));
        hive_ctx_truncate(solo, 0);
        t0 = hive_now_ms();
        if (hive_forward(solo, toks, NULL, N_PREFILL, 0, out, 0, err)) die("prefill", err);
        prefill_tps = fmax(prefill_tps, N_PREFILL / ((hive_now_ms() - t0) / 1e3));
        for (int s = 0; s <= N_SIZES; s++) {
            int b = s < N_SIZES ? batch_sizes[s] : 64;
            mm_tps[s] = fmax(mm_tps[s], b / matmul_pass(pool, w, n_w, b, x, y));
            if (s == N_SIZES) break;
            dec_tps[s] = fmax(dec_tps[s], b * steps / decode_run(c, b, N_CTX0, steps, hp->n_vocab, out));
            short_tps[s] = fmax(short_tps[s], b * steps / decode_run(c1, b, 1, steps, hp->n_vocab, out));
            /* b rows of one sequence per call at context ~64: the same
             * matmuls, one KV cache */
            t0 = hive_now_ms();
            for (int k = 0; k < steps; k++) {
                hive_ctx_truncate(solo, N_CTX0);
                if (hive_forward(solo, toks + N_CTX0, NULL, b, N_CTX0, out, 0, err)) die("rows", err);
            }
            rows_tps[s] = fmax(rows_tps[s], b * steps / ((hive_now_ms() - t0) / 1e3));
        }
    }
    free(x);
    free(y);
    munmap(w[0].base, w[0].base_bytes);
    for (int i = 0; i < MAX_B; i++) hive_ctx_free(c1[i]);
    hive_ctx_free(solo);

    printf("prefill, 1 sequence x %d tokens:             %7.2f tok/s\n", N_PREFILL, prefill_tps);
    printf("prefill, 4 sequences x %d tokens, 1 batch:    %7.2f tok/s\n", N_CTX0, batch_prefill_tps);
    printf("matmuls only, 64 rows (a prefill micro-batch): %7.2f tok/s\n", mm_tps[N_SIZES]);
    printf("\n%-4s %14s %9s %11s %12s %15s %14s\n", "B", "decode tok/s", "vs B=1", "vs prefill", "at ctx ~1",
           "B rows, 1 seq", "matmuls only");
    for (int s = 0; s < N_SIZES; s++)
        printf("%-4d %14.2f %8.2fx %10.2fx %12.2f %15.2f %14.2f\n", batch_sizes[s], dec_tps[s], dec_tps[s] / dec_tps[0],
               dec_tps[s] / prefill_tps, short_tps[s], rows_tps[s], mm_tps[s]);

    printf("{\"bench\":\"batch\",\"model\":\"tinyllama-1.1b%s-q4_0\",\"threads\":%d,\"ctx\":%d,\"steps\":%d,\"reps\":%d,\"load_avg\":%.2f,"
           "\"prefill_tps\":%.2f,\"batch_prefill_tps\":%.2f,\"matmul_only_64_tps\":%.2f,\"decode\":[",
           quick ? "-4layer" : "", threads, N_CTX0, steps, reps, load[0], prefill_tps, batch_prefill_tps, mm_tps[N_SIZES]);
    for (int s = 0; s < N_SIZES; s++)
        printf("%s{\"B\":%d,\"tps\":%.2f,\"vs_b1\":%.3f,\"vs_prefill\":%.3f,\"tps_ctx1\":%.2f,\"tps_rows_one_seq\":%.2f,"
               "\"tps_matmul_only\":%.2f}",
               s ? "," : "", batch_sizes[s], dec_tps[s], dec_tps[s] / dec_tps[0], dec_tps[s] / prefill_tps,
               short_tps[s], rows_tps[s], mm_tps[s]);
    printf("]}\n");

    for (int i = 0; i < MAX_B; i++) hive_ctx_free(c[i]);
    free(out);
    free(toks);
    hive_pool_free(pool);
    hive_model_free(m);
    return 0;
}
