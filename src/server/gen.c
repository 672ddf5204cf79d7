/* gen.c - one generation for one request: submits the prompt, pulls the
 * tokens, turns them into releasable text (stop.c) and decides the finish
 * reason:
 *   "stop"    an end-of-generation token (not part of the text) or a stop string
 *   "length"  max_tokens, or the context is full
 * A finished generation releases its sequence at once, so a stop string
 * or EOS frees the slot on every stage without waiting for the client. */
#include <stdio.h>
#include <string.h>

#include "srv.h"

int srv_gen_start(struct srv_gen *g, const struct srv_backend *be, const hive_tokenizer *tok, const int32_t *prompt,
                  int n_prompt, int max_tokens, const struct hive_sampler_params *sp, const char *const *stops,
                  int n_stops, struct srv_error *e) {
    memset(g, 0, sizeof *g);
    g->be = be;
    g->tok = tok;
    g->n_prompt = n_prompt;
    if (srv_stop_init(&g->stop, stops, n_stops)) return srv_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    struct hive_seq_params p = {
        .prompt = prompt,
        .n_prompt = n_prompt,
        .max_tokens = max_tokens,
        .sampling = *sp,
        .penalize_prompt = 1,
    };
    char err[HIVE_ERR_LEN] = "";
    int rc = be->submit(be->ctx, &p, &g->seq, err);
    if (rc == HIVE_OK) return 0;
    srv_stop_free(&g->stop);
    g->seq = NULL;
    if (rc == HIVE_ERR_BUSY)
        return srv_errorf(e, 429, "rate_limit_error", NULL, "rate_limit_exceeded",
                          "the server is busy (queue full): retry later (%s)", err);
    if (rc == HIVE_ERR_INVAL)
        return srv_errorf(e, 400, "invalid_request_error", "messages", "context_length_exceeded", "%s", err);
    return srv_errorf(e, 500, "server_error", NULL, NULL, "cannot start the sequence: %s", err);
}

static void release(struct srv_gen *g) {
    if (g->active) srv_obs_finish(g->obs, g); /* before the handle goes: it reads the ttft */
    if (g->seq && g->be->done && g->be->ledger) g->be->done(g->be->ledger, g->seq);
    if (g->seq) g->be->release(g->seq);
    g->seq = NULL;
}

static int finish(struct srv_gen *g, int why, struct srv_buf *out) {
    if (why != SRV_FINISH_ERROR) srv_stop_flush(&g->stop, out);
    g->finish = why;
    release(g);
    return 1;
}

int srv_gen_step(struct srv_gen *g, struct srv_buf *out, int timeout_ms) {
    if (g->finish) return 1;
    if (!g->seq) { /* cannot happen: a started generation holds its sequence until it finishes */
        snprintf(g->error, sizeof g->error, "no sequence");
        return finish(g, SRV_FINISH_ERROR, out);
    }
    int32_t tok;
    int rc = g->be->next(g->seq, &tok, timeout_ms);
    if (rc == -HIVE_ERR_TIMEOUT) return 0;
    if (rc == 1) {
        g->n_gen++;
        if (g->active) srv_obs_token(g->obs, g->active);
        if (hive_tokenizer_is_eog(g->tok, tok)) return finish(g, SRV_FINISH_STOP, out);
        char piece[256];
        int len = hive_token_to_piece(g->tok, tok, 0, piece, sizeof piece);
        if (len > (int)sizeof piece) len = (int)sizeof piece;
        if (len < 0) len = 0;
        int s = srv_stop_feed(&g->stop, piece, (size_t)len, out);
        if (s < 0) {
            snprintf(g->error, sizeof g->error, "out of memory");
            return finish(g, SRV_FINISH_ERROR, out);
        }
        if (s == 1) return finish(g, SRV_FINISH_STOP, out);
        return 0;
    }
    if (rc == 0) {
        switch (g->be->finish(g->seq)) {
        case HIVE_FINISH_LENGTH:
        case HIVE_FINISH_CONTEXT:
            return finish(g, SRV_FINISH_LENGTH, out);
        case HIVE_FINISH_ERROR:
            snprintf(g->error, sizeof g->error, "%s", g->be->error(g->seq));
            return finish(g, SRV_FINISH_ERROR, out);
        default:
            snprintf(g->error, sizeof g->error, "the sequence was cancelled");
            return finish(g, SRV_FINISH_ERROR, out);
        }
    }
    snprintf(g->error, sizeof g->error, "the scheduler failed (%d)", rc);
    return finish(g, SRV_FINISH_ERROR, out);
}

void srv_gen_end(struct srv_gen *g) {
    release(g);
    srv_stop_free(&g->stop);
}
