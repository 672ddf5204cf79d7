/* profile.c - what the planner needs to know about a model, read from its
 * GGUF without loading it: bytes per layer, the extras of the first and last
 * stage, KV cache and scratch estimates. */
#include "hive/cluster.h"

#include <stdlib.h>
#include <string.h>

#include "hive/mkmodel.h"
#include "hive/model.h"

struct sum_arg {
    uint64_t bytes;
};

static void add_tensor_bytes(void *arg, const struct hive_gguf_tensor *t) {
    ((struct sum_arg *)arg)->bytes += t->n_bytes;
}

static int stage_mem(const hive_gguf *g, int first, int last, uint64_t *out, char *err) {
    struct sum_arg a = {0};
    int rc = hive_model_stage_tensors(g, first, last, add_tensor_bytes, &a, err);
    *out = a.bytes;
    return rc;
}

/* Layer index of "blk.N.xxx", or -1. */
static int tensor_layer(const struct hive_str *name) {
    if (name->len < 5 || memcmp(name->ptr, "blk.", 4) != 0) return -1;
    int l = 0;
    uint64_t i = 4;
    if (i >= name->len || name->ptr[i] < '0' || name->ptr[i] > '9') return -1;
    for (; i < name->len && name->ptr[i] >= '0' && name->ptr[i] <= '9'; i++) {
        l = l * 10 + (name->ptr[i] - '0');
        if (l > 1000000) return -1;
    }
    return i < name->len && name->ptr[i] == '.' ? l : -1;
}

/* KV cache, scratch and the hidden state on the wire, from the
 * hyper-parameters (the same for a GGUF and a shape on paper). */
static void fill_runtime(struct hive_model_profile *p, int64_t n_embd, int64_t n_ff, int64_t n_head,
                         int64_t n_head_kv, int64_t head_dim, int64_t n_vocab, int n_ctx) {
    if (n_ctx <= 0) n_ctx = 2048;
    /* KV cache: K and V, n_head_kv x head_dim per position, f32 (an upper bound). */
    p->kv_per_layer = (uint64_t)n_ctx * 2u * (uint64_t)n_head_kv * (uint64_t)head_dim * 4u;
    /* Scratch: a prefill batch of up to 64 tokens of activations, attention
     * scores over the context, the logits row, and a fixed allowance. */
    uint64_t batch = 64;
    p->scratch_bytes = 4u * (batch * (6u * (uint64_t)n_embd + 3u * (uint64_t)n_ff) +
                             (uint64_t)n_head * (uint64_t)n_ctx + (uint64_t)n_vocab) +
                       (1u << 20);
    p->hidden_bytes = 4u * (uint64_t)n_embd;
}

/* The per-layer arrays of an empty profile of L layers. */
static int alloc_layers(struct hive_model_profile *p, int L, char *err) {
    p->n_layer = L;
    p->layer_mem = hive_calloc((size_t)L, sizeof *p->layer_mem);
    p->layer_read = hive_calloc((size_t)L, sizeof *p->layer_read);
    if (!p->layer_mem || !p->layer_read) {
        hive_model_profile_free(p);
        return hive_errf(err, HIVE_ERR_NOMEM, "profile: out of memory");
    }
    return HIVE_OK;
}

static uint64_t sub_clamp(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

int hive_model_profile_from_gguf(struct hive_model_profile *p, const hive_gguf *g, int n_ctx, char *err) {
    memset(p, 0, sizeof *p);
    struct hive_hparams hp;
    int rc = hive_model_read_hparams(g, &hp, err);
    if (rc) return rc;
    if (hp.n_layer <= 0 || hp.n_layer > 100000) return hive_errf(err, HIVE_ERR_FORMAT, "profile: bad n_layer");
    int L = hp.n_layer;
    rc = alloc_layers(p, L, err);
    if (rc) return rc;
    for (int64_t i = 0; i < hive_gguf_n_tensors(g); i++) {
        const struct hive_gguf_tensor *t = hive_gguf_tensor(g, i);
        int l = tensor_layer(&t->name);
        if (l >= 0 && l < L) p->layer_mem[l] += t->n_bytes;
    }
    /* Every weight of a layer is read once per token. */
    for (int l = 0; l < L; l++) p->layer_read[l] = p->layer_mem[l];
    uint64_t m_first = 0, m_last = 0;
    rc = stage_mem(g, 0, 1, &m_first, err);
    if (!rc && L > 1) rc = stage_mem(g, L - 1, L, &m_last, err);
    if (rc) {
        hive_model_profile_free(p);
        return rc;
    }
    uint64_t r_first = hive_model_stage_bytes(g, 0, 1);
    uint64_t r_last = L > 1 ? hive_model_stage_bytes(g, L - 1, L) : 0;
    p->first_mem = sub_clamp(m_first, p->layer_mem[0]);
    p->first_read = sub_clamp(r_first, p->layer_read[0]);
    if (L > 1) {
        p->last_mem = sub_clamp(m_last, p->layer_mem[L - 1]);
        p->last_read = sub_clamp(r_last, p->layer_read[L - 1]);
    }
    fill_runtime(p, hp.n_embd, hp.n_ff, hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_vocab, n_ctx);
    return HIVE_OK;
}

/* ---- a well-known shape at a quant type, with no file (hive plan --shape) ---- */

struct shape_sum {
    struct hive_model_profile *p;
    uint64_t emb, out; /* token_embd; output.weight + output_norm */
    int tied;          /* no output.weight: the embedding is the head */
};

static void add_shape_tensor(void *ctx, const char *name, uint64_t n_bytes) {
    struct shape_sum *a = ctx;
    struct hive_str s = {name, strlen(name)};
    int l = tensor_layer(&s);
    if (l >= 0 && l < a->p->n_layer) a->p->layer_mem[l] += n_bytes;
    else if (!strcmp(name, "token_embd.weight")) a->emb += n_bytes;
    else a->out += n_bytes;
    if (!strcmp(name, "output.weight")) a->tied = 0;
}

int hive_model_profile_from_shape(struct hive_model_profile *p, const char *shape, const char *type, int n_ctx,
                                  char *err) {
    memset(p, 0, sizeof *p);
    struct hive_mkmodel_opts o;
    memset(&o, 0, sizeof o);
    o.type = type;
    int rc = hive_mkmodel_preset(&o, shape, err);
    if (rc) return rc;
    int L = (int)o.n_layers;
    rc = alloc_layers(p, L, err);
    if (rc) return rc;
    struct shape_sum a = {p, 0, 0, 1};
    rc = hive_mkmodel_layout(&o, add_shape_tensor, &a, err);
    if (rc) {
        hive_model_profile_free(p);
        return rc;
    }
    for (int l = 0; l < L; l++) p->layer_read[l] = p->layer_mem[l];
    /* As from a GGUF: the embedding sits on the first stage and is read one
     * row per token (counted as nothing), unless it is also the output head. */
    p->first_mem = a.emb;
    p->last_mem = a.out + (a.tied ? a.emb : 0);
    p->last_read = p->last_mem;
    fill_runtime(p, o.dim, o.ff, o.n_heads, o.n_kv_heads, o.dim / o.n_heads, o.vocab, n_ctx);
    return HIVE_OK;
}

void hive_model_profile_free(struct hive_model_profile *p) {
    free(p->layer_mem);
    free(p->layer_read);
    p->layer_mem = p->layer_read = NULL;
}
