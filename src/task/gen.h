/* gen.h - one model call of a job on a scheduler: tokenize, generate until
 * an end-of-generation token or max_tokens, collect the text, and count
 * what each node computed for it (token rows x layers held) (internal to src/task; used by the queen's
 * replica runners and by a worker's own engine). */
#ifndef HIVE_TASK_GEN_H
#define HIVE_TASK_GEN_H

#include <stdint.h>

#include "hive/ledger.h"
#include "hive/sample.h"
#include "hive/sched.h"
#include "hive/tokenizer.h"

#define GEN_MAX_NODES 64

struct gen_request {
    const char *prompt;
    int templated;        /* tokenize the template's special tokens */
    int max_tokens;
    struct hive_sampler_params sp;
    double deadline_ms;   /* hive_now_ms() time; 0: none */
    /* Polled every 100 ms: a reason to stop, or NULL to go on. */
    const char *(*stop)(void *arg);
    void *stop_arg;
};

struct gen_result {
    char *text;           /* malloc'd */
    int n_prompt, n_gen;
    int n_work;
    struct hive_ledger_work work[GEN_MAX_NODES]; /* node names point into names */
    char names[GEN_MAX_NODES][64];
    uint64_t layer_passes; /* summed over work */
};

/* 0 with *out filled (free with gen_result_free); HIVE_ERR_INVAL when the
 * prompt is bad (empty, too long: no retry helps), another code when the
 * call failed (the ring, the deadline, stop) with the reason in err. */
int gen_run(hive_sched *s, const hive_tokenizer *tok, const struct gen_request *rq, struct gen_result *out, char *err);
void gen_result_free(struct gen_result *r);

#endif
