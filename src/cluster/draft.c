/* draft.c - drafts for speculative decoding: prompt lookup and a draft
 * model on the head (see draft.h). */
#include "draft.h"

#include <stdlib.h>
#include <string.h>

#include "hive/core.h"

/* ---- prompt lookup ---- */

#define NGRAM_MAX 8 /* context compared, at most */

/* The earlier place whose preceding tokens match the end of the log the
 * longest (the latest among equals: recent text predicts best), and what
 * followed it there. */
int draft_ngram_propose(const int32_t *log, int n_log, int k, int32_t *out) {
    int best_at = -1, best_len = 0;
    int32_t last = log[n_log - 1];
    for (int at = n_log - 2; at >= 0; at--) { /* log[at] matches the last token; log[at + 1] is proposed */
        if (log[at] != last) continue;
        int len = 1;
        while (len < NGRAM_MAX && at - len >= 0 && log[at - len] == log[n_log - 1 - len]) len++;
        if (len > best_len) best_len = len, best_at = at;
        if (len == NGRAM_MAX) break;
    }
    if (best_at < 0) return 0;
    int m = 0;
    while (m < k && best_at + 1 + m < n_log) {
        out[m] = log[best_at + 1 + m];
        m++;
    }
    return m;
}

/* ---- the draft model ---- */

struct draft_model {
    hive_model *model;
    hive_pool *pool;
    int n_ctx, n_vocab;
    float *logits; /* n_vocab */
};

/* The two vocabularies must be the same token for token: a draft token id
 * means the same text to the target. */
static int check_vocab(const hive_gguf *target, const hive_gguf *draft, int n_target, int n_draft, char *err) {
    if (n_target != n_draft)
        return hive_errf(err, HIVE_ERR_INVAL, "the draft model's vocabulary has %d tokens, the model's %d: a draft "
                                              "must share the model's vocabulary",
                         n_draft, n_target);
    const struct hive_str *a, *b;
    uint64_t na, nb;
    int ha = hive_gguf_get_str_array(target, "tokenizer.ggml.tokens", &a, &na) == HIVE_OK;
    int hb = hive_gguf_get_str_array(draft, "tokenizer.ggml.tokens", &b, &nb) == HIVE_OK;
    if (!ha || !hb) return HIVE_OK; /* no token texts to compare (synthetic models): the sizes agree */
    if (na != nb)
        return hive_errf(err, HIVE_ERR_INVAL, "the draft model lists %llu tokens, the model %llu",
                         (unsigned long long)nb, (unsigned long long)na);
    for (uint64_t i = 0; i < na; i++) {
        if (a[i].len == b[i].len && memcmp(a[i].ptr, b[i].ptr, a[i].len) == 0) continue;
        return hive_errf(err, HIVE_ERR_INVAL,
                         "the draft model's vocabulary differs from the model's at token %llu (\"%.*s\" against "
                         "\"%.*s\"): a draft must share the model's vocabulary",
                         (unsigned long long)i, (int)(b[i].len > 40 ? 40 : b[i].len), b[i].ptr,
                         (int)(a[i].len > 40 ? 40 : a[i].len), a[i].ptr);
    }
    return HIVE_OK;
}

int draft_model_open(draft_model **out, const char *path, const hive_gguf *target, int n_ctx, int n_threads,
                     char *err) {
    *out = NULL;
    draft_model *d = hive_calloc(1, sizeof *d);
    if (!d) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    struct hive_model_opts mo = hive_model_default_opts();
    char e2[HIVE_ERR_LEN];
    int rc = hive_model_load(&d->model, path, &mo, e2);
    if (rc) {
        hive_errf(err, rc, "draft model %s: %s", path, e2);
        goto fail;
    }
    struct hive_hparams thp;
    if ((rc = hive_model_read_hparams(target, &thp, err))) goto fail;
    const struct hive_hparams *hp = hive_model_hparams(d->model);
    if ((rc = check_vocab(target, hive_model_gguf(d->model), thp.n_vocab, hp->n_vocab, err))) goto fail;
    d->n_ctx = n_ctx;
    d->n_vocab = hp->n_vocab;
    d->pool = hive_pool_create(n_threads > 0 ? n_threads : 1);
    d->logits = hive_malloc_array((size_t)d->n_vocab, sizeof *d->logits);
    if (!d->pool || !d->logits) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory for the draft model");
        goto fail;
    }
    *out = d;
    return HIVE_OK;
fail:
    draft_model_close(d);
    return rc;
}

void draft_model_close(draft_model *d) {
    if (!d) return;
    hive_pool_free(d->pool);
    hive_model_free(d->model);
    free(d->logits);
    free(d);
}

void draft_seq_free(struct draft_seq *q) {
    hive_ctx_free(q->ctx);
    free(q->fed);
    memset(q, 0, sizeof *q);
}

static int32_t argmax(const float *v, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Runs tokens [from, from + n) of fed through the draft model; logits of the
 * last one land in d->logits. */
static int feed(draft_model *d, struct draft_seq *q, int from, int n) {
    char err[HIVE_ERR_LEN];
    return hive_forward(q->ctx, q->fed + from, NULL, n, from, d->logits, 0, err);
}

static int fed_reserve(struct draft_seq *q, int need) {
    if (need <= q->cap_fed) return 0;
    int cap = q->cap_fed ? q->cap_fed : 64;
    while (cap < need) cap *= 2;
    int32_t *p = realloc(q->fed, (size_t)cap * sizeof *p);
    if (!p) return -1;
    q->fed = p;
    q->cap_fed = cap;
    return 0;
}

int draft_model_propose(draft_model *d, struct draft_seq *q, const int32_t *log, int n_log, int k, int32_t *out) {
    if (k < 1 || n_log < 1) return 0;
    if (n_log + k - 1 > d->n_ctx) k = d->n_ctx - n_log + 1;
    if (k < 1) return 0;
    char err[HIVE_ERR_LEN];
    if (!q->ctx && hive_ctx_create(&q->ctx, d->model, 0, hive_model_hparams(d->model)->n_layer, d->n_ctx, d->pool, err))
        return 0;
    /* What the cache holds that is still the sequence (a rejected draft's
     * tail is not), less at least the last token, whose logits we need. */
    int keep = 0;
    while (keep < q->n_fed && keep < n_log && q->fed[keep] == log[keep]) keep++;
    if (keep > n_log - 1) keep = n_log - 1;
    if (fed_reserve(q, n_log + k)) return 0;
    memcpy(q->fed + keep, log + keep, (size_t)(n_log - keep) * sizeof *log);
    q->n_fed = keep;
    if (feed(d, q, keep, n_log - keep)) return 0;
    q->n_fed = n_log;
    int m = 0;
    for (;;) {
        out[m] = argmax(d->logits, d->n_vocab);
        if (++m == k) break;
        q->fed[q->n_fed] = out[m - 1];
        if (feed(d, q, q->n_fed, 1)) break;
        q->n_fed++;
    }
    return m;
}

/* ---- how many tokens to draft ---- */

#define TUNER_DECAY 0.98 /* weight of the older decode steps in the fit */
#define TUNER_MIN_STEPS 8

void draft_tuner_pass(struct draft_tuner *t, uint32_t rows, double ms) {
    double x = rows;
    t->w = TUNER_DECAY * t->w + 1;
    t->x = TUNER_DECAY * t->x + x;
    t->y = TUNER_DECAY * t->y + ms;
    t->xx = TUNER_DECAY * t->xx + x * x;
    t->xy = TUNER_DECAY * t->xy + x * ms;
}

void draft_tuner_drafted(struct draft_tuner *t, double ms, int k) {
    if (k < 1) return;
    double per_tok = ms / k;
    t->ms_per_tok = t->ms_per_tok > 0 ? 0.8 * t->ms_per_tok + 0.2 * per_tok : per_tok;
}

/* What a drafted row and drafting a token cost, relative to a one-row pass. */
static void tuner_costs(const struct draft_tuner *t, double *row, double *drafting) {
    *row = DRAFT_ROW_COST, *drafting = 0;
    if (t->w < TUNER_MIN_STEPS) return;
    double mx = t->x / t->w, my = t->y / t->w;
    double var = t->xx / t->w - mx * mx, cov = t->xy / t->w - mx * my;
    double one = my / (1.0 + DRAFT_ROW_COST * (mx - 1.0)); /* a one-row pass, with the prior row cost */
    if (var >= 0.25) { /* the rows varied enough to fit */
        double b = cov / var, a = my - b * mx;
        if (b < 0) b = 0;
        if (a < 0) a = 0;
        if (a + b > 0) one = a + b, *row = b / one;
    }
    if (one > 0) *drafting = t->ms_per_tok / one;
}

int draft_tuner_k(const struct draft_tuner *t, double acc_num, double acc_den, int k_max) {
    double a = acc_den > 0 ? acc_num / acc_den : 0.5, row, drafting;
    if (a > 0.99) a = 0.99;
    tuner_costs(t, &row, &drafting);
    int best = 0;
    double best_v = 1, expect = 1, ak = 1;
    for (int k = 1; k <= k_max; k++) {
        ak *= a;
        expect += ak; /* 1 + a + ... + a^k */
        double v = expect / (1.0 + (row + drafting) * k);
        if (v > best_v + 1e-9) best_v = v, best = k;
    }
    return best;
}
