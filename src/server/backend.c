/* backend.c - struct srv_backend over the real scheduler (sched.h), or
 * over replicas (fleet.h): the same calls, requests to the least loaded. */
#include <sodium.h>

#include "hive/fleet.h"
#include "hive/ledger.h"
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
static int be_nodes(void *ctx, struct hive_sched_node *out, int cap) { return hive_sched_get_nodes(ctx, out, cap); }
static void be_usage(void *seq, int *n_prompt, int *n_gen) { hive_seq_usage(seq, n_prompt, n_gen); }
static double be_ttft_ms(void *seq) { return hive_seq_ttft_ms(seq); }

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

void srv_backend_sched_more(struct srv_backend_more *m) {
    *m = (struct srv_backend_more){.nodes = be_nodes, .usage = be_usage, .ttft_ms = be_ttft_ms};
}

int hive_server_start(hive_server **out, hive_sched *sched, const hive_tokenizer *tok, int chat_template,
                      const struct hive_server_opts *o, char *err) {
    struct srv_backend be;
    struct srv_backend_more more;
    srv_backend_sched(&be, sched);
    srv_backend_sched_more(&more);
    return srv_start_ex(out, &be, &more, tok, chat_template, o, err);
}

static int fleet_submit(void *ctx, const struct hive_seq_params *p, void **seq, char *err) {
    hive_fleet_seq *q = NULL;
    int rc = hive_fleet_seq_submit(ctx, p, &q, err);
    *seq = q;
    return rc;
}
static int fleet_next(void *seq, int32_t *token, int timeout_ms) { return hive_fleet_seq_next(seq, token, timeout_ms); }
static int fleet_finish(void *seq) { return (int)hive_fleet_seq_finish(seq); }
static const char *fleet_error(void *seq) { return hive_fleet_seq_error(seq); }
static void fleet_release(void *seq) { hive_fleet_seq_release(seq); }
static void fleet_usage(void *seq, int *n_prompt, int *n_gen) { hive_fleet_seq_usage(seq, n_prompt, n_gen); }
static double fleet_ttft_ms(void *seq) { return hive_fleet_seq_ttft_ms(seq); }
/* A finished request credits the nodes that computed it. */
static void fleet_done(struct hive_ledger *ledger, void *seq) {
    struct hive_sched_node nodes[HIVE_PLAN_MAX_NODES];
    int n = hive_fleet_seq_credit(seq, nodes, HIVE_PLAN_MAX_NODES);
    if (n <= 0) return;
    uint8_t id[8];
    randombytes_buf(id, sizeof id);
    char req[32];
    snprintf(req, sizeof req, "req-%02x%02x%02x%02x%02x%02x%02x%02x", id[0], id[1], id[2], id[3], id[4], id[5], id[6],
             id[7]);
    char err[HIVE_ERR_LEN];
    if (hive_ledger_record_request(ledger, req, nodes, n, err))
        hive_log(HIVE_LOG_WARN, "hive serve: ledger: %s", err);
}

static void fleet_stats(void *ctx, struct hive_sched_stats *st) { hive_fleet_get_stats(ctx, st); }
static int fleet_nodes(void *ctx, struct hive_sched_node *out, int cap) { return hive_fleet_get_nodes(ctx, out, cap); }

int hive_server_start_fleet(hive_server **out, hive_fleet *fleet, const hive_tokenizer *tok, int chat_template,
                            const struct hive_server_opts *o, char *err) {
    struct srv_backend be = {
        .ctx = fleet,
        .submit = fleet_submit,
        .next = fleet_next,
        .finish = fleet_finish,
        .error = fleet_error,
        .release = fleet_release,
        .stats = fleet_stats,
        .n_ctx = hive_sched_n_ctx(hive_fleet_replica(fleet, 0)),
        .ledger = o->ledger,
        .done = fleet_done,
    };
    struct srv_backend_more more = {.nodes = fleet_nodes, .usage = fleet_usage, .ttft_ms = fleet_ttft_ms};
    return srv_start_ex(out, &be, &more, tok, chat_template, o, err);
}
