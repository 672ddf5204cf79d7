/* test_model.c - the forward pass against independent data and its own
 * invariants:
 *   - stories260K: 80 greedy tokens after BOS (single-token decode through
 *     the KV cache) equal the ids an independent implementation produced
 *     (models/stories260K.greedy-from-BOS.txt);
 *   - range splits: every split point and a 3-way split (as contexts over one
 *     model, and as separately loaded stage models) give bit-identical
 *     logits for prefill and the decode steps after it;
 *   - 1 vs 2 threads, batch prefill vs token-by-token: bit-identical;
 *   - bad input: missing tensor, wrong shape, context overflow, bad token id. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hive/gguf.h"
#include "hive/model.h"
#include "hive/tensor.h"

static int small_scale(void) {
    const char *s = getenv("HIVE_TEST_SCALE");
    return s && !strcmp(s, "small");
}

/* Parses "greedy ids: [a, b, ...]" from the reference text file. */
static int read_greedy_ids(const char *path, int32_t *ids, int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strstr(buf, "greedy ids:");
    if (!p || !(p = strchr(p, '['))) return -1;
    p++;
    int count = 0;
    while (*p && *p != ']' && count < cap) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) return -1;
        ids[count++] = (int32_t)v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    return count;
}

static int32_t argmax(const float *v, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static void test_stories_greedy(const char *model_path) {
    char path[1024], err[HIVE_ERR_LEN];
    int32_t expect[128];
    int n_expect = read_greedy_ids(shared_path(path, sizeof path, "models/stories260K.greedy-from-BOS.txt"), expect,
                                   128);
    CHECK(n_expect == 80);
    hive_model *m = NULL;
    int rc = hive_model_load(&m, model_path, NULL, err);
    CHECKF(rc == HIVE_OK, "%s", err);
    if (rc) return;
    const struct hive_hparams *hp = hive_model_hparams(m);
    CHECK(hp->n_vocab == 512 && hp->n_embd == 64 && hp->n_layer == 5 && hp->n_head == 8 && hp->n_head_kv == 4);
    CHECK(hp->n_ff == 172 && hp->head_dim == 8 && hp->n_rot == 8 && !hp->rope_neox && hp->arch == HIVE_ARCH_LLAMA);
    hive_ctx *c = NULL;
    rc = hive_ctx_create(&c, m, 0, hp->n_layer, 128, NULL, err);
    CHECKF(rc == HIVE_OK, "%s", err);
    if (rc) {
        hive_model_free(m);
        return;
    }
    float logits[512];
    int32_t tok = 1; /* BOS */
    int ok = 1;
    for (int i = 0; i < n_expect && ok; i++) {
        rc = hive_forward(c, &tok, NULL, 1, i, logits, 0, err);
        CHECKF(rc == HIVE_OK, "%s", err);
        tok = argmax(logits, 512);
        if (tok != expect[i]) {
            CHECKF(tok == expect[i], "greedy step %d: got %d expected %d", i, tok, expect[i]);
            ok = 0;
        }
    }
    printf("stories260K greedy from BOS: %s\n", ok ? "80/80 tokens match" : "MISMATCH");
    hive_ctx_free(c);
    hive_model_free(m);
}

/* ---- splits ---- */

/* Runs a chain of contexts (consecutive ranges) on n_tok tokens at pos. */
static int run_chain(hive_ctx **ctxs, int n, int n_embd, const int32_t *toks, int n_tok, int pos, float *out,
                     int all_logits, float *h_a, float *h_b) {
    char err[HIVE_ERR_LEN];
    const float *in = NULL;
    for (int i = 0; i < n; i++) {
        float *dst = i == n - 1 ? out : (i % 2 ? h_b : h_a);
        int rc = hive_forward(ctxs[i], i == 0 ? toks : NULL, in, n_tok, pos, dst, all_logits, err);
        if (rc) {
            fprintf(stderr, "forward: %s\n", err);
            return rc;
        }
        in = dst;
    }
    (void)n_embd;
    return 0;
}

/* Prefill (all logits) + n_dec greedy decode steps through a chain; writes
 * all logits into out ((n_prompt + n_dec) rows). */
static int chain_generate(hive_ctx **ctxs, int n, int n_embd, int n_vocab, const int32_t *prompt, int n_prompt,
                          int n_dec, float *out, float *h_a, float *h_b) {
    if (run_chain(ctxs, n, n_embd, prompt, n_prompt, 0, out, 1, h_a, h_b)) return -1;
    int32_t tok = argmax(out + (size_t)(n_prompt - 1) * n_vocab, n_vocab);
    for (int k = 0; k < n_dec; k++) {
        float *row = out + (size_t)(n_prompt + k) * n_vocab;
        if (run_chain(ctxs, n, n_embd, &tok, 1, n_prompt + k, row, 0, h_a, h_b)) return -1;
        tok = argmax(row, n_vocab);
    }
    return 0;
}

static void test_splits(const char *path, const char *label) {
    char err[HIVE_ERR_LEN];
    hive_model *m = NULL;
    int rc = hive_model_load(&m, path, NULL, err);
    if (rc == HIVE_ERR_UNSUPPORTED) {
        printf("SKIP splits %s: %s\n", label, err);
        return;
    }
    CHECKF(rc == HIVE_OK, "%s", err);
    if (rc) return;
    const struct hive_hparams *hp = hive_model_hparams(m);
    int L = hp->n_layer, V = hp->n_vocab, D = hp->n_embd;
    const int n_prompt = 12, n_dec = small_scale() ? 3 : 6, n_ctx = 32;
    int32_t prompt[12];
    for (int i = 0; i < n_prompt; i++) prompt[i] = (int32_t)((i * 97 + 1) % V);
    size_t rows = (size_t)(n_prompt + n_dec);
    float *ref = malloc(rows * V * sizeof(float)), *got = malloc(rows * V * sizeof(float));
    float *h_a = malloc((size_t)n_prompt * D * sizeof(float)), *h_b = malloc((size_t)n_prompt * D * sizeof(float));
    hive_pool *pool2 = hive_pool_create(2);

    /* Whole model, 1 thread. */
    hive_ctx *whole = NULL;
    CHECK(hive_ctx_create(&whole, m, 0, L, n_ctx, NULL, err) == HIVE_OK);
    CHECK(chain_generate(&whole, 1, D, V, prompt, n_prompt, n_dec, ref, h_a, h_b) == 0);

    /* 2 threads. */
    hive_ctx *whole2 = NULL;
    CHECK(hive_ctx_create(&whole2, m, 0, L, n_ctx, pool2, err) == HIVE_OK);
    CHECK(chain_generate(&whole2, 1, D, V, prompt, n_prompt, n_dec, got, h_a, h_b) == 0);
    CHECKF(!memcmp(ref, got, rows * V * sizeof(float)), "%s: 2 threads differ from 1", label);

    /* Token by token (no batch) gives the same logits at every position. */
    hive_ctx_truncate(whole2, 0);
    int same_seq = 1;
    for (int i = 0; i < n_prompt; i++) {
        CHECK(hive_forward(whole2, &prompt[i], NULL, 1, i, got, 0, err) == HIVE_OK);
        same_seq &= !memcmp(got, ref + (size_t)i * V, V * sizeof(float));
    }
    CHECKF(same_seq, "%s: token-by-token prefill differs from the batch", label);

    /* Every split point, two ranges over the same model. (A split at L
     * would need [0, L) to output hidden states; the last range always
     * outputs logits, so the head-only stage [L, L) is not a split.) */
    int splits_ok = 1;
    for (int s = 0; s < L; s++) {
        hive_ctx *parts[2] = {NULL, NULL};
        CHECK(hive_ctx_create(&parts[0], m, 0, s, n_ctx, pool2, err) == HIVE_OK);
        CHECK(hive_ctx_create(&parts[1], m, s, L, n_ctx, NULL, err) == HIVE_OK);
        if (parts[0] && parts[1]) {
            memset(got, 0, rows * V * sizeof(float));
            CHECK(chain_generate(parts, 2, D, V, prompt, n_prompt, n_dec, got, h_a, h_b) == 0);
            int same = !memcmp(ref, got, rows * V * sizeof(float));
            CHECKF(same, "%s: split at %d differs", label, s);
            splits_ok &= same;
        }
        hive_ctx_free(parts[0]);
        hive_ctx_free(parts[1]);
    }

    /* Hidden states: batch prefill then decode == token-by-token, at a split. */
    if (L >= 2) {
        hive_ctx *a = NULL, *b = NULL;
        CHECK(hive_ctx_create(&a, m, 0, L / 2, n_ctx, NULL, err) == HIVE_OK);
        CHECK(hive_ctx_create(&b, m, 0, L / 2, n_ctx, pool2, err) == HIVE_OK);
        float *hb = malloc((size_t)n_prompt * D * sizeof(float)), row[4096];
        CHECK(D <= 4096);
        CHECK(hive_forward(a, prompt, NULL, n_prompt, 0, hb, 0, err) == HIVE_OK);
        int same = 1;
        for (int i = 0; i < n_prompt; i++) {
            CHECK(hive_forward(b, &prompt[i], NULL, 1, i, row, 0, err) == HIVE_OK);
            same &= !memcmp(row, hb + (size_t)i * D, D * sizeof(float));
        }
        CHECKF(same, "%s: hidden states of batch and single-token runs differ", label);
        free(hb);
        hive_ctx_free(a);
        hive_ctx_free(b);
    }

    /* 3-way split as separately loaded stage models (only their tensors). */
    if (L >= 3) {
        int cut[4] = {0, L / 3, (2 * L) / 3 + (L % 3 == 2), L};
        hive_model *stage[3] = {NULL, NULL, NULL};
        hive_ctx *sc[3] = {NULL, NULL, NULL};
        int ok = 1;
        for (int i = 0; i < 3 && ok; i++) {
            struct hive_model_opts o = hive_model_default_opts();
            o.first_layer = cut[i];
            o.last_layer = cut[i + 1];
            o.copy_weights = i % 2; /* both load modes */
            ok &= hive_model_load(&stage[i], path, &o, err) == HIVE_OK;
            ok &= ok && hive_ctx_create(&sc[i], stage[i], cut[i], cut[i + 1], n_ctx, i == 1 ? pool2 : NULL, err) == 0;
        }
        CHECKF(ok, "%s: stage load: %s", label, err);
        if (ok) {
            memset(got, 0, rows * V * sizeof(float));
            CHECK(chain_generate(sc, 3, D, V, prompt, n_prompt, n_dec, got, h_a, h_b) == 0);
            int same = !memcmp(ref, got, rows * V * sizeof(float));
            CHECKF(same, "%s: 3-stage split [%d,%d,%d,%d] differs", label, cut[0], cut[1], cut[2], cut[3]);
            splits_ok &= same;
        }
        for (int i = 0; i < 3; i++) {
            hive_ctx_free(sc[i]);
            hive_model_free(stage[i]);
        }
    }
    printf("splits %s: %s\n", label, splits_ok ? "bit-identical at every split" : "DIFFER");

    hive_ctx_free(whole);
    hive_ctx_free(whole2);
    hive_pool_free(pool2);
    free(ref);
    free(got);
    free(h_a);
    free(h_b);
    hive_model_free(m);
}

/* ---- bad input ---- */

/* Writes a copy of src to dst, dropping tensor `drop` and optionally
 * replacing tensor `reshape` with one of a wrong shape. */
static int rewrite_model(const char *src, const char *dst, const char *drop, const char *reshape) {
    char err[HIVE_ERR_LEN];
    hive_gguf *g = NULL;
    if (hive_gguf_open(&g, src, err)) return -1;
    hive_gguf_writer *w = hive_gguf_writer_new();
    for (int64_t i = 0; i < hive_gguf_n_kv(g); i++) hive_gguf_writer_copy_kv(w, g, i);
    for (int64_t i = 0; i < hive_gguf_n_tensors(g); i++) {
        const struct hive_gguf_tensor *t = hive_gguf_tensor(g, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (drop && !strcmp(name, drop)) continue;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        uint64_t bytes = t->n_bytes;
        if (reshape && !strcmp(name, reshape) && t->n_dims == 2) {
            ne[1] -= 1; /* one row fewer */
            bytes = hive_type_row_bytes(t->type, ne[0]) * (uint64_t)ne[1];
        }
        hive_gguf_writer_add_tensor(w, name, t->type, t->n_dims, ne, t->data, bytes);
    }
    int rc = hive_gguf_writer_write(w, dst, err);
    if (rc) fprintf(stderr, "write: %s\n", err);
    hive_gguf_writer_free(w);
    hive_gguf_close(g);
    return rc;
}

static void test_bad_input(const char *model_path) {
    char dir[] = "/tmp/hive_test_model_XXXXXX", file[1100], err[HIVE_ERR_LEN];
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    snprintf(file, sizeof file, "%s/bad.gguf", dir);
    hive_model *m = NULL;

    CHECK(rewrite_model(model_path, file, "blk.2.ffn_up.weight", NULL) == 0);
    int rc = hive_model_load(&m, file, NULL, err);
    CHECKF(rc != HIVE_OK && strstr(err, "blk.2.ffn_up.weight") && strstr(err, "missing"), "err: %s", err);
    printf("missing tensor -> %s\n", err);
    /* A range that does not need the tensor loads fine (stage files). */
    struct hive_model_opts o = hive_model_default_opts();
    o.first_layer = 3;
    rc = hive_model_load(&m, file, &o, err);
    CHECKF(rc == HIVE_OK, "%s", err);
    hive_model_free(m);
    m = NULL;

    CHECK(rewrite_model(model_path, file, NULL, "blk.1.attn_k.weight") == 0);
    rc = hive_model_load(&m, file, NULL, err);
    CHECKF(rc != HIVE_OK && strstr(err, "blk.1.attn_k.weight") && strstr(err, "shape"), "err: %s", err);
    printf("wrong shape -> %s\n", err);

    CHECK(rewrite_model(model_path, file, "output_norm.weight", NULL) == 0);
    o.first_layer = 0;
    o.last_layer = 2;
    rc = hive_model_load(&m, file, &o, err); /* the first stage does not need it */
    CHECKF(rc == HIVE_OK, "%s", err);
    hive_model_free(m);
    m = NULL;
    rc = hive_model_load(&m, file, NULL, err);
    CHECKF(rc != HIVE_OK && strstr(err, "output_norm.weight"), "err: %s", err);
    unlink(file);
    rmdir(dir);

    rc = hive_model_load(&m, "/nonexistent/model.gguf", NULL, err);
    CHECK(rc != HIVE_OK && m == NULL);

    /* Context overflow, token range, wrong input kind, gaps. */
    rc = hive_model_load(&m, model_path, NULL, err);
    CHECKF(rc == HIVE_OK, "%s", err);
    if (rc) return;
    const struct hive_hparams *hp = hive_model_hparams(m);
    hive_ctx *c = NULL, *mid = NULL;
    CHECK(hive_ctx_create(&c, m, 0, hp->n_layer, 8, NULL, err) == HIVE_OK);
    CHECK(hive_ctx_create(&mid, m, 1, hp->n_layer, 8, NULL, err) == HIVE_OK);
    int32_t toks[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float *out = malloc(9 * (size_t)hp->n_vocab * sizeof(float));
    CHECK(hive_forward(c, toks, NULL, 9, 0, out, 1, err) == HIVE_ERR_INVAL);
    printf("prompt too long -> %s\n", err);
    CHECK(hive_forward(c, toks, NULL, 4, 5, out, 1, err) == HIVE_ERR_INVAL);
    int32_t bad_tok[2] = {1, hp->n_vocab};
    CHECK(hive_forward(c, bad_tok, NULL, 2, 0, out, 1, err) == HIVE_ERR_INVAL && strstr(err, "token"));
    bad_tok[1] = -1;
    CHECK(hive_forward(c, bad_tok, NULL, 2, 0, out, 1, err) == HIVE_ERR_INVAL);
    CHECK(hive_forward(mid, toks, NULL, 1, 0, out, 1, err) == HIVE_ERR_INVAL);
    CHECK(hive_forward(c, NULL, NULL, 1, 0, out, 1, err) == HIVE_ERR_INVAL);
    CHECK(hive_forward(c, toks, NULL, 8, 0, out, 1, err) == HIVE_OK); /* exactly full is fine */
    CHECK(hive_forward(c, toks, NULL, 1, 8, out, 1, err) == HIVE_ERR_INVAL);
    hive_ctx_truncate(c, 2);
    CHECK(hive_forward(c, toks, NULL, 1, 4, out, 1, err) == HIVE_ERR_INVAL); /* gap */
    CHECK(hive_forward(c, toks, NULL, 1, 2, out, 1, err) == HIVE_OK);
    CHECK(hive_forward_out_floats(c, 5, 1) == 5 * (int64_t)hp->n_vocab);
    CHECK(hive_forward_out_floats(c, 5, 0) == hp->n_vocab);
    hive_ctx *first = NULL;
    CHECK(hive_ctx_create(&first, m, 0, 2, 8, NULL, err) == HIVE_OK);
    CHECK(hive_forward_out_floats(first, 5, 0) == 5 * (int64_t)hp->n_embd);
    hive_ctx *too_far = NULL;
    CHECK(hive_ctx_create(&too_far, m, 0, hp->n_layer + 1, 8, NULL, err) == HIVE_ERR_INVAL && !too_far);
    free(out);
    hive_ctx_free(first);
    hive_ctx_free(mid);
    hive_ctx_free(c);
    hive_model_free(m);
}

static void count_tensor(void *arg, const struct hive_gguf_tensor *t) {
    (void)t;
    (*(int *)arg)++;
}

static void test_stage_tensors(const char *model_path) {
    char err[HIVE_ERR_LEN];
    hive_gguf *g = NULL;
    if (hive_gguf_open(&g, model_path, err)) {
        CHECK(0);
        return;
    }
    int all = 0, a = 0, b = 0;
    CHECK(hive_model_stage_tensors(g, 0, 5, count_tensor, &all, err) == HIVE_OK);
    CHECK(hive_model_stage_tensors(g, 0, 2, count_tensor, &a, err) == HIVE_OK);
    CHECK(hive_model_stage_tensors(g, 2, 5, count_tensor, &b, err) == HIVE_OK);
    CHECKF(all == hive_gguf_n_tensors(g) && a + b == all, "all %d, a %d, b %d, file %lld", all, a, b,
           (long long)hive_gguf_n_tensors(g));
    CHECK(hive_model_stage_tensors(g, 3, 2, count_tensor, &a, err) == HIVE_ERR_INVAL);
    uint64_t whole = hive_model_stage_bytes(g, 0, 5);
    CHECK(whole > 0 && hive_model_stage_bytes(g, 0, 2) + hive_model_stage_bytes(g, 2, 5) == whole);
    hive_gguf_close(g);
}

int main(void) {
    char path[1024], qpath[1024], q2path[1024];
    shared_path(path, sizeof path, "models/stories260K.gguf");
    test_stories_greedy(path);
    test_stage_tensors(path);
    test_splits(path, "stories260K");
    test_splits(shared_path(qpath, sizeof qpath, "reference/models/synth-qwen2-q8_0.gguf"), "synth-qwen2-q8_0");
    if (!small_scale())
        test_splits(shared_path(q2path, sizeof q2path, "reference/models/synth-qwen3-q4_k.gguf"), "synth-qwen3-q4_k");
    test_bad_input(path);
    return check_result("test_model");
}
