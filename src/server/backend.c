/* backend.c - struct srv_backend over the real scheduler (sched.h). */
#include "srv.h"


static int be_submit(void *ctx, const struct hive_seq_params *p, void **seq, char *err) {
    hive_seq *q = NULL;
    int rc = hive_sched_submit(ctx, p, &q, err);
    *seq = q;
    return rc;
}

static int be_next(void *seq, int32_t *token, int timeout_ms) { return hive_seq_next(seq, token, timeout_ms); }
static int be_finish(void *seq) { return (int)hive_seq_finish(seq); }
static const char *be_error(void *seq) { return hive_seq_error(seq); }
static void be_release(void *seq) { hive_seq_release(seq); }
static void be_stats(void *ctx, struct hive_sched_stats *st) { hive_sched_get_stats(ctx, st); }

void srv_backend_sched(struct srv_backend *be, hive_sched *s) {
    *be = (struct srv_backend){
        .ctx = s,
        .submit = be_submit,
        .next = be_next,
        .finish = be_finish,
        .error = be_error,
        .release = be_release,
        .stats = be_stats,
        .n_ctx = hive_sched_n_ctx(s),
    };
}

int hive_server_start(hive_server **out, hive_sched *sched, const hive_tokenizer *tok, int chat_template,
                      const struct hive_server_opts *o, char *err) {
    struct srv_backend be;
    srv_backend_sched(&be, sched);
    return srv_start(out, &be, tok, chat_template, o, err);
}
