/* test_model.c - the forward pass against independent data and its own
 * invariants:
 *   - stories260K: 80 greedy tokens after BOS (single-token decode through
 *     the KV cache) equal the ids an independent implementation produced
 *     (models/stories260K.greedy-from-BOS.txt);
 *   - range splits: every split point and a 3-way split (as contexts over one
 *     model, and as separately loaded stage models) give bit-identical
 *     logits for prefill and the decode steps after it;
 *   - 1 vs 2 threads, batch prefill vs token-by-token: bit-identical;
 *   - bad input: missing tensor, wrong shape, context overflow, bad token id;
 *   - continuous batching (synthetic f32 / q4_0 / q8_0 / q4_k models of
 *     llama, qwen2 and qwen3 shape, and stories260K): several sequences of
 *     different lengths in batches of mixed prefill and decode items, random
 *     subsets and orders, one sequence spanning two micro-batches, cached
 *     positions rewritten, one and two stages, 1 and 2 threads: every
 *     output memcmp-equal to the sequence run alone with hive_forward;
 *     every invalid batch refused without moving any cache; 64 idle
 *     contexts cost little RSS and give it back when freed. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hive/gguf.h"
#include "hive/mkmodel.h"
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
    char dir[512], file[1100], err[HIVE_ERR_LEN];
    if (!check_temp_dir(dir, sizeof dir, "hive_test_model_")) {
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

/* ---- continuous batching (hive_forward_batch) ---- */

#define BT_SEQS 5
/* Tokens per sequence and the length of its first (prefill) chunk. The
 * first step prefills all five together: 4 + 9 + 70 + 20 + 1 = 104 rows, so
 * sequence 2 spans the boundary between two 64-row micro-batches. */
static const int bt_len[BT_SEQS] = {12, 17, 83, 27, 9};
static const int bt_prompt[BT_SEQS] = {4, 9, 70, 20, 1};

static uint32_t bt_rand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void bt_shuffle(int *v, int n, uint32_t *rng) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(bt_rand(rng) % (uint32_t)(i + 1)), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

struct bt_ref {
    int32_t *toks[BT_SEQS];
    float *logits[BT_SEQS]; /* (len, V): each sequence alone, one hive_forward call */
    float *hidden[BT_SEQS]; /* (len, D): the first half [0, h) alone */
};

/* Runs every sequence through a schedule of batches: random subsets in
 * random orders, prefill and decode items mixed, a few multi-token chunks
 * after the prefill, and at the end positions rewritten. two_stage: each
 * batch goes through [0, h) (hidden out) then [h, L) (hidden in, logits
 * out), in a different order. Every output is compared memcmp-equal with
 * the reference. Returns the number of mismatches (-1: a call failed). */
static int bt_schedule(hive_model *m, const struct bt_ref *ref, hive_pool *pool, int two_stage, uint32_t seed,
                       const char *label) {
    char err[HIVE_ERR_LEN];
    const struct hive_hparams *hp = hive_model_hparams(m);
    int L = hp->n_layer, V = hp->n_vocab, D = hp->n_embd, h = L / 2;
    hive_ctx *ca[BT_SEQS] = {0}, *cb[BT_SEQS] = {0};
    float *out_a[BT_SEQS], *out_b[BT_SEQS];
    int done[BT_SEQS] = {0}, bad = 0, ok = 1;
    for (int s = 0; s < BT_SEQS; s++) {
        ok &= hive_ctx_create(&ca[s], m, 0, two_stage ? h : L, 96, pool, err) == HIVE_OK;
        if (two_stage) ok &= hive_ctx_create(&cb[s], m, h, L, 96, pool, err) == HIVE_OK;
        out_a[s] = malloc((size_t)bt_len[s] * (size_t)(D > V ? D : V) * sizeof(float));
        out_b[s] = malloc((size_t)V * sizeof(float));
    }
    CHECKF(ok, "%s: %s", label, err);
    uint32_t rng = seed;
    int step = 0, rewrite = 0;
    while (ok) {
        struct hive_batch_item items[BT_SEQS], items_b[BT_SEQS];
        int order[BT_SEQS], n = 0, last_row[BT_SEQS];
        for (int s = 0; s < BT_SEQS; s++) order[s] = s;
        bt_shuffle(order, BT_SEQS, &rng);
        for (int k = 0; k < BT_SEQS; k++) {
            int s = order[k], pos = done[s], n_tok;
            if (rewrite) {
                if (s % 2) continue;
                pos = s == 0 ? 0 : bt_len[s] - 3; /* a whole new prefill / the last 3 positions again */
                n_tok = bt_len[s] - pos;
            } else {
                if (done[s] == bt_len[s]) continue;
                if (step > 0 && bt_rand(&rng) % 4 == 0) continue; /* not ready this step */
                n_tok = step == 0 ? bt_prompt[s] : bt_rand(&rng) % 5 == 0 ? 3 : 1;
                if (n_tok > bt_len[s] - pos) n_tok = bt_len[s] - pos;
            }
            last_row[n] = pos + n_tok - 1;
            items[n] = (struct hive_batch_item){.ctx = ca[s], .tokens = ref->toks[s] + pos, .n_tok = n_tok, .pos = pos,
                                                .out = out_a[s]};
            n++;
        }
        if (!n) {
            if (rewrite) break;
            int all_done = 1;
            for (int s = 0; s < BT_SEQS; s++) all_done &= done[s] == bt_len[s];
            if (all_done) rewrite = 1;
            step++;
            continue;
        }
        int rc = hive_forward_batch(items, n, err);
        CHECKF(rc == HIVE_OK, "%s step %d: %s", label, step, err);
        if (rc) {
            ok = 0;
            break;
        }
        if (two_stage) {
            int perm[BT_SEQS];
            for (int k = 0; k < n; k++) perm[k] = k;
            bt_shuffle(perm, n, &rng);
            for (int k = 0; k < n; k++) {
                const struct hive_batch_item *a = &items[perm[k]];
                int s = 0;
                while (ca[s] != a->ctx) s++;
                items_b[k] = (struct hive_batch_item){.ctx = cb[s], .hidden = a->out, .n_tok = a->n_tok,
                                                      .pos = a->pos, .out = out_b[s]};
            }
            rc = hive_forward_batch(items_b, n, err);
            CHECKF(rc == HIVE_OK, "%s step %d (second stage): %s", label, step, err);
            if (rc) {
                ok = 0;
                break;
            }
        }
        for (int k = 0; k < n; k++) {
            int s = 0;
            while (ca[s] != items[k].ctx) s++;
            CHECK(hive_ctx_n_pos(ca[s]) == items[k].pos + items[k].n_tok);
            if (two_stage) {
                int same_h = !memcmp(out_a[s], ref->hidden[s] + (size_t)items[k].pos * D,
                                     (size_t)items[k].n_tok * D * sizeof(float));
                int same_l = !memcmp(out_b[s], ref->logits[s] + (size_t)last_row[k] * V, (size_t)V * sizeof(float));
                CHECKF(same_h && same_l, "%s step %d seq %d pos %d n_tok %d: %s differ", label, step, s, items[k].pos,
                       items[k].n_tok, same_h ? "logits" : "hidden states");
                bad += !same_h + !same_l;
            } else {
                int same = !memcmp(out_a[s], ref->logits[s] + (size_t)last_row[k] * V, (size_t)V * sizeof(float));
                CHECKF(same, "%s step %d seq %d pos %d n_tok %d: logits differ", label, step, s, items[k].pos,
                       items[k].n_tok);
                bad += !same;
            }
            if (!rewrite) done[s] = items[k].pos + items[k].n_tok;
        }
        step++;
        if (rewrite) break;
    }
    for (int s = 0; s < BT_SEQS; s++) {
        hive_ctx_free(ca[s]);
        hive_ctx_free(cb[s]);
        free(out_a[s]);
        free(out_b[s]);
    }
    if (ok) printf("batch %s: %d steps, %s\n", label, step, bad ? "MISMATCH" : "every output bit-identical");
    return ok ? bad : -1;
}

/* Batch error cases: each is refused with a message and leaves every cache as it was. */
static void bt_errors(hive_model *m, const char *path) {
    char err[HIVE_ERR_LEN];
    const struct hive_hparams *hp = hive_model_hparams(m);
    int L = hp->n_layer, V = hp->n_vocab, D = hp->n_embd;
    hive_model *m2 = NULL;
    CHECKF(hive_model_load(&m2, path, NULL, err) == HIVE_OK, "%s", err);
    hive_pool *pool2 = hive_pool_create(2);
    hive_ctx *a = NULL, *b = NULL, *other_model = NULL, *other_range = NULL, *other_pool = NULL, *mid = NULL;
    CHECK(hive_ctx_create(&a, m, 0, L, 8, NULL, err) == HIVE_OK);
    CHECK(hive_ctx_create(&b, m, 0, L, 8, NULL, err) == HIVE_OK);
    CHECK(m2 && hive_ctx_create(&other_model, m2, 0, L, 8, NULL, err) == HIVE_OK);
    CHECK(hive_ctx_create(&other_range, m, 0, L / 2, 8, NULL, err) == HIVE_OK);
    CHECK(hive_ctx_create(&other_pool, m, 0, L, 8, pool2, err) == HIVE_OK);
    CHECK(hive_ctx_create(&mid, m, L / 2, L, 8, NULL, err) == HIVE_OK);
    if (!a || !b || !other_model || !other_range || !other_pool || !mid) goto done;
    int32_t toks[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float *out_a = malloc((size_t)V * sizeof(float)), *out_b = malloc((size_t)V * sizeof(float));
    float *hid = calloc(9 * (size_t)D, sizeof(float));
    struct hive_batch_item it[2];
    CHECK(hive_forward(a, toks, NULL, 3, 0, out_a, 0, err) == HIVE_OK);
    CHECK(hive_forward(b, toks, NULL, 2, 0, out_b, 0, err) == HIVE_OK);
#define RESET()                                                                                          \
    do {                                                                                                 \
        it[0] = (struct hive_batch_item){.ctx = a, .tokens = toks, .n_tok = 1, .pos = 3, .out = out_a}; \
        it[1] = (struct hive_batch_item){.ctx = b, .tokens = toks, .n_tok = 2, .pos = 2, .out = out_b}; \
    } while (0)
#define REFUSED(n_items, what)                                                                                      \
    do {                                                                                                            \
        err[0] = 0;                                                                                                 \
        int rc_ = hive_forward_batch(it, n_items, err);                                                             \
        CHECKF(rc_ == HIVE_ERR_INVAL && strstr(err, what), "%s: rc %d, err '%s'", what, rc_, err);                   \
        CHECKF(hive_ctx_n_pos(a) == 3 && hive_ctx_n_pos(b) == 2, "%s: caches moved to %d, %d", what,                \
               hive_ctx_n_pos(a), hive_ctx_n_pos(b));                                                                \
        printf("batch error -> %s\n", err);                                                                         \
    } while (0)
    RESET();
    REFUSED(0, "at least one");
    err[0] = 0;
    CHECK(hive_forward_batch(NULL, 1, err) == HIVE_ERR_INVAL && err[0]);
    RESET(); it[1].ctx = NULL;
    REFUSED(2, "no context");
    RESET(); it[1].ctx = other_model;
    REFUSED(2, "another model");
    RESET(); it[1].ctx = other_range;
    REFUSED(2, "layer range");
    RESET(); it[1].ctx = other_pool;
    REFUSED(2, "thread pool");
    RESET(); it[1].ctx = a;
    REFUSED(2, "same context");
    RESET(); it[1].n_tok = 0;
    REFUSED(2, "n_tok");
    RESET(); it[1].pos = -1;
    REFUSED(2, "negative position");
    RESET(); it[1].pos = 3;
    REFUSED(2, "gap");
    RESET(); it[1].n_tok = 7;
    REFUSED(2, "context full");
    RESET(); it[0].n_tok = 5; /* 3 + 5 = 8 fills a's context exactly: fine, but b is bad */
    int32_t bad_tok[2] = {1, V};
    it[1].tokens = bad_tok;
    REFUSED(2, "token id");
    RESET(); bad_tok[1] = -1; it[1].tokens = bad_tok;
    REFUSED(2, "token id");
    RESET(); it[1].tokens = NULL;
    REFUSED(2, "needs token ids");
    RESET(); it[1].out = NULL;
    REFUSED(2, "output buffer");
    /* A range that does not start at 0 takes hidden states only. */
    it[0] = (struct hive_batch_item){.ctx = mid, .tokens = toks, .hidden = hid, .n_tok = 1, .pos = 0, .out = out_a};
    err[0] = 0;
    CHECK(hive_forward_batch(it, 1, err) == HIVE_ERR_INVAL && strstr(err, "hidden states"));
    it[0].tokens = NULL;
    CHECKF(hive_forward_batch(it, 1, err) == HIVE_OK, "%s", err);
    /* Exactly full is fine; the caches advance together. */
    RESET(); it[0].n_tok = 5; it[1].n_tok = 6;
    CHECKF(hive_forward_batch(it, 2, err) == HIVE_OK, "%s", err);
    CHECK(hive_ctx_n_pos(a) == 8 && hive_ctx_n_pos(b) == 8);
#undef RESET
#undef REFUSED
    free(out_a);
    free(out_b);
    free(hid);
done:
    hive_ctx_free(a);
    hive_ctx_free(b);
    hive_ctx_free(other_model);
    hive_ctx_free(other_range);
    hive_ctx_free(other_pool);
    hive_ctx_free(mid);
    hive_pool_free(pool2);
    hive_model_free(m2);
}

/* Resident set size in bytes, 0 when unknown. */
static uint64_t rss_bytes(void) { return hive_rss_bytes(); }

/* 64 idle contexts with large caches cost little memory; one decode step
 * each (one batch of 64 items) commits only the pages it writes; freeing
 * them gives the memory back. */
static void bt_memory(hive_model *m) {
    char err[HIVE_ERR_LEN];
    const struct hive_hparams *hp = hive_model_hparams(m);
    enum { N = 64, N_CTX = 4096 };
    uint64_t kv_bytes = 2ull * (uint64_t)hp->n_layer * N_CTX * (uint64_t)hp->n_head_kv * hp->head_dim * sizeof(float);
    hive_ctx *c[N] = {0};
    struct hive_batch_item it[N];
    int32_t tok = 7;
    float *out = malloc((size_t)N * hp->n_vocab * sizeof(float));
    uint64_t r0 = rss_bytes();
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= hive_ctx_create(&c[i], m, 0, hp->n_layer, N_CTX, NULL, err) == HIVE_OK;
    CHECKF(ok, "%s", err);
    uint64_t r1 = rss_bytes();
    for (int i = 0; i < N && ok; i++)
        it[i] = (struct hive_batch_item){.ctx = c[i], .tokens = &tok, .n_tok = 1, .pos = 0,
                                         .out = out + (size_t)i * hp->n_vocab};
    if (ok) CHECKF(hive_forward_batch(it, N, err) == HIVE_OK, "%s", err);
    for (int i = 1; i < N && ok; i++) CHECK(!memcmp(out, out + (size_t)i * hp->n_vocab, hp->n_vocab * sizeof(float)));
    uint64_t r2 = rss_bytes();
    for (int i = 0; i < N; i++) hive_ctx_free(c[i]);
    uint64_t r3 = rss_bytes();
    free(out);
    if (!r0) {
        printf("SKIP context memory: the resident size is unknown here\n");
        return;
    }
    double mb = 1.0 / (1 << 20);
    printf("context memory: %d contexts of %d positions (KV %.1f MiB each if touched): RSS +%.1f MiB created, "
           "+%.1f MiB after one step each, %+.1f MiB after free\n",
           N, N_CTX, kv_bytes * mb, ((double)r1 - (double)r0) * mb, ((double)r2 - (double)r0) * mb,
           ((double)r3 - (double)r0) * mb);
    /* Touched, the caches would be N * kv_bytes (here 512 MiB). */
    CHECKF(r1 < r0 + N * kv_bytes / 16, "idle contexts hold %.1f MiB", ((double)r1 - (double)r0) * mb);
    CHECKF(r2 < r0 + N * kv_bytes / 8, "one step each holds %.1f MiB", ((double)r2 - (double)r0) * mb);
    CHECKF(r3 < r2 && r3 < r0 + N * kv_bytes / 16, "freeing the contexts kept %.1f MiB", ((double)r3 - (double)r0) * mb);
}

/* Two threads, each with its own contexts over the same model, run at the
 * same time: the model's scratch is borrowed by one call at a time (the
 * other gets its own), and both get the reference bits. */
struct bt_thread {
    hive_model *m;
    const struct bt_ref *ref;
    int first_seq, bad;
};

static void *bt_thread_main(void *arg) {
    struct bt_thread *t = arg;
    char err[HIVE_ERR_LEN];
    const struct hive_hparams *hp = hive_model_hparams(t->m);
    int V = hp->n_vocab;
    float *out = malloc((size_t)V * sizeof(float));
    for (int rep = 0; rep < 3; rep++) {
        for (int s = t->first_seq; s < BT_SEQS; s += 2) {
            hive_ctx *c = NULL;
            if (hive_ctx_create(&c, t->m, 0, hp->n_layer, 96, NULL, err)) {
                t->bad++;
                continue;
            }
            for (int pos = 0; pos < bt_len[s]; pos++) { /* decode, one token per call */
                if (hive_forward(c, t->ref->toks[s] + pos, NULL, 1, pos, out, 0, err) ||
                    memcmp(out, t->ref->logits[s] + (size_t)pos * V, (size_t)V * sizeof(float)))
                    t->bad++;
            }
            hive_ctx_free(c);
        }
    }
    free(out);
    return NULL;
}

static void bt_concurrent(hive_model *m, const struct bt_ref *ref, const char *label) {
    struct bt_thread t[2] = {{.m = m, .ref = ref, .first_seq = 0}, {.m = m, .ref = ref, .first_seq = 1}};
    pthread_t th;
    int started = pthread_create(&th, NULL, bt_thread_main, &t[1]) == 0;
    CHECK(started);
    bt_thread_main(&t[0]);
    if (started) pthread_join(th, NULL);
    CHECKF(!t[0].bad && !t[1].bad, "%s: concurrent callers: %d + %d mismatches", label, t[0].bad, t[1].bad);
    printf("batch %s: two threads forwarding on one model at once: %s\n", label,
           t[0].bad || t[1].bad ? "MISMATCH" : "bit-identical");
}

/* Batches against each sequence alone, for one model file. */
static void test_batch(const char *path, const char *label, int with_extras) {
    char err[HIVE_ERR_LEN];
    hive_model *m = NULL;
    int rc = hive_model_load(&m, path, NULL, err);
    CHECKF(rc == HIVE_OK, "%s: %s", label, err);
    if (rc) return;
    const struct hive_hparams *hp = hive_model_hparams(m);
    int L = hp->n_layer, V = hp->n_vocab, D = hp->n_embd;
    struct bt_ref ref;
    memset(&ref, 0, sizeof ref);
    int ok = 1;
    for (int s = 0; s < BT_SEQS && ok; s++) {
        ref.toks[s] = malloc((size_t)bt_len[s] * sizeof(int32_t));
        ref.logits[s] = malloc((size_t)bt_len[s] * V * sizeof(float));
        ref.hidden[s] = malloc((size_t)bt_len[s] * D * sizeof(float));
        for (int i = 0; i < bt_len[s]; i++) ref.toks[s][i] = (int32_t)((s * 131 + i * 31 + 1) % V);
        hive_ctx *c = NULL, *h = NULL;
        ok &= hive_ctx_create(&c, m, 0, L, 96, NULL, err) == HIVE_OK;
        ok &= ok && hive_forward(c, ref.toks[s], NULL, bt_len[s], 0, ref.logits[s], 1, err) == HIVE_OK;
        ok &= ok && hive_ctx_create(&h, m, 0, L / 2, 96, NULL, err) == HIVE_OK;
        ok &= ok && hive_forward(h, ref.toks[s], NULL, bt_len[s], 0, ref.hidden[s], 0, err) == HIVE_OK;
        if (ok && s == 1) { /* the reference itself: token by token gives the same logits */
            hive_ctx_truncate(c, 0);
            float *row = malloc((size_t)V * sizeof(float));
            int same = 1;
            for (int i = 0; i < bt_len[s]; i++) {
                ok &= hive_forward(c, ref.toks[s] + i, NULL, 1, i, row, 0, err) == HIVE_OK;
                same &= !memcmp(row, ref.logits[s] + (size_t)i * V, V * sizeof(float));
            }
            CHECKF(same, "%s: token-by-token differs from one call", label);
            free(row);
        }
        hive_ctx_free(c);
        hive_ctx_free(h);
    }
    CHECKF(ok, "%s: reference: %s", label, err);
    if (ok) {
        hive_pool *pool2 = hive_pool_create(2);
        char what[160];
        snprintf(what, sizeof what, "%s 1 thread", label);
        CHECK(bt_schedule(m, &ref, NULL, 0, 1, what) == 0);
        snprintf(what, sizeof what, "%s 2 threads", label);
        CHECK(bt_schedule(m, &ref, pool2, 0, 2, what) == 0);
        if (L >= 2) {
            snprintf(what, sizeof what, "%s 2 stages, 1 thread", label);
            CHECK(bt_schedule(m, &ref, NULL, 1, 3, what) == 0);
            snprintf(what, sizeof what, "%s 2 stages, 2 threads", label);
            CHECK(bt_schedule(m, &ref, pool2, 1, 4, what) == 0);
        }
        if (with_extras) bt_concurrent(m, &ref, label);
        hive_pool_free(pool2);
    }
    if (with_extras) {
        bt_errors(m, path);
        bt_memory(m);
    }
    for (int s = 0; s < BT_SEQS; s++) {
        free(ref.toks[s]);
        free(ref.logits[s]);
        free(ref.hidden[s]);
    }
    hive_model_free(m);
}

/* Synthetic models of several weight types and architectures. */
static void test_batch_synthetic(void) {
    static const struct {
        const char *type, *arch;
    } kinds[] = {{"f32", "llama"}, {"q4_0", "qwen2"}, {"q8_0", "qwen3"}, {"q4_k", "llama"}};
    char dir[512], path[1100], err[HIVE_ERR_LEN];
    if (!check_temp_dir(dir, sizeof dir, "hive_test_batch_")) {
        CHECK(0);
        return;
    }
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct hive_mkmodel_opts o;
        memset(&o, 0, sizeof o);
        o.type = kinds[k].type;
        o.arch = kinds[k].arch;
        o.dim = 256;
        o.n_layers = 2;
        o.n_heads = 8;
        o.n_kv_heads = 2;
        o.seed = 11 + k;
        o.n_threads = 2;
        snprintf(path, sizeof path, "%s/%s-%s.gguf", dir, kinds[k].arch, kinds[k].type);
        int rc = hive_mkmodel(&o, path, err);
        CHECKF(rc == HIVE_OK, "mkmodel %s: %s", path, err);
        if (rc) continue;
        char label[64];
        snprintf(label, sizeof label, "synth-%s-%s", kinds[k].arch, kinds[k].type);
        test_batch(path, label, k == 0);
        unlink(path);
    }
    rmdir(dir);
}

int main(void) {
    char path[1024], qpath[1024], q2path[1024];
    test_batch_synthetic();
    const char *shared = shared_dir();
    struct stat st;
    if (shared) snprintf(path, sizeof path, "%s/models/stories260K.gguf", shared);
    if (!shared || stat(path, &st) != 0) {
        printf("SKIP: the stories260K tests (shared test data models/stories260K.gguf not found; set HIVE_SHARED)\n");
        return check_result("test_model");
    }
    test_batch(path, "stories260K", 0);
    test_stories_greedy(path);
    test_stage_tensors(path);
    test_splits(path, "stories260K");
    test_splits(shared_path(qpath, sizeof qpath, "reference/models/synth-qwen2-q8_0.gguf"), "synth-qwen2-q8_0");
    if (!small_scale())
        test_splits(shared_path(q2path, sizeof q2path, "reference/models/synth-qwen3-q4_k.gguf"), "synth-qwen3-q4_k");
    test_bad_input(path);
    return check_result("test_model");
}
