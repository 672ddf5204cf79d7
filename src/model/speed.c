/* speed.c - times a model's prompt processing and decode on this machine:
 * what `hive bench` and bench/bench_engine report. Token ids are synthetic
 * (any vocab works); decode is greedy and uses the KV cache like generation. */
#include <stdlib.h>
#include <string.h>

#include "hive/model.h"

static int32_t argmax(const float *v, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

#define SPEED_MAX_REPS 32

int hive_model_measure_speed(const char *path, const struct hive_speed_opts *o, struct hive_speed *out, char *err) {
    struct hive_speed_opts opt = *o;
    if (opt.n_threads <= 0) opt.n_threads = 1;
    if (opt.n_prompt <= 0) opt.n_prompt = 128;
    if (opt.n_decode <= 0) opt.n_decode = 64;
    if (opt.reps <= 0) opt.reps = 5;
    if (opt.reps > SPEED_MAX_REPS) return hive_errf(err, HIVE_ERR_INVAL, "at most %d runs", SPEED_MAX_REPS);
    memset(out, 0, sizeof *out);

    struct hive_model_opts mo = hive_model_default_opts();
    mo.copy_weights = opt.copy_weights;
    hive_model *m = NULL;
    hive_pool *pool = NULL;
    hive_ctx *c = NULL;
    float *logits = NULL;
    int32_t *prompt = NULL;
    double t0 = hive_now_ms();
    int rc = hive_model_load(&m, path, &mo, err);
    if (rc) return rc;
    out->load_ms = hive_now_ms() - t0;
    const struct hive_hparams *hp = hive_model_hparams(m);
    out->n_layer = hp->n_layer;
    out->bytes_per_token = hive_model_stage_bytes(hive_model_gguf(m), 0, hp->n_layer);

    pool = hive_pool_create(opt.n_threads);
    if (!pool) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "cannot start %d threads", opt.n_threads);
        goto out;
    }
    int n_ctx = opt.n_prompt + opt.n_decode;
    rc = hive_ctx_create(&c, m, 0, hp->n_layer, n_ctx, pool, err);
    if (rc) goto out;
    logits = malloc((size_t)hive_forward_out_floats(c, opt.n_prompt, 0) * sizeof *logits);
    prompt = malloc((size_t)opt.n_prompt * sizeof *prompt);
    if (!logits || !prompt) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* spread over the vocab, avoiding id 0 (often <unk>) */
    for (int i = 0; i < opt.n_prompt; i++)
        prompt[i] = hp->n_vocab > 1 ? 1 + (int32_t)(((uint32_t)i * 7919u) % (uint32_t)(hp->n_vocab - 1)) : 0;

    double pp[SPEED_MAX_REPS], tg[SPEED_MAX_REPS];
    for (int rep = 0; rep < opt.reps && !rc; rep++) {
        hive_ctx_truncate(c, 0);
        double t1 = hive_now_ms();
        rc = hive_forward(c, prompt, NULL, opt.n_prompt, 0, logits, 0, err);
        double t2 = hive_now_ms();
        pp[rep] = opt.n_prompt / ((t2 - t1) / 1e3);
        int32_t tok = argmax(logits, hp->n_vocab);
        for (int i = 0; i < opt.n_decode && !rc; i++) {
            rc = hive_forward(c, &tok, NULL, 1, opt.n_prompt + i, logits, 0, err);
            tok = argmax(logits, hp->n_vocab);
        }
        tg[rep] = opt.n_decode / ((hive_now_ms() - t2) / 1e3);
        if (opt.progress && !rc) opt.progress(opt.progress_ctx, rep + 1, opt.reps);
    }
    if (!rc) {
        out->prefill_tps = hive_median(pp, opt.reps);
        out->decode_tps = hive_median(tg, opt.reps);
    }
out:
    free(prompt);
    free(logits);
    hive_ctx_free(c);
    hive_pool_free(pool);
    hive_model_free(m);
    return rc;
}
