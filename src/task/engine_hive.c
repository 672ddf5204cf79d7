/* engine_hive.c - a worker's own hive engine: an in-process scheduler over
 * the model, max_seqs sequences at once (the worker's slots, each calling
 * run from its own thread; the scheduler batches them), see engine.h. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "gen.h"
#include "hive/core.h"
#include "hive/gguf.h"
#include "hive/sched.h"
#include "hive/tokenizer.h"

struct engine_hive {
    engine e;
    hive_gguf *gguf;
    hive_tokenizer *tok;
    hive_sched *sched;
};

static int hive_run(engine *e, const struct wire_task *t, struct engine_answer *a, char *err) {
    struct engine_hive *h = (struct engine_hive *)e;
    struct gen_request rq = {.prompt = t->prompt, .templated = t->templated, .max_tokens = (int)t->max_tokens,
                             .sp = t->sp};
    struct gen_result r;
    int rc = gen_run(h->sched, h->tok, &rq, &r, err);
    if (rc) return rc;
    *a = (struct engine_answer){r.text, r.n_prompt, r.n_gen, r.layer_passes};
    return 0;
}

static void hive_close(engine *e) {
    struct engine_hive *h = (struct engine_hive *)e;
    if (!h) return;
    hive_sched_close(h->sched);
    hive_tokenizer_free(h->tok);
    hive_gguf_close(h->gguf);
    free(h);
}

int engine_hive_open(engine **out, const char *model_path, int n_threads, int max_seqs, char *err) {
    *out = NULL;
    struct engine_hive *h = hive_calloc(1, sizeof *h);
    if (!h) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    h->e = (engine){hive_run, hive_close};
    int rc = hive_gguf_open(&h->gguf, model_path, err);
    if (!rc) rc = hive_tokenizer_load(&h->tok, h->gguf, err);
    if (!rc) {
        struct hive_sched_opts so;
        memset(&so, 0, sizeof so);
        so.model_path = model_path;
        so.local_layers = 1;
        hive_key_generate(so.key); /* only the in-process node hears it */
        so.max_seqs = max_seqs > 0 ? max_seqs : 1;
        so.n_threads = n_threads;
        rc = hive_sched_open(&h->sched, &so, err);
    }
    if (rc) {
        hive_close(&h->e);
        return rc;
    }
    *out = &h->e;
    return 0;
}
