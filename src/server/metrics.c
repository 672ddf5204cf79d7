/* metrics.c - GET /metrics in the Prometheus text exposition format
 * (version 0.0.4): "# HELP" and "# TYPE" before each family, counters end
 * in _total, histograms as cumulative _bucket{le="..."} (ending with
 * le="+Inf"), _sum and _count; label values escape backslash, double quote
 * and newline. Times are in seconds, sizes in bytes.
 *
 * Server side (what the clients got): hive_requests_total{kind,outcome},
 * hive_http_errors_total{status}, hive_prompt_tokens_total,
 * hive_completion_tokens_total (every token handed to a client, the EOS
 * token included, as usage.completion_tokens counts it), the three latency
 * histograms, hive_requests_in_flight, hive_tokens_per_second.
 * Scheduler side: hive_sched_*_total, hive_queue_depth, hive_kv_slots_in_use,
 * hive_kv_slots. Per node and per hop: hive_node_*, hive_stage_compute_seconds,
 * hive_hop_latency_seconds. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs_internal.h"

void srv_prom_escape(const char *in, char *out, size_t cap) {
    size_t k = 0;
    if (!cap) return;
    for (; *in && k + 2 < cap; in++) {
        char c = *in;
        if (c == '\\' || c == '"') {
            out[k++] = '\\';
            out[k++] = c;
        } else if (c == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
        } else {
            out[k++] = c;
        }
    }
    out[k] = '\0';
}

static void pf(struct srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pf(struct srv_buf *b, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    srv_buf_put(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void family(struct srv_buf *b, const char *name, const char *type, const char *help) {
    pf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar(struct srv_buf *b, const char *name, const char *type, const char *help, double v) {
    family(b, name, type, help);
    pf(b, "%s %.9g\n", name, v);
}

static void histogram(struct srv_buf *b, const char *name, const char *help, const struct srv_hist *h) {
    family(b, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < SRV_HIST_BUCKETS; i++) {
        cum += h->count[i];
        pf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->le[i], (unsigned long long)cum);
    }
    pf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->n);
    pf(b, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->n);
}

char *srv_metrics_text(struct srv_obs *o, const char *model_id) {
    struct hive_sched_stats *st = calloc(1, sizeof *st);
    struct hive_sched_node *nodes = calloc(SRV_LEDGER_NODES, sizeof *nodes);
    struct srv_obs *snap = malloc(sizeof *snap);
    struct srv_buf b = {0};
    if (!st || !nodes || !snap) goto fail;
    o->be->stats(o->be->ctx, st);
    int n_nodes = o->more.nodes ? o->more.nodes(o->be->ctx, nodes, SRV_LEDGER_NODES) : 0;
    if (n_nodes > SRV_LEDGER_NODES) n_nodes = SRV_LEDGER_NODES;
    if (n_nodes < 0) n_nodes = 0;
    int n_st = st->n_stages < 0 ? 0 : st->n_stages > HIVE_SCHED_MAX_STAGES ? HIVE_SCHED_MAX_STAGES : st->n_stages;
    double tps_now = 0, tps_hist[1];
    pthread_mutex_lock(&o->mu);
    memcpy(snap, o, sizeof *snap); /* counters only: the copy's pointers are not followed */
    srv_obs_tps(o, tps_hist, 0, &tps_now);
    pthread_mutex_unlock(&o->mu);

    char model[512], a[512], nm[256], nm2[256];
    srv_prom_escape(model_id, model, sizeof model);
    family(&b, "hive_info", "gauge", "The served model (always 1).");
    pf(&b, "hive_info{model=\"%s\"} 1\n", model);

    static const char *kinds[2] = {"chat", "completion"};
    static const char *outs[SRV_OUT_N] = {"stop", "length", "error", "cancelled"};
    family(&b, "hive_requests_total", "counter",
           "Generation requests answered, by kind and outcome (cancelled: the client left first).");
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < SRV_OUT_N; i++)
            pf(&b, "hive_requests_total{kind=\"%s\",outcome=\"%s\"} %llu\n", kinds[k], outs[i],
               (unsigned long long)snap->requests[k][i]);
    family(&b, "hive_http_errors_total", "counter", "Error answers, by HTTP status.");
    for (int i = 0; i < snap->n_status; i++)
        pf(&b, "hive_http_errors_total{status=\"%d\"} %llu\n", snap->status[i], (unsigned long long)snap->status_count[i]);
    scalar(&b, "hive_prompt_tokens_total", "counter", "Prompt tokens of the requests the server started.",
           (double)snap->prompt_tokens);
    scalar(&b, "hive_completion_tokens_total", "counter",
           "Tokens handed to clients (as usage.completion_tokens counts them).", (double)snap->completion_tokens);
    scalar(&b, "hive_requests_in_flight", "gauge", "Requests being answered now.", snap->n_active);
    scalar(&b, "hive_tokens_per_second", "gauge", "Tokens the scheduler generated per second, over the last 3 s.",
           tps_now);
    histogram(&b, "hive_time_to_first_token_seconds", "Time from submit to the first token, per request.", &snap->ttft);
    histogram(&b, "hive_time_per_output_token_seconds",
              "Mean time per generated token after the first, per request.", &snap->tpot);
    histogram(&b, "hive_request_duration_seconds", "Time from submit to the end of a request.", &snap->e2e);

    scalar(&b, "hive_sched_submitted_total", "counter", "Sequences submitted to the scheduler.", (double)st->submitted);
    scalar(&b, "hive_sched_rejected_total", "counter", "Sequences refused (queue full).", (double)st->rejected);
    scalar(&b, "hive_sched_finished_total", "counter", "Sequences that ran to their end.", (double)st->finished);
    scalar(&b, "hive_sched_cancelled_total", "counter", "Sequences released before their end.", (double)st->cancelled);
    scalar(&b, "hive_sched_failed_total", "counter", "Sequences the ring failed.", (double)st->failed);
    scalar(&b, "hive_sched_prompt_tokens_total", "counter", "Prompt tokens the scheduler ran.", (double)st->prompt_tokens);
    scalar(&b, "hive_sched_generated_tokens_total", "counter", "Tokens the scheduler generated.",
           (double)st->generated_tokens);
    scalar(&b, "hive_sched_steps_total", "counter", "Micro-batches sent through the ring.", (double)st->steps);
    scalar(&b, "hive_sched_recoveries_total", "counter", "Recoveries after a node loss.", st->recoveries);
    scalar(&b, "hive_sched_rebalances_total", "counter", "Plans changed because a node ran slow.", st->rebalances);
    scalar(&b, "hive_decode_passes_total", "counter", "Decode entries sent through the ring (one sequence each).",
           (double)st->decode_passes);
    scalar(&b, "hive_decode_pass_tokens_total", "counter", "Tokens those decode entries gave (more than one with drafts).",
           (double)st->decode_pass_tokens);
    scalar(&b, "hive_draft_tokens_total", "counter", "Tokens drafted for speculative decoding.", (double)st->draft_tokens);
    scalar(&b, "hive_draft_accepted_total", "counter", "Drafted tokens the ring accepted.", (double)st->draft_accepted);
    scalar(&b, "hive_queue_depth", "gauge", "Sequences waiting for a KV slot.", st->queued);
    scalar(&b, "hive_kv_slots_in_use", "gauge", "Sequences holding a KV slot (running).", st->running);
    scalar(&b, "hive_kv_slots", "gauge", "KV slots per stage (max_seqs).", st->max_seqs);
    scalar(&b, "hive_ring_batches_in_flight", "gauge", "Micro-batches in the ring now.", st->in_flight);
    scalar(&b, "hive_last_recovery_seconds", "gauge", "Duration of the last recovery.", st->last_recovery_ms / 1000.0);

    static const char *states[] = {"alive", "suspect", "dead", "leaving", "joining"};
    family(&b, "hive_node_state", "gauge", "1 for the state each node is in, 0 for the others.");
    for (int i = 0; i < n_nodes; i++) {
        srv_prom_escape(nodes[i].name, nm, sizeof nm);
        srv_prom_escape(nodes[i].addr, a, sizeof a);
        for (int s = 0; s < 5; s++)
            pf(&b, "hive_node_state{node=\"%s\",addr=\"%s\",state=\"%s\"} %d\n", nm, a, states[s], nodes[i].state == s);
    }
#define NODE_FAMILY(fam, type, help, expr)                                                                            \
    family(&b, fam, type, help);                                                                                       \
    for (int i = 0; i < n_nodes; i++) {                                                                                \
        const struct hive_sched_node *nd = &nodes[i];                                                                  \
        srv_prom_escape(nd->name, nm, sizeof nm);                                                                      \
        srv_prom_escape(nd->addr, a, sizeof a);                                                                        \
        pf(&b, "%s{node=\"%s\",addr=\"%s\"} %.9g\n", fam, nm, a, (double)(expr));                                      \
    }
    NODE_FAMILY("hive_node_tokens_total", "counter", "Token rows a node computed for this head.", nd->tokens)
    NODE_FAMILY("hive_node_layer_passes_total", "counter", "Token rows x layers a node computed for this head.",
                nd->layer_passes)
    NODE_FAMILY("hive_node_memory_used_bytes", "gauge", "What a node's stage takes now.", nd->mem_used)
    NODE_FAMILY("hive_node_memory_budget_bytes", "gauge", "The memory a node offered.", nd->mem_budget)
    NODE_FAMILY("hive_node_layers", "gauge", "Layers a node holds.", nd->last - nd->first)
    NODE_FAMILY("hive_node_rtt_seconds", "gauge", "Heartbeat round trip to a node.", nd->rtt_ms / 1000.0)
#undef NODE_FAMILY

    family(&b, "hive_stage_compute_seconds", "gauge", "A stage's compute per step, averaged over the recent steps.");
    for (int i = 0; i < n_st; i++) {
        srv_prom_escape(st->st[i].name, nm, sizeof nm);
        srv_prom_escape(st->st[i].addr, a, sizeof a);
        pf(&b, "hive_stage_compute_seconds{stage=\"%d\",node=\"%s\",addr=\"%s\"} %.9g\n", i, nm, a,
           st->st[i].compute_ms_avg / 1000.0);
    }
    family(&b, "hive_hop_latency_seconds", "gauge",
           "Time of one hop of the ring per step (head to the first stage, stage to stage, last stage to head).");
    for (int i = 0; i <= n_st && n_st > 0; i++) {
        if (i == 0) snprintf(nm, sizeof nm, "head");
        else srv_prom_escape(st->st[i - 1].name, nm, sizeof nm);
        if (i == n_st) snprintf(nm2, sizeof nm2, "head");
        else srv_prom_escape(st->st[i].name, nm2, sizeof nm2);
        double v = i == n_st ? st->hop_out_ms_avg : st->st[i].hop_in_ms_avg;
        pf(&b, "hive_hop_latency_seconds{hop=\"%d\",from=\"%s\",to=\"%s\"} %.9g\n", i, nm, nm2, v / 1000.0);
    }
    if (b.full) goto fail;
    free(st);
    free(nodes);
    free(snap);
    if (!b.p) return calloc(1, 1);
    return b.p;
fail:
    srv_buf_free(&b);
    free(st);
    free(nodes);
    free(snap);
    return NULL;
}
