/* forward.c - the transformer forward pass over a layer range, with the KV
 * cache (see hive/model.h).
 *
 * Per layer (llama family; qwen2 adds q/k/v biases, qwen3 per-head q/k norms):
 *   xn = rmsnorm(x) * attn_norm
 *   q, k, v = Wq xn (+bq), Wk xn (+bk), Wv xn (+bv)
 *   q, k = rope(rmsnorm_head(q) * q_norm, ...)      (qwen3 norms before rope)
 *   k, v -> the row's own KV cache at the row's position
 *   x += Wo attention(q, K[0..pos], V[0..pos])       (causal, GQA, 1/sqrt(hd))
 *   xn = rmsnorm(x) * ffn_norm
 *   x += Wdown (silu(Wgate xn) * Wup xn)
 * and at the end of the model: logits = Wout (rmsnorm(x) * output_norm).
 *
 * One code path for one sequence (hive_forward) and many (hive_forward_batch):
 * the tokens of every item are laid out as one list of rows, each row
 * carrying its context (KV cache), its position, its input and where its
 * output goes. The rows are run UBATCH at a time (a micro-batch); one
 * sequence's rows may span two micro-batches. Within a micro-batch every
 * matmul takes all rows at once (the weights are read once for all
 * sequences), the new K/V rows are stored into their caches before attention
 * runs (so causal attention inside one sequence sees its earlier rows), and
 * attention reads each row's own cache up to its own position.
 *
 * Determinism: every token's numbers are computed by the same code in the
 * same order whether it is alone or inside a batch with other tokens or
 * sequences, whatever the thread count and the range split: matmuls are
 * row-independent (hive_matmul), norms/rope/activations are per row, and
 * attention for one (row, head) runs on one thread in position order.
 *
 * Memory: a context holds only its KV cache, mapped without touching it, so
 * pages are committed as positions are written and an idle context costs
 * little. The micro-batch scratch (activations, rope tables, attention
 * scores, gathered logits) belongs to the model: one cached set, borrowed by
 * a forward call for its duration (a concurrent second caller on the same
 * model gets a private set, freed when it returns). */
#include <math.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/os.h"
#include "hive/tensor.h"
#include "model_internal.h"

/* Rows per internal micro-batch: enough to turn matmuls into
 * matrix-matrix work, small enough that scratch stays a few MiB. */
#define UBATCH 64
/* KV buffers at least this big are anonymous mappings (committed lazily,
 * returned with munmap); smaller ones come from the heap. */
#define KV_MAP_MIN ((size_t)64 * 1024)

struct hive_ctx {
    const hive_model *m;
    int first, last;     /* layer range run by this context */
    int n_ctx;           /* KV capacity in positions */
    int n_filled;        /* positions [0, n_filled) hold valid K/V */
    hive_pool *pool;
    int64_t kv_row;      /* n_head_kv * head_dim floats per cached position */
    size_t kv_bytes;     /* bytes of each of k_cache and v_cache (0: no layers) */
    int kv_mapped;       /* 1: k_cache/v_cache are mmap'd, 0: heap */
    float *k_cache;      /* (n_layers, n_ctx, kv_row) */
    float *v_cache;      /* (n_layers, n_ctx, kv_row) */
};

/* ---- KV memory ---- */

static float *kv_alloc(size_t bytes, int mapped) {
    if (!mapped) return hive_malloc_aligned(bytes);
    return hive_map_anon(bytes, HIVE_MAP_NORESERVE);
}

static void kv_release(float *p, size_t bytes, int mapped) {
    if (!p) return;
    if (mapped) hive_unmap_anon(p, bytes);
    else hive_free_aligned(p);
}

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
    c->kv_row = (int64_t)hp->n_head_kv * hp->head_dim;
    size_t kv_floats = (size_t)(last - first) * (size_t)n_ctx * (size_t)c->kv_row;
    if (kv_floats) {
        c->kv_bytes = kv_floats * sizeof(float);
        c->kv_mapped = c->kv_bytes >= KV_MAP_MIN;
        c->k_cache = kv_alloc(c->kv_bytes, c->kv_mapped);
        c->v_cache = kv_alloc(c->kv_bytes, c->kv_mapped);
        if (!c->k_cache || !c->v_cache) {
            hive_ctx_free(c);
            return hive_errf(err, HIVE_ERR_NOMEM, "out of memory for a %d-position context over layers [%d, %d)",
                             n_ctx, first, last);
        }
    }
    *out = c;
    return HIVE_OK;
}

void hive_ctx_free(hive_ctx *c) {
    if (!c) return;
    kv_release(c->k_cache, c->kv_bytes, c->kv_mapped);
    kv_release(c->v_cache, c->kv_bytes, c->kv_mapped);
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

/* ---- micro-batch scratch (owned by the model, see fwd_cache) ---- */

/* One row of a micro-batch: a token of some sequence. */
struct fwd_row {
    hive_ctx *c;
    int pos;
    const int32_t *tok;  /* input token id, or NULL: */
    const float *hid;    /* input hidden state (n_embd,) */
    float *out;          /* hidden (n_embd,) or logits (n_vocab,); NULL: no output for this row */
};

struct fwd_scratch {
    float *x;            /* (UBATCH, n_embd) residual stream */
    float *xn;           /* (UBATCH, n_embd) normalized */
    float *tmp;          /* (UBATCH, n_embd) projection output */
    float *q;            /* (UBATCH, n_head*hd) */
    float *att;          /* (UBATCH, n_head*hd) attention output */
    float *k, *v;        /* (UBATCH, n_kv*hd) new K/V rows before they go to their caches */
    float *gate, *up;    /* (UBATCH, n_ff) */
    float *rope_cos;     /* (UBATCH, n_rot/2) */
    float *rope_sin;     /* (UBATCH, n_rot/2) */
    double *inv_freq;    /* (n_rot/2,) base^(-2i/n_rot) * freq_scale / factor_i */
    float *scores;       /* (n_threads, n_head/n_head_kv, stride) attention weights; grown on demand */
    size_t scores_cap;   /* floats */
    float *logits;       /* gathered logits rows when outputs are not contiguous; grown on demand */
    size_t logits_cap;   /* floats */
    struct fwd_row rows[UBATCH];
};

struct fwd_cache {
    pthread_mutex_t mu;
    struct fwd_scratch *idle; /* NULL while borrowed */
};

static void scratch_free(struct fwd_scratch *s) {
    if (!s) return;
    float *bufs[] = {s->x, s->xn, s->tmp, s->q, s->att, s->k, s->v, s->gate, s->up, s->rope_cos, s->rope_sin,
                     s->scores, s->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) hive_free_aligned(bufs[i]);
    free(s->inv_freq);
    free(s);
}

static struct fwd_scratch *scratch_new(const hive_model *m) {
    const struct hive_hparams *hp = &m->hp;
    size_t ub = UBATCH, d = (size_t)hp->n_embd, nq = (size_t)hp->n_head * (size_t)hp->head_dim;
    size_t nkv = (size_t)hp->n_head_kv * (size_t)hp->head_dim, half = (size_t)(hp->n_rot / 2);
    struct fwd_scratch *s = hive_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->x = hive_malloc_aligned(ub * d * sizeof(float));
    s->xn = hive_malloc_aligned(ub * d * sizeof(float));
    s->tmp = hive_malloc_aligned(ub * d * sizeof(float));
    s->q = hive_malloc_aligned(ub * nq * sizeof(float));
    s->att = hive_malloc_aligned(ub * nq * sizeof(float));
    s->k = hive_malloc_aligned(ub * nkv * sizeof(float));
    s->v = hive_malloc_aligned(ub * nkv * sizeof(float));
    s->gate = hive_malloc_aligned(ub * (size_t)hp->n_ff * sizeof(float));
    s->up = hive_malloc_aligned(ub * (size_t)hp->n_ff * sizeof(float));
    s->rope_cos = hive_malloc_aligned(ub * half * sizeof(float));
    s->rope_sin = hive_malloc_aligned(ub * half * sizeof(float));
    s->inv_freq = hive_malloc_array(half ? half : 1, sizeof(double));
    if (!s->x || !s->xn || !s->tmp || !s->q || !s->att || !s->k || !s->v || !s->gate || !s->up || !s->rope_cos ||
        !s->rope_sin || !s->inv_freq) {
        scratch_free(s);
        return NULL;
    }
    for (size_t i = 0; i < half; i++) {
        double f = pow((double)hp->rope_theta, -2.0 * (double)i / hp->n_rot) * (double)hp->rope_freq_scale;
        if (m->rope_factors) f /= (double)m->rope_factors[i];
        s->inv_freq[i] = f;
    }
    return s;
}

/* Makes sure *buf holds at least n floats (contents not kept). */
static int scratch_reserve(float **buf, size_t *cap, size_t n) {
    if (n <= *cap) return 0;
    float *p = hive_malloc_aligned(n * sizeof(float));
    if (!p) return -1;
    hive_free_aligned(*buf);
    *buf = p;
    *cap = n;
    return 0;
}

struct fwd_cache *fwd_cache_create(void) {
    struct fwd_cache *fc = hive_calloc(1, sizeof *fc);
    if (fc && pthread_mutex_init(&fc->mu, NULL)) {
        free(fc);
        return NULL;
    }
    return fc;
}

void fwd_cache_free(struct fwd_cache *fc) {
    if (!fc) return;
    scratch_free(fc->idle);
    pthread_mutex_destroy(&fc->mu);
    free(fc);
}

static struct fwd_scratch *scratch_borrow(const hive_model *m) {
    struct fwd_cache *fc = m->fwd_cache;
    pthread_mutex_lock(&fc->mu);
    struct fwd_scratch *s = fc->idle;
    fc->idle = NULL;
    pthread_mutex_unlock(&fc->mu);
    return s ? s : scratch_new(m);
}

static void scratch_return(const hive_model *m, struct fwd_scratch *s) {
    struct fwd_cache *fc = m->fwd_cache;
    pthread_mutex_lock(&fc->mu);
    if (!fc->idle) {
        fc->idle = s;
        s = NULL;
    }
    pthread_mutex_unlock(&fc->mu);
    scratch_free(s);
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
    const struct hive_hparams *hp;
    struct fwd_scratch *s;
    int n_rows;
    int layer;           /* il - first: the layer's block in every cache */
    size_t stride;       /* floats between the score rows of two query heads */
};

/* A head's K or V vector lies kv_row floats from the next position's, one
 * 4 KiB page holding a few positions: a stride the hardware prefetchers do
 * not follow across pages, and after a token's weights have streamed through
 * the caches every position comes from DRAM. So each step fetches the head
 * ATTN_PREFETCH_POS positions ahead. Measured, TinyLlama-shaped Q4_K_M, one
 * thread, decode of 160 after a 128-token prompt: attention 11.7% of the
 * samples against the matmuls without it, 6.5% with 6 or 12 positions
 * ahead. */
#define ATTN_PREFETCH_POS 8
static inline __attribute__((always_inline)) void prefetch_head(const float *p, int hd) {
    for (int i = 0; i < hd; i += 64 / (int)sizeof(float)) __builtin_prefetch(p + i, 0, 3);
}

/* One (row, kv head) pair per work item, covering the `group` query heads
 * that share that kv head, so each K/V row is read once for all of them:
 * att[r, h] = softmax(q_h k^T * scale) V over positions [0, pos_r] of row
 * r's own cache. The arithmetic for one (row, query head) is the same
 * whatever the grouping, the batch or the thread split. */
static inline __attribute__((always_inline)) void attn_items(void *arg, int ith, int nth) {
    const struct attn_job *job = arg;
    const struct hive_hparams *hp = job->hp;
    struct fwd_scratch *s = job->s;
    int hd = hp->head_dim, n_kv = hp->n_head_kv, group = hp->n_head / hp->n_head_kv;
    int64_t nq = (int64_t)hp->n_head * hd;
    size_t stride = job->stride;
    float scale = 1.0f / sqrtf((float)hd);
    float *scores = s->scores + (size_t)ith * (size_t)group * stride; /* (group, stride) */
    int64_t begin, end;
    hive_split_range((int64_t)job->n_rows * n_kv, ith, nth, &begin, &end);
    for (int64_t item = begin; item < end; item++) {
        int t = (int)(item / n_kv), kvh = (int)(item % n_kv);
        const hive_ctx *c = s->rows[t].c;
        size_t kv_row = (size_t)c->kv_row, layer_off = (size_t)job->layer * (size_t)c->n_ctx * kv_row;
        const float *k_layer = c->k_cache + layer_off, *v_layer = c->v_cache + layer_off;
        const float *q0 = s->q + (size_t)t * (size_t)nq + (size_t)kvh * (size_t)group * (size_t)hd;
        float *out0 = s->att + (size_t)t * (size_t)nq + (size_t)kvh * (size_t)group * (size_t)hd;
        int n_pos = s->rows[t].pos + 1;
        for (int j = 0; j < n_pos; j++) {
            const float *k = k_layer + (size_t)j * kv_row + (size_t)kvh * (size_t)hd;
            if (j + ATTN_PREFETCH_POS < n_pos) prefetch_head(k + ATTN_PREFETCH_POS * kv_row, hd);
            for (int g = 0; g < group; g++) scores[(size_t)g * stride + j] = dot_f32(q0 + g * hd, k, hd) * scale;
        }
        for (int g = 0; g < group; g++) {
            float *sc = scores + (size_t)g * stride;
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
            const float *v = v_layer + (size_t)j * kv_row + (size_t)kvh * (size_t)hd;
            if (j + ATTN_PREFETCH_POS < n_pos) prefetch_head(v + ATTN_PREFETCH_POS * kv_row, hd);
            for (int g = 0; g < group; g++) axpy(out0 + g * hd, scores[(size_t)g * stride + j], v, hd);
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

/* What a forward call runs: the shared model, range and pool of its items. */
struct fwd_run {
    const hive_model *m;
    int first, last;
    hive_pool *pool;
    struct fwd_scratch *s;
    size_t stride;       /* attention score stride: the largest position + 1 in the call */
};

static int matmul(const struct fwd_run *r, const struct model_matrix *w, const float *x, int n_tok, float *y,
                  char *err, const char *what) {
    int rc = hive_matmul(r->pool, w->type, w->data, w->n_rows, w->n_cols, x, n_tok, y);
    if (rc) return hive_errf(err, rc, "matmul %s (%s, %lld x %lld) failed: %s", what, hive_type_name(w->type),
                             (long long)w->n_rows, (long long)w->n_cols, hive_status_name(rc));
    return HIVE_OK;
}

/* ys[i] = x @ ws[i]^T for n matrices over the same x, in one pool round
 * (hive_matmul_many: the bytes of n matmul calls). Should that fail, the
 * matrices go one at a time, which names the one that fails. */
static int matmul_many(const struct fwd_run *r, int n, const struct model_matrix *const ws[], float *const ys[],
                       const float *x, int n_tok, char *err, const char *const whats[]) {
    hive_matmul_part parts[HIVE_MATMUL_MAX_PARTS];
    int together = n <= HIVE_MATMUL_MAX_PARTS;
    for (int i = 0; together && i < n; i++) {
        parts[i] = (hive_matmul_part){.wtype = ws[i]->type, .w = ws[i]->data, .n_rows = ws[i]->n_rows, .y = ys[i]};
        together = ws[i]->n_cols == ws[0]->n_cols;
    }
    if (together && hive_matmul_many(r->pool, parts, n, ws[0]->n_cols, x, n_tok) == HIVE_OK) return HIVE_OK;
    for (int i = 0; i < n; i++) {
        int rc = matmul(r, ws[i], x, n_tok, ys[i], err, whats[i]);
        if (rc) return rc;
    }
    return HIVE_OK;
}

static void add_bias(float *y, const float *b, int n_tok, int64_t n) {
    if (!b) return;
    for (int t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < n; i++) y[(size_t)t * (size_t)n + (size_t)i] += b[i];
}

/* q/k of n_tok rows with n_heads heads each: optional per-head norm, then
 * rope at each row's position. */
static void qk_heads(const struct fwd_run *r, float *v, int n_tok, int n_heads, const float *norm_w) {
    const struct hive_hparams *hp = &r->m->hp;
    int hd = hp->head_dim, half = hp->n_rot / 2;
    for (int t = 0; t < n_tok; t++) {
        for (int h = 0; h < n_heads; h++) {
            float *head = v + ((size_t)t * (size_t)n_heads + (size_t)h) * (size_t)hd;
            if (norm_w) rmsnorm(head, head, norm_w, hd, hp->rms_eps);
            rope_head(head, r->s->rope_cos + (size_t)t * half, r->s->rope_sin + (size_t)t * half, hp->n_rot,
                      hp->rope_neox);
        }
    }
}

/* gate = silu(gate) * up, element-wise, split across the pool from
 * SILU_PARALLEL_MIN elements on (one expf each: worth sharing out for
 * several rows; for one row a pool round costs more than it saves). The
 * same operations whichever thread runs them. */
#define SILU_PARALLEL_MIN (1 << 15)
struct silu_job {
    float *gate;
    const float *up;
    int64_t n;
};

static void silu_task(void *arg, int ith, int nth) {
    const struct silu_job *j = arg;
    int64_t begin, end;
    hive_split_range(j->n, ith, nth, &begin, &end);
    for (int64_t i = begin; i < end; i++) {
        float g = j->gate[i];
        j->gate[i] = g / (1.0f + expf(-g)) * j->up[i];
    }
}

static int run_layer(const struct fwd_run *r, int il, int n_tok, char *err) {
    const hive_model *m = r->m;
    const struct hive_hparams *hp = &m->hp;
    const struct model_layer *L = &m->layers[il - m->first];
    struct fwd_scratch *s = r->s;
    int64_t d = hp->n_embd, nq = (int64_t)hp->n_head * hp->head_dim, nkv = (int64_t)hp->n_head_kv * hp->head_dim;
    int rc;

    for (int t = 0; t < n_tok; t++) rmsnorm(s->xn + t * d, s->x + t * d, L->attn_norm, d, hp->rms_eps);
    const struct model_matrix *qkv[] = {&L->wq, &L->wk, &L->wv};
    float *const qkv_out[] = {s->q, s->k, s->v};
    const char *const qkv_names[] = {"attn_q", "attn_k", "attn_v"};
    if ((rc = matmul_many(r, 3, qkv, qkv_out, s->xn, n_tok, err, qkv_names))) return rc;
    add_bias(s->q, L->bq, n_tok, nq);
    add_bias(s->k, L->bk, n_tok, nkv);
    add_bias(s->v, L->bv, n_tok, nkv);
    qk_heads(r, s->q, n_tok, hp->n_head, L->q_norm);
    qk_heads(r, s->k, n_tok, hp->n_head_kv, L->k_norm);
    /* Every row's K/V goes into its own cache before attention runs: rows
     * of one sequence later in this micro-batch attend to earlier ones. */
    for (int t = 0; t < n_tok; t++) {
        const hive_ctx *c = s->rows[t].c;
        size_t off = ((size_t)(il - r->first) * (size_t)c->n_ctx + (size_t)s->rows[t].pos) * (size_t)nkv;
        memcpy(c->k_cache + off, s->k + (size_t)t * (size_t)nkv, (size_t)nkv * sizeof(float));
        memcpy(c->v_cache + off, s->v + (size_t)t * (size_t)nkv, (size_t)nkv * sizeof(float));
    }

    struct attn_job job = {.hp = hp, .s = s, .n_rows = n_tok, .layer = il - r->first, .stride = r->stride};
    hive_pool_run(r->pool, attn_task, &job);
    if ((rc = matmul(r, &L->wo, s->att, n_tok, s->tmp, err, "attn_output"))) return rc;
    for (int64_t i = 0; i < n_tok * d; i++) s->x[i] += s->tmp[i];

    for (int t = 0; t < n_tok; t++) rmsnorm(s->xn + t * d, s->x + t * d, L->ffn_norm, d, hp->rms_eps);
    const struct model_matrix *gate_up[] = {&L->gate, &L->up};
    float *const gate_up_out[] = {s->gate, s->up};
    const char *const gate_up_names[] = {"ffn_gate", "ffn_up"};
    if ((rc = matmul_many(r, 2, gate_up, gate_up_out, s->xn, n_tok, err, gate_up_names))) return rc;
    struct silu_job sj = {.gate = s->gate, .up = s->up, .n = (int64_t)n_tok * hp->n_ff};
    if (sj.n >= SILU_PARALLEL_MIN) hive_pool_run(r->pool, silu_task, &sj);
    else silu_task(&sj, 0, 1);
    if ((rc = matmul(r, &L->down, s->gate, n_tok, s->tmp, err, "ffn_down"))) return rc;
    for (int64_t i = 0; i < n_tok * d; i++) s->x[i] += s->tmp[i];
    return HIVE_OK;
}

/* Runs the n_tok <= UBATCH rows in r->s->rows through the range and writes
 * the output of every row that asks for one. */
static int run_ubatch(const struct fwd_run *r, int n_tok, char *err) {
    const hive_model *m = r->m;
    const struct hive_hparams *hp = &m->hp;
    struct fwd_scratch *s = r->s;
    int64_t d = hp->n_embd, n_vocab = hp->n_vocab;
    int half = hp->n_rot / 2;
    for (int t = 0; t < n_tok; t++) {
        const struct fwd_row *row = &s->rows[t];
        float *x = s->x + (size_t)t * (size_t)d;
        if (row->tok) hive_get_row(m->tok_embd.type, m->tok_embd.data, d, *row->tok, x);
        else memcpy(x, row->hid, (size_t)d * sizeof(float));
        for (int i = 0; i < half; i++) {
            double theta = (double)row->pos * s->inv_freq[i];
            s->rope_cos[t * half + i] = (float)cos(theta);
            s->rope_sin[t * half + i] = (float)sin(theta);
        }
    }
    for (int il = r->first; il < r->last; il++) {
        int rc = run_layer(r, il, n_tok, err);
        if (rc) return rc;
    }
    if (r->last < hp->n_layer) {
        for (int t = 0; t < n_tok; t++)
            if (s->rows[t].out) memcpy(s->rows[t].out, s->x + (size_t)t * (size_t)d, (size_t)d * sizeof(float));
        return HIVE_OK;
    }
    /* The output head over the rows that want logits, gathered (normalized)
     * into xn: one pass over the head's weights for all of them. */
    int n_out = 0, contiguous = 1;
    float *first_out = NULL;
    for (int t = 0; t < n_tok; t++) {
        float *o = s->rows[t].out;
        if (!o) continue;
        if (!n_out) first_out = o;
        else if ((uintptr_t)o != (uintptr_t)first_out + (size_t)n_out * (size_t)n_vocab * sizeof(float))
            contiguous = 0; /* (compared as addresses: other items' buffers are other objects) */
        rmsnorm(s->xn + (size_t)n_out * (size_t)d, s->x + (size_t)t * (size_t)d, m->output_norm, d, hp->rms_eps);
        n_out++;
    }
    if (!n_out) return HIVE_OK;
    if (contiguous) return matmul(r, &m->output, s->xn, n_out, first_out, err, "output");
    if (scratch_reserve(&s->logits, &s->logits_cap, (size_t)n_out * (size_t)n_vocab))
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory for %d rows of logits", n_out);
    int rc = matmul(r, &m->output, s->xn, n_out, s->logits, err, "output");
    if (rc) return rc;
    for (int t = 0, k = 0; t < n_tok; t++) {
        if (!s->rows[t].out) continue;
        memcpy(s->rows[t].out, s->logits + (size_t)k * (size_t)n_vocab, (size_t)n_vocab * sizeof(float));
        k++;
    }
    return HIVE_OK;
}

/* ---- the forward call: validation, rows, micro-batches ---- */

/* One sequence's share of a call. all_logits: every row of the last range
 * outputs logits (hive_forward); otherwise only the last row does. */
struct fwd_item {
    hive_ctx *c;
    const int32_t *tokens;
    const float *hidden;
    int n_tok, pos;
    float *out;
    int all_logits;
};

/* Checks item i (of a batch when `batch`) against the call's rules and
 * against items[0..i). */
static int check_item(const struct fwd_item *items, int i, int batch, char *err) {
    const struct fwd_item *it = &items[i];
    char who[48] = "";
    if (batch) snprintf(who, sizeof who, "batch item %d: ", i);
    const hive_ctx *c = it->c;
    if (!c) return hive_errf(err, HIVE_ERR_INVAL, "%sno context", who);
    const struct hive_hparams *hp = &c->m->hp;
    if (i > 0) {
        const hive_ctx *c0 = items[0].c;
        if (c->m != c0->m) return hive_errf(err, HIVE_ERR_INVAL, "%sits context is over another model than item 0's", who);
        if (c->first != c0->first || c->last != c0->last)
            return hive_errf(err, HIVE_ERR_INVAL, "%slayer range [%d, %d) differs from item 0's [%d, %d)", who,
                             c->first, c->last, c0->first, c0->last);
        if (c->pool != c0->pool)
            return hive_errf(err, HIVE_ERR_INVAL, "%sits context uses another thread pool than item 0's", who);
        for (int j = 0; j < i; j++)
            if (items[j].c == c)
                return hive_errf(err, HIVE_ERR_INVAL, "%sthe same context as item %d (one sequence per item)", who, j);
    }
    if (it->n_tok < (batch ? 1 : 0) || it->pos < 0)
        return hive_errf(err, HIVE_ERR_INVAL, "%s%s", who,
                         it->pos < 0 ? "negative position" : batch ? "no tokens (n_tok must be >= 1)" : "negative token count");
    /* Token ids only make sense at layer 0; hidden states are accepted there
     * too (after an embedding-only stage [0, 0)). */
    int use_tokens = c->first == 0 && it->tokens;
    if (!use_tokens && !it->hidden)
        return hive_errf(err, HIVE_ERR_INVAL, "%slayer range [%d, %d) needs %s as input", who, c->first, c->last,
                         c->first == 0 ? "token ids" : "hidden states");
    if (it->tokens && c->first != 0)
        return hive_errf(err, HIVE_ERR_INVAL, "%slayer range [%d, %d) takes hidden states, not token ids", who,
                         c->first, c->last);
    if (!it->out) return hive_errf(err, HIVE_ERR_INVAL, "%sno output buffer", who);
    if ((int64_t)it->pos + it->n_tok > c->n_ctx)
        return hive_errf(err, HIVE_ERR_INVAL, "%scontext full: positions %d..%d exceed the context of %d", who,
                         it->pos, it->pos + it->n_tok - 1, c->n_ctx);
    if (it->pos > c->n_filled)
        return hive_errf(err, HIVE_ERR_INVAL, "%sposition %d leaves a gap: only %d positions are cached", who,
                         it->pos, c->n_filled);
    if (use_tokens) {
        for (int t = 0; t < it->n_tok; t++)
            if (it->tokens[t] < 0 || it->tokens[t] >= hp->n_vocab)
                return hive_errf(err, HIVE_ERR_INVAL, "%stoken id %d out of range [0, %d)", who, it->tokens[t],
                                 hp->n_vocab);
    }
    return HIVE_OK;
}

static int forward_items(struct fwd_item *items, int n_items, int batch, char *err) {
    for (int i = 0; i < n_items; i++) {
        int rc = check_item(items, i, batch, err);
        if (rc) return rc;
    }
    const hive_ctx *c0 = items[0].c;
    const struct hive_hparams *hp = &c0->m->hp;
    struct fwd_run r = {.m = c0->m, .first = c0->first, .last = c0->last, .pool = c0->pool};
    int max_pos = 1;
    for (int i = 0; i < n_items; i++)
        if (items[i].pos + items[i].n_tok > max_pos) max_pos = items[i].pos + items[i].n_tok;
    r.stride = (size_t)max_pos;
    r.s = scratch_borrow(r.m);
    size_t n_scores = (size_t)hive_pool_size(r.pool) * (size_t)(hp->n_head / hp->n_head_kv) * r.stride;
    if (!r.s || (r.first < r.last && scratch_reserve(&r.s->scores, &r.s->scores_cap, n_scores))) {
        if (r.s) scratch_return(r.m, r.s);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory for the forward pass scratch");
    }
    /* Positions from pos on are being rewritten: anything cached after them
     * was computed from the old contents. */
    for (int i = 0; i < n_items; i++) items[i].c->n_filled = items[i].pos;

    int is_last = r.last == hp->n_layer, n = 0, rc = HIVE_OK;
    size_t d = (size_t)hp->n_embd, n_vocab = (size_t)hp->n_vocab;
    for (int i = 0; i < n_items && !rc; i++) {
        const struct fwd_item *it = &items[i];
        int use_tokens = it->c->first == 0 && it->tokens;
        for (int t = 0; t < it->n_tok && !rc; t++) {
            struct fwd_row *row = &r.s->rows[n++];
            row->c = it->c;
            row->pos = it->pos + t;
            row->tok = use_tokens ? it->tokens + t : NULL;
            row->hid = use_tokens ? NULL : it->hidden + (size_t)t * d;
            if (!is_last) row->out = it->out + (size_t)t * d;
            else if (it->all_logits) row->out = it->out + (size_t)t * n_vocab;
            else row->out = t == it->n_tok - 1 ? it->out : NULL;
            if (n == UBATCH) {
                rc = run_ubatch(&r, n, err);
                n = 0;
            }
        }
    }
    if (!rc && n) rc = run_ubatch(&r, n, err);
    scratch_return(r.m, r.s);
    if (rc) return rc; /* caches stay at pos: what they held before, less the rewritten positions */
    for (int i = 0; i < n_items; i++) items[i].c->n_filled = items[i].pos + items[i].n_tok;
    return HIVE_OK;
}

int hive_forward(hive_ctx *c, const int32_t *tokens, const float *hidden, int n_tok, int pos, float *out,
                 int all_logits, char *err) {
    if (n_tok < 0 || pos < 0) return hive_errf(err, HIVE_ERR_INVAL, "negative token count or position");
    if (n_tok == 0) return HIVE_OK;
    struct fwd_item it = {.c = c, .tokens = tokens, .hidden = hidden, .n_tok = n_tok, .pos = pos, .out = out,
                          .all_logits = all_logits};
    return forward_items(&it, 1, 0, err);
}

int hive_forward_batch(struct hive_batch_item *items, int n_items, char *err) {
    if (n_items < 1 || !items) return hive_errf(err, HIVE_ERR_INVAL, "batch of %d items: need at least one", n_items);
    struct fwd_item stack[16], *its = n_items <= 16 ? stack : hive_malloc_array((size_t)n_items, sizeof *its);
    if (!its) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory for a batch of %d items", n_items);
    for (int i = 0; i < n_items; i++)
        its[i] = (struct fwd_item){.c = items[i].ctx, .tokens = items[i].tokens, .hidden = items[i].hidden,
                                   .n_tok = items[i].n_tok, .pos = items[i].pos, .out = items[i].out,
                                   .all_logits = items[i].all_logits};
    int rc = forward_items(its, n_items, 1, err);
    if (its != stack) free(its);
    return rc;
}
