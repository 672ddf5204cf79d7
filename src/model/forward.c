/* forward.c - the transformer forward pass over a layer range, with the KV
 * cache (see hive/model.h).
 *
 * Per layer (llama family; qwen2 adds q/k/v biases, qwen3 per-head q/k norms):
 *   xn = rmsnorm(x) * attn_norm
 *   q, k, v = Wq xn (+bq), Wk xn (+bk), Wv xn (+bv); k, v go straight into the cache
 *   q, k = rope(rmsnorm_head(q) * q_norm, ...)      (qwen3 norms before rope)
 *   x += Wo attention(q, K[0..pos], V[0..pos])       (causal, GQA, 1/sqrt(hd))
 *   xn = rmsnorm(x) * ffn_norm
 *   x += Wdown (silu(Wgate xn) * Wup xn)
 * and at the end of the model: logits = Wout (rmsnorm(x) * output_norm).
 *
 * Determinism: every token's numbers are computed by the same code in the
 * same order whether it is alone or inside a batch, whatever the thread
 * count and whatever the range split: matmuls are row-independent
 * (hive_matmul), norms/rope/activations are per row, and attention for one
 * (token, head) runs on one thread in position order. Tokens are processed
 * in micro-batches of at most UBATCH so that scratch memory does not grow
 * with the prompt; that changes nothing either. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hive/tensor.h"
#include "model_internal.h"

/* Tokens per internal micro-batch: enough to turn matmuls into
 * matrix-matrix work, small enough that scratch stays a few MiB. */
#define UBATCH 64

struct hive_ctx {
    const hive_model *m;
    int first, last;     /* layer range run by this context */
    int n_ctx;           /* KV capacity in positions */
    int n_filled;        /* positions [0, n_filled) hold valid K/V */
    hive_pool *pool;
    int n_threads;
    int64_t kv_row;      /* n_head_kv * head_dim floats per cached position */
    float *k_cache;      /* (n_layers, n_ctx, kv_row) */
    float *v_cache;      /* (n_layers, n_ctx, kv_row) */
    /* scratch for one micro-batch of ub tokens */
    float *x;            /* (ub, n_embd) residual stream */
    float *xn;           /* (ub, n_embd) normalized */
    float *q;            /* (ub, n_head*hd) */
    float *att;          /* (ub, n_head*hd) attention output */
    float *tmp;          /* (ub, n_embd) projection output */
    float *gate;         /* (ub, n_ff) */
    float *up;           /* (ub, n_ff) */
    float *rope_cos;     /* (ub, n_rot/2) */
    float *rope_sin;     /* (ub, n_rot/2) */
    float *scores;       /* (n_threads, n_head/n_head_kv, n_ctx) attention weights */
    double *inv_freq;    /* (n_rot/2,) base^(-2i/n_rot) * freq_scale / factor_i */
};

int hive_ctx_create(hive_ctx **out, const hive_model *m, int first, int last, int n_ctx, hive_pool *pool,
                    char *err) {
    *out = NULL;
    const struct hive_hparams *hp = &m->hp;
    if (first < m->first || last > m->last || first > last)
        return hive_errf(err, HIVE_ERR_INVAL, "context range [%d, %d) is outside the loaded layers [%d, %d)", first,
                         last, m->first, m->last);
    if (n_ctx <= 0 || n_ctx > (1 << 24)) return hive_errf(err, HIVE_ERR_INVAL, "context size %d invalid", n_ctx);
    hive_ctx *c = hive_calloc(1, sizeof *c);
    if (!c) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    c->m = m;
    c->first = first;
    c->last = last;
    c->n_ctx = n_ctx;
    c->pool = pool;
    c->n_threads = hive_pool_size(pool);
    int64_t hd = hp->head_dim, d = hp->n_embd, nq = (int64_t)hp->n_head * hd;
    c->kv_row = (int64_t)hp->n_head_kv * hd;
    size_t n_layers = (size_t)(last - first);
    size_t kv_floats = n_layers * (size_t)n_ctx * (size_t)c->kv_row;
    size_t ub = UBATCH;
    int half = hp->n_rot / 2;
    c->k_cache = hive_malloc_aligned((kv_floats ? kv_floats : 1) * sizeof(float));
    c->v_cache = hive_malloc_aligned((kv_floats ? kv_floats : 1) * sizeof(float));
    c->x = hive_malloc_aligned(ub * (size_t)d * sizeof(float));
    c->xn = hive_malloc_aligned(ub * (size_t)d * sizeof(float));
    c->tmp = hive_malloc_aligned(ub * (size_t)d * sizeof(float));
    c->q = hive_malloc_aligned(ub * (size_t)nq * sizeof(float));
    c->att = hive_malloc_aligned(ub * (size_t)nq * sizeof(float));
    c->gate = hive_malloc_aligned(ub * (size_t)hp->n_ff * sizeof(float));
    c->up = hive_malloc_aligned(ub * (size_t)hp->n_ff * sizeof(float));
    c->rope_cos = hive_malloc_aligned(ub * (size_t)half * sizeof(float));
    c->rope_sin = hive_malloc_aligned(ub * (size_t)half * sizeof(float));
    c->scores = hive_malloc_aligned((size_t)c->n_threads * (size_t)(hp->n_head / hp->n_head_kv) * (size_t)n_ctx *
                                    sizeof(float));
    c->inv_freq = hive_malloc_array((size_t)half, sizeof(double));
    if (!c->k_cache || !c->v_cache || !c->x || !c->xn || !c->tmp || !c->q || !c->att || !c->gate || !c->up ||
        !c->rope_cos || !c->rope_sin || !c->scores || !c->inv_freq) {
        hive_ctx_free(c);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory for a %d-position context over layers [%d, %d)", n_ctx,
                         first, last);
    }
    for (int i = 0; i < half; i++) {
        double f = pow((double)hp->rope_theta, -2.0 * i / hp->n_rot) * (double)hp->rope_freq_scale;
        if (m->rope_factors) f /= (double)m->rope_factors[i];
        c->inv_freq[i] = f;
    }
    *out = c;
    return HIVE_OK;
}

void hive_ctx_free(hive_ctx *c) {
    if (!c) return;
    hive_free_aligned(c->k_cache);
    hive_free_aligned(c->v_cache);
    hive_free_aligned(c->x);
    hive_free_aligned(c->xn);
    hive_free_aligned(c->tmp);
    hive_free_aligned(c->q);
    hive_free_aligned(c->att);
    hive_free_aligned(c->gate);
    hive_free_aligned(c->up);
    hive_free_aligned(c->rope_cos);
    hive_free_aligned(c->rope_sin);
    hive_free_aligned(c->scores);
    free(c->inv_freq);
    free(c);
}

int hive_ctx_n_ctx(const hive_ctx *c) { return c->n_ctx; }
int hive_ctx_n_pos(const hive_ctx *c) { return c->n_filled; }

void hive_ctx_truncate(hive_ctx *c, int n_pos) {
    if (n_pos < 0) n_pos = 0;
    if (n_pos < c->n_filled) c->n_filled = n_pos;
}

int64_t hive_forward_out_floats(const hive_ctx *c, int n_tok, int all_logits) {
    const struct hive_hparams *hp = &c->m->hp;
    if (c->last == hp->n_layer) return (int64_t)(all_logits ? n_tok : (n_tok > 0)) * hp->n_vocab;
    return (int64_t)n_tok * hp->n_embd;
}

/* ---- per-row operations ---- */

/* y (n,) = x (n,) / sqrt(mean(x^2) + eps) * w (n,); the sum of squares is
 * accumulated in double so long rows lose nothing. */
static void rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

/* Rotates the first n_rot dims of one head vector v (hd,) by the angles of
 * one position: normal = adjacent pairs (2i, 2i+1), NeoX = (i, i + n_rot/2). */
static void rope_head(float *v, const float *cos_t, const float *sin_t, int n_rot, int neox) {
    int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        float x0 = v[i0], x1 = v[i1];
        v[i0] = x0 * cos_t[i] - x1 * sin_t[i];
        v[i1] = x0 * sin_t[i] + x1 * cos_t[i];
    }
}

/* a (n,) . b (n,) with 8 independent partial sums (a fixed order, which
 * the compiler can keep in one vector register). */
static inline __attribute__((always_inline)) float dot_f32(const float *a, const float *b, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

/* y (n,) += a * x (n,), in 8-wide chunks the compiler vectorizes. */
static inline __attribute__((always_inline)) void axpy(float *restrict y, float a, const float *restrict x,
                                                        int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) y[i + k] += a * x[i + k];
    for (; i < n; i++) y[i] += a * x[i];
}

/* ---- attention ---- */

struct attn_job {
    hive_ctx *c;
    const float *k_layer; /* (n_ctx, kv_row) */
    const float *v_layer; /* (n_ctx, kv_row) */
    int n_tok, pos;
};

/* One (token, kv head) pair per work item, covering the `group` query heads
 * that share that kv head, so each K/V row is read once for all of them:
 * att[t, h] = softmax(q_h k^T * scale) V over positions [0, pos + t].
 * The arithmetic for one (token, query head) is the same whatever the
 * grouping, batch or thread split. */
static inline __attribute__((always_inline)) void attn_items(void *arg, int ith, int nth) {
    const struct attn_job *job = arg;
    hive_ctx *c = job->c;
    const struct hive_hparams *hp = &c->m->hp;
    int hd = hp->head_dim, n_kv = hp->n_head_kv, group = hp->n_head / hp->n_head_kv;
    int64_t nq = (int64_t)hp->n_head * hd;
    float scale = 1.0f / sqrtf((float)hd);
    float *scores = c->scores + (size_t)ith * (size_t)group * (size_t)c->n_ctx; /* (group, n_ctx) */
    int64_t begin, end;
    hive_split_range((int64_t)job->n_tok * n_kv, ith, nth, &begin, &end);
    for (int64_t item = begin; item < end; item++) {
        int t = (int)(item / n_kv), kvh = (int)(item % n_kv);
        const float *q0 = c->q + (size_t)t * (size_t)nq + (size_t)kvh * (size_t)group * (size_t)hd;
        float *out0 = c->att + (size_t)t * (size_t)nq + (size_t)kvh * (size_t)group * (size_t)hd;
        int n_pos = job->pos + t + 1;
        for (int j = 0; j < n_pos; j++) {
            const float *k = job->k_layer + (size_t)j * (size_t)c->kv_row + (size_t)kvh * (size_t)hd;
            for (int g = 0; g < group; g++) scores[(size_t)g * c->n_ctx + j] = dot_f32(q0 + g * hd, k, hd) * scale;
        }
        for (int g = 0; g < group; g++) {
            float *sc = scores + (size_t)g * c->n_ctx;
            float max = -INFINITY;
            for (int j = 0; j < n_pos; j++)
                if (sc[j] > max) max = sc[j];
            float sum = 0.0f;
            for (int j = 0; j < n_pos; j++) {
                float d = sc[j] - max;
                /* expf underflows to ~0 below -88 and is slow there (errno). */
                sum += sc[j] = d < -88.0f ? 0.0f : expf(d);
            }
            float inv_sum = 1.0f / sum;
            for (int j = 0; j < n_pos; j++) sc[j] *= inv_sum;
        }
        memset(out0, 0, (size_t)group * (size_t)hd * sizeof(float));
        for (int j = 0; j < n_pos; j++) {
            const float *v = job->v_layer + (size_t)j * (size_t)c->kv_row + (size_t)kvh * (size_t)hd;
            for (int g = 0; g < group; g++) axpy(out0 + g * hd, scores[(size_t)g * c->n_ctx + j], v, hd);
        }
    }
}

/* attn_items compiled twice: for AVX2 (wider vectors for dot_f32 and axpy,
 * the same operations in the same order: no FMA contraction in ISO C, so
 * the bits do not change) and for the baseline. */
#if defined(__x86_64__)
__attribute__((target("avx2"))) static void attn_task_avx2(void *arg, int ith, int nth) { attn_items(arg, ith, nth); }
#endif

static void attn_task(void *arg, int ith, int nth) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) {
        attn_task_avx2(arg, ith, nth);
        return;
    }
#endif
    attn_items(arg, ith, nth);
}

/* ---- one micro-batch ---- */

static int matmul(hive_ctx *c, const struct model_matrix *w, const float *x, int n_tok, float *y, char *err,
                  const char *what) {
    int rc = hive_matmul(c->pool, w->type, w->data, w->n_rows, w->n_cols, x, n_tok, y);
    if (rc) return hive_errf(err, rc, "matmul %s (%s, %lld x %lld) failed: %s", what, hive_type_name(w->type),
                             (long long)w->n_rows, (long long)w->n_cols, hive_status_name(rc));
    return HIVE_OK;
}

static void add_bias(float *y, const float *b, int n_tok, int64_t n) {
    if (!b) return;
    for (int t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < n; i++) y[(size_t)t * (size_t)n + (size_t)i] += b[i];
}

/* q/k of n_tok tokens with n_heads heads each: optional per-head norm, then rope. */
static void qk_heads(const hive_ctx *c, float *v, int n_tok, int n_heads, const float *norm_w) {
    const struct hive_hparams *hp = &c->m->hp;
    int hd = hp->head_dim, half = hp->n_rot / 2;
    for (int t = 0; t < n_tok; t++) {
        for (int h = 0; h < n_heads; h++) {
            float *head = v + ((size_t)t * (size_t)n_heads + (size_t)h) * (size_t)hd;
            if (norm_w) rmsnorm(head, head, norm_w, hd, hp->rms_eps);
            rope_head(head, c->rope_cos + (size_t)t * half, c->rope_sin + (size_t)t * half, hp->n_rot, hp->rope_neox);
        }
    }
}

static int run_layer(hive_ctx *c, int il, int n_tok, int pos, char *err) {
    const hive_model *m = c->m;
    const struct hive_hparams *hp = &m->hp;
    const struct model_layer *L = &m->layers[il - m->first];
    int64_t d = hp->n_embd, nq = (int64_t)hp->n_head * hp->head_dim, nkv = c->kv_row;
    size_t layer_off = (size_t)(il - c->first) * (size_t)c->n_ctx * (size_t)nkv;
    float *k_layer = c->k_cache + layer_off, *v_layer = c->v_cache + layer_off;
    float *k_new = k_layer + (size_t)pos * (size_t)nkv, *v_new = v_layer + (size_t)pos * (size_t)nkv;
    int rc;

    for (int t = 0; t < n_tok; t++) rmsnorm(c->xn + t * d, c->x + t * d, L->attn_norm, d, hp->rms_eps);
    if ((rc = matmul(c, &L->wq, c->xn, n_tok, c->q, err, "attn_q"))) return rc;
    if ((rc = matmul(c, &L->wk, c->xn, n_tok, k_new, err, "attn_k"))) return rc;
    if ((rc = matmul(c, &L->wv, c->xn, n_tok, v_new, err, "attn_v"))) return rc;
    add_bias(c->q, L->bq, n_tok, nq);
    add_bias(k_new, L->bk, n_tok, nkv);
    add_bias(v_new, L->bv, n_tok, nkv);
    qk_heads(c, c->q, n_tok, hp->n_head, L->q_norm);
    qk_heads(c, k_new, n_tok, hp->n_head_kv, L->k_norm);

    struct attn_job job = {.c = c, .k_layer = k_layer, .v_layer = v_layer, .n_tok = n_tok, .pos = pos};
    hive_pool_run(c->pool, attn_task, &job);
    if ((rc = matmul(c, &L->wo, c->att, n_tok, c->tmp, err, "attn_output"))) return rc;
    for (int64_t i = 0; i < n_tok * d; i++) c->x[i] += c->tmp[i];

    for (int t = 0; t < n_tok; t++) rmsnorm(c->xn + t * d, c->x + t * d, L->ffn_norm, d, hp->rms_eps);
    if ((rc = matmul(c, &L->gate, c->xn, n_tok, c->gate, err, "ffn_gate"))) return rc;
    if ((rc = matmul(c, &L->up, c->xn, n_tok, c->up, err, "ffn_up"))) return rc;
    for (int64_t i = 0; i < (int64_t)n_tok * hp->n_ff; i++) {
        float g = c->gate[i];
        c->gate[i] = g / (1.0f + expf(-g)) * c->up[i];
    }
    if ((rc = matmul(c, &L->down, c->gate, n_tok, c->tmp, err, "ffn_down"))) return rc;
    for (int64_t i = 0; i < n_tok * d; i++) c->x[i] += c->tmp[i];
    return HIVE_OK;
}

/* Runs one micro-batch of n_tok <= UBATCH tokens at pos. out_rows selects
 * which rows produce output (last range: logits rows [row0, n_tok)). */
static int run_ubatch(hive_ctx *c, const int32_t *tokens, const float *hidden, int n_tok, int pos, float *out,
                      int out_row0, char *err) {
    const hive_model *m = c->m;
    const struct hive_hparams *hp = &m->hp;
    int64_t d = hp->n_embd;
    int half = hp->n_rot / 2;
    if (tokens) {
        for (int t = 0; t < n_tok; t++)
            hive_get_row(m->tok_embd.type, m->tok_embd.data, d, tokens[t], c->x + (size_t)t * (size_t)d);
    } else {
        memcpy(c->x, hidden, (size_t)n_tok * (size_t)d * sizeof(float));
    }
    for (int t = 0; t < n_tok; t++) {
        for (int i = 0; i < half; i++) {
            double theta = (double)(pos + t) * c->inv_freq[i];
            c->rope_cos[t * half + i] = (float)cos(theta);
            c->rope_sin[t * half + i] = (float)sin(theta);
        }
    }
    for (int il = c->first; il < c->last; il++) {
        int rc = run_layer(c, il, n_tok, pos, err);
        if (rc) return rc;
    }
    if (c->last < hp->n_layer) {
        memcpy(out, c->x, (size_t)n_tok * (size_t)d * sizeof(float));
        return HIVE_OK;
    }
    int n_out = n_tok - out_row0;
    if (n_out <= 0) return HIVE_OK;
    for (int t = out_row0; t < n_tok; t++)
        rmsnorm(c->xn + (size_t)t * (size_t)d, c->x + (size_t)t * (size_t)d, m->output_norm, d, hp->rms_eps);
    return matmul(c, &m->output, c->xn + (size_t)out_row0 * (size_t)d, n_out, out, err, "output");
}

int hive_forward(hive_ctx *c, const int32_t *tokens, const float *hidden, int n_tok, int pos, float *out,
                 int all_logits, char *err) {
    const hive_model *m = c->m;
    const struct hive_hparams *hp = &m->hp;
    if (n_tok < 0 || pos < 0) return hive_errf(err, HIVE_ERR_INVAL, "negative token count or position");
    if (n_tok == 0) return HIVE_OK;
    /* Token ids only make sense at layer 0; hidden states are accepted there
     * too (after an embedding-only stage [0, 0)). */
    int use_tokens = c->first == 0 && tokens;
    if (!use_tokens && !hidden)
        return hive_errf(err, HIVE_ERR_INVAL, "layer range [%d, %d) needs %s as input", c->first, c->last,
                         c->first == 0 ? "token ids" : "hidden states");
    if (tokens && c->first != 0)
        return hive_errf(err, HIVE_ERR_INVAL, "layer range [%d, %d) takes hidden states, not token ids", c->first,
                         c->last);
    if (!out) return hive_errf(err, HIVE_ERR_INVAL, "no output buffer");
    if ((int64_t)pos + n_tok > c->n_ctx)
        return hive_errf(err, HIVE_ERR_INVAL, "context full: positions %d..%d exceed the context of %d", pos,
                         pos + n_tok - 1, c->n_ctx);
    if (pos > c->n_filled)
        return hive_errf(err, HIVE_ERR_INVAL, "position %d leaves a gap: only %d positions are cached", pos,
                         c->n_filled);
    if (use_tokens) {
        for (int t = 0; t < n_tok; t++)
            if (tokens[t] < 0 || tokens[t] >= hp->n_vocab)
                return hive_errf(err, HIVE_ERR_INVAL, "token id %d out of range [0, %d)", tokens[t], hp->n_vocab);
    }
    /* Positions from pos on are being rewritten: anything cached after them
     * was computed from the old contents. */
    c->n_filled = pos;
    int is_last = c->last == hp->n_layer;
    for (int done = 0; done < n_tok;) {
        int n = n_tok - done < UBATCH ? n_tok - done : UBATCH;
        float *o;
        int row0 = 0;
        if (!is_last) {
            o = out + (size_t)done * (size_t)hp->n_embd;
        } else if (all_logits) {
            o = out + (size_t)done * (size_t)hp->n_vocab;
        } else {
            o = out; /* only the very last token's logits */
            row0 = done + n == n_tok ? n - 1 : n;
        }
        const int32_t *tok_in = use_tokens ? tokens + done : NULL;
        const float *hid_in = use_tokens ? NULL : hidden + (size_t)done * (size_t)hp->n_embd;
        int rc = run_ubatch(c, tok_in, hid_in, n, pos + done, o, row0, err);
        if (rc) return rc;
        done += n;
        c->n_filled = pos + done;
    }
    return HIVE_OK;
}
