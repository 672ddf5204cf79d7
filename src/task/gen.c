/* gen.c - one model call of a job on a scheduler (see gen.h). */
#include "gen.h"

#include <stdlib.h>
#include <string.h>

#include "hive/core.h"

/* Tokenizes into a malloc'd array; the count, or -1. */
static int tokenize(const hive_tokenizer *t, const char *text, int parse_special, int32_t **out) {
    size_t len = strlen(text);
    int cap = (int)(len < (1u << 24) ? len : (1u << 24)) + 8;
    int32_t *ids = hive_malloc_array((size_t)cap, sizeof *ids);
    int n = ids ? hive_tokenize(t, text, len, 1, parse_special, ids, cap) : -1;
    if (n > cap || n < 0) {
        free(ids);
        return -1;
    }
    *out = ids;
    return n;
}

struct text_buf {
    char *p;
    size_t len, cap;
};

static int text_append(struct text_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

/* Each node's work for the call: the token rows it ran times the layers it
 * holds. (The scheduler's per-node counters are bumped when a step's
 * timing comes back, which can be after the sequence has its last token,
 * and they mix every sequence of the replica; the rows of this call are
 * exact.) A replica that re-planned during the call is counted by its
 * stages at the end. */
static void count_work(const struct hive_sched_node *nodes, int n_nodes, int rows, struct gen_result *out) {
    out->n_work = 0;
    out->layer_passes = 0;
    for (int a = 0; a < n_nodes && out->n_work < GEN_MAX_NODES; a++) {
        int layers = nodes[a].last - nodes[a].first;
        if (nodes[a].stage < 0 || layers <= 0 || rows <= 0) continue;
        int k = out->n_work++;
        snprintf(out->names[k], sizeof out->names[k], "%s", nodes[a].name);
        out->work[k] = (struct hive_ledger_work){out->names[k], (uint64_t)rows, (uint64_t)rows * (uint64_t)layers};
        out->layer_passes += out->work[k].layer_passes;
    }
}

int gen_run(hive_sched *s, const hive_tokenizer *tok, const struct gen_request *rq, struct gen_result *out, char *err) {
    memset(out, 0, sizeof *out);
    int32_t *ids = NULL;
    int n = tokenize(tok, rq->prompt, rq->templated, &ids);
    if (n < 1) return hive_errf(err, HIVE_ERR_INVAL, "cannot tokenize the prompt");
    struct hive_seq_params sp = {.prompt = ids, .n_prompt = n, .max_tokens = rq->max_tokens, .sampling = rq->sp,
                                 .penalize_prompt = 1};
    hive_seq *q = NULL;
    int rc = hive_sched_submit(s, &sp, &q, err);
    free(ids);
    if (rc) return rc;
    struct text_buf text = {0};
    const char *why = NULL;
    for (;;) {
        int32_t id;
        int got = hive_seq_next(q, &id, 100);
        if (got == 1) {
            if (hive_tokenizer_is_eog(tok, id)) break; /* release cancels the rest */
            char piece[256];
            int len = hive_token_to_piece(tok, id, 0, piece, sizeof piece);
            if (len > (int)sizeof piece) len = (int)sizeof piece;
            if (len > 0 && text_append(&text, piece, (size_t)len)) why = "out of memory";
        } else if (got == 0) {
            if (hive_seq_finish(q) == HIVE_FINISH_ERROR) why = hive_seq_error(q);
            break;
        }
        if (!why && rq->deadline_ms > 0 && hive_now_ms() > rq->deadline_ms) why = "deadline passed";
        if (!why && rq->stop) why = rq->stop(rq->stop_arg);
        if (why) break;
    }
    hive_seq_usage(q, &out->n_prompt, &out->n_gen);
    if (why) rc = hive_errf(err, HIVE_ERR_IO, "%s", why);
    hive_seq_release(q);
    if (rc) {
        free(text.p);
        return rc;
    }
    /* Node records are large (~700 bytes each): on the heap. */
    struct hive_sched_node *nodes = hive_calloc(GEN_MAX_NODES, sizeof *nodes);
    int n_nodes = nodes ? hive_sched_get_nodes(s, nodes, GEN_MAX_NODES) : 0;
    int rows = out->n_prompt + (out->n_gen > 0 ? out->n_gen - 1 : 0); /* the last token is sampled, never run */
    count_work(nodes, n_nodes < GEN_MAX_NODES ? n_nodes : GEN_MAX_NODES, rows, out);
    free(nodes);
    out->text = text.p ? text.p : strdup("");
    if (!out->text) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    return 0;
}

void gen_result_free(struct gen_result *r) {
    free(r->text);
    r->text = NULL;
}
